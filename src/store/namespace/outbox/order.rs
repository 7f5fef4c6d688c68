//! The order of the queue: which earlier ops a new op waits for (the last op on each of
//! its keys, the ancestors' last ops but their `MkDir`, everything below an `RmDir`),
//! and letting its waiters go when an op leaves.

use std::collections::BTreeSet;

use redb::ReadableTable;

use super::queries::last_in;
use super::{Action, Op};
use crate::store::schema::{KEY_OPS, WAITERS};
use crate::store::{Result, View, Writer};

/// Ancestor directories of `key`, nearest last (`/a/b/c` → `/a`, `/a/b`).
fn parents(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('/')
        .map(|(i, _)| &key[..i])
        .filter(|p| !p.is_empty())
}

impl Writer {
    /// The queued ops `op` must wait for: the last op on each of its keys (each waits for
    /// the one before it on its key in turn), the last op other than a `MkDir` on each of
    /// their ancestors, and for `RmDir` every op below it.
    ///
    /// An ancestor's `MkDir` is no dependency: destinations make the directories above a
    /// file as they write it (S3 has none to make), so nothing below goes wrong when the
    /// marker comes later. Waiting for it would make every upload into a directory made
    /// during an outage its waiter, and its delivery would wake them all in one
    /// transaction: O(backlog) for one op.
    pub(super) fn earlier_ops_blocking(&self, op: &Op) -> Result<BTreeSet<u64>> {
        let pipe = op.pipe.as_str();
        let by_key = self.txn.open_table(KEY_OPS)?;
        let mut deps = BTreeSet::new();
        for key in op.action.keys() {
            for k in parents(key) {
                deps.extend(self.last_but_mkdir(&by_key, pipe, k)?);
            }
            deps.extend(last_in(&by_key, pipe, key)?);
        }
        if let Action::RmDir { path } = &op.action {
            // Every key below `path` starts with `path/`; '0' is the character after '/'.
            let (lo, hi) = (format!("{path}/"), format!("{path}0"));
            for row in by_key.range((pipe, lo.as_str(), 0)..(pipe, hi.as_str(), 0))? {
                deps.insert(row?.0.value().2);
            }
        }
        deps.remove(&op.id);
        Ok(deps)
    }

    /// The last queued op on (pipe, dir) that is not its `MkDir`. A directory has at most
    /// one `MkDir` since its last other op (a second `MKD` of it is refused), so this reads
    /// one or two ops.
    pub(super) fn last_but_mkdir(
        &self,
        by_key: &impl ReadableTable<(&'static str, &'static str, u64), ()>,
        pipe: &str,
        dir: &str,
    ) -> Result<Option<u64>> {
        for row in by_key.range((pipe, dir, 0)..=(pipe, dir, u64::MAX))?.rev() {
            let id = row?.0.value().2;
            if !matches!(self.existing_op(id)?.action, Action::MkDir { .. }) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Lets the ops that waited for op `id` (now gone) go: each waits for one fewer,
    /// and is ready once it waits for none.
    pub(super) fn release_waiters(&self, id: u64) -> Result<()> {
        let mut waiters = Vec::new();
        let mut t = self.txn.open_table(WAITERS)?;
        for row in t.extract_from_if((id, 0)..=(id, u64::MAX), |_, _| true)? {
            waiters.push(row?.0.value().1);
        }
        drop(t);
        for w in waiters {
            if let Some(mut op) = self.op(w)? {
                op.waits_for = op.waits_for.saturating_sub(1);
                self.set_ready(&op, op.is_ready())?;
                self.put_op(&op)?;
            }
        }
        Ok(())
    }
}
