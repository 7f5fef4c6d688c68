//! The outbox: the durable, ordered queue of operations for destinations.
//!
//! Ops are keyed by an increasing id, so id order is acknowledgement order. The forwarder
//! takes the next due op whose keys no earlier op touches ([`Reader::due_ops`]), so ops on
//! one key reach the destination in order (DESIGN §4.6), then reports it done
//! ([`Writer::complete`]), failed with a retry time, or parked with a reason.
//!
//! `PUT_INDEX` names the queued put that is the last op on its key; any other op on that
//! key removes the entry, so coalescing never reorders anything.

use std::collections::HashSet;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::{COUNTERS, OUTBOX, PUT_INDEX};
use super::{Error, Reader, Result, Writer, decode, encode};

/// What to do at the destination. Paths are namespace paths (`/a/b`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    Put {
        path: String,
        body: String,
        size: u64,
        md5: String,
        mtime: u64,
        sender: String,
    },
    Delete {
        path: String,
    },
    /// Server-side copy, then delete.
    Rename {
        from: String,
        to: String,
    },
    /// A directory marker (`key/`).
    MkDir {
        path: String,
    },
    RmDir {
        path: String,
    },
}

impl Action {
    /// The namespace paths this op touches.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Action::Put { path, .. }
            | Action::Delete { path }
            | Action::MkDir { path }
            | Action::RmDir { path } => vec![path],
            Action::Rename { from, to } => vec![from, to],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::Put { .. } => "put",
            Action::Delete { .. } => "delete",
            Action::Rename { .. } => "rename",
            Action::MkDir { .. } => "mkdir",
            Action::RmDir { .. } => "rmdir",
        }
    }
}

/// One queued operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub pipe: String,
    pub action: Action,
    /// When the op was acknowledged (ms since the epoch).
    pub queued_ms: u64,
    /// Not to be tried before this (ms since the epoch).
    pub due_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Set: a permanent failure; the op waits for `spool retry` or a changed Pipe.
    #[serde(default)]
    pub parked: Option<String>,
    /// Claimed by the forwarder: coalescing leaves it alone. Cleared at start-up.
    #[serde(default)]
    pub in_flight: bool,
}

fn all_ops(t: &impl ReadableTable<u64, &'static [u8]>) -> Result<Vec<Op>> {
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.push(decode("outbox", &k.value().to_string(), v.value())?);
    }
    Ok(out)
}

/// Keys still owed an earlier op, in one Pipe's namespace. A key conflicts with itself,
/// its ancestors and its descendants: `RMD /d` must wait for a rename out of `/d/x`, and a
/// put into `/d/x` for an earlier `MKD /d` or `RMD /d`.
#[derive(Default)]
struct Blocked {
    keys: HashSet<(String, String)>,
    /// Every ancestor directory of a blocked key.
    ancestors: HashSet<(String, String)>,
}

fn parents(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('/')
        .map(|(i, _)| &key[..i])
        .filter(|p| !p.is_empty())
}

impl Blocked {
    fn conflicts(&self, pipe: &str, key: &str) -> bool {
        let k = (pipe.to_string(), key.to_string());
        self.keys.contains(&k)
            || self.ancestors.contains(&k)
            || parents(key).any(|p| self.keys.contains(&(pipe.to_string(), p.to_string())))
    }

    fn add(&mut self, pipe: &str, key: &str) {
        for p in parents(key) {
            self.ancestors.insert((pipe.to_string(), p.to_string()));
        }
        self.keys.insert((pipe.to_string(), key.to_string()));
    }
}

/// Ops that may start now: due, not parked, not in `busy`, and with no earlier op still
/// queued on any of their keys, or on a key above or below them, in the same Pipe.
fn due(ops: Vec<Op>, now_ms: u64, limit: usize, busy: &HashSet<u64>) -> Vec<Op> {
    let mut blocked = Blocked::default();
    let mut out = Vec::new();
    for op in ops {
        let keys = op.action.keys();
        let free = keys.iter().all(|k| !blocked.conflicts(&op.pipe, k));
        if free
            && op.parked.is_none()
            && op.due_ms <= now_ms
            && !busy.contains(&op.id)
            && !op.in_flight
        {
            out.push(op.clone());
            if out.len() == limit {
                break;
            }
        }
        for k in keys {
            blocked.add(&op.pipe, k);
        }
    }
    out
}

impl Reader {
    /// Every queued op in order.
    pub fn ops(&self) -> Result<Vec<Op>> {
        all_ops(&self.txn.open_table(OUTBOX)?)
    }

    /// Up to `limit` ops the forwarder may start now; `busy` are ops already running.
    pub fn due_ops(&self, now_ms: u64, limit: usize, busy: &HashSet<u64>) -> Result<Vec<Op>> {
        Ok(due(self.ops()?, now_ms, limit, busy))
    }
}

impl Writer {
    pub fn op(&self, id: u64) -> Result<Option<Op>> {
        match self.txn.open_table(OUTBOX)?.get(id)? {
            Some(v) => Ok(Some(decode("outbox", &id.to_string(), v.value())?)),
            None => Ok(None),
        }
    }

    pub fn ops(&self) -> Result<Vec<Op>> {
        all_ops(&self.txn.open_table(OUTBOX)?)
    }

    pub(super) fn put_op(&self, op: &Op) -> Result<()> {
        self.txn
            .open_table(OUTBOX)?
            .insert(op.id, encode(op).as_slice())?;
        Ok(())
    }

    /// Removes an op and its index entry.
    pub(super) fn remove_op(&self, id: u64) -> Result<Option<Op>> {
        let op = self.op(id)?;
        if let Some(op) = &op {
            self.txn.open_table(OUTBOX)?.remove(id)?;
            let mut index = self.txn.open_table(PUT_INDEX)?;
            if let Action::Put { path, .. } = &op.action
                && index
                    .get((op.pipe.as_str(), path.as_str()))?
                    .map(|v| v.value())
                    == Some(id)
            {
                index.remove((op.pipe.as_str(), path.as_str()))?;
            }
        }
        Ok(op)
    }

    /// Appends an op; returns its id.
    pub fn enqueue(&self, pipe: &str, action: Action, now_ms: u64) -> Result<u64> {
        let mut counters = self.txn.open_table(COUNTERS)?;
        let id = counters.get("next_op")?.map_or(1, |v| v.value());
        counters.insert("next_op", id + 1)?;
        drop(counters);
        let mut index = self.txn.open_table(PUT_INDEX)?;
        for key in action.keys() {
            index.remove((pipe, key))?;
        }
        if let Action::Put { path, .. } = &action {
            index.insert((pipe, path.as_str()), id)?;
        }
        drop(index);
        self.put_op(&Op {
            id,
            pipe: pipe.to_string(),
            action,
            queued_ms: now_ms,
            due_ms: now_ms,
            attempts: 0,
            last_error: None,
            parked: None,
            in_flight: false,
        })?;
        Ok(id)
    }

    /// The Pipe an op belongs to (`None` if it was removed since).
    pub fn pipe_for_op(&self, id: u64) -> Result<Option<super::Pipe>> {
        let op = self.op(id)?.ok_or(Error::NoSuchOp(id))?;
        self.pipe(&op.pipe)
    }

    /// The forwarder starts `id`: coalescing will no longer rewrite it.
    pub fn claim(&self, id: u64) -> Result<Op> {
        let mut op = self.op(id)?.ok_or(Error::NoSuchOp(id))?;
        op.in_flight = true;
        op.attempts += 1;
        self.put_op(&op)?;
        Ok(op)
    }

    /// The destination confirmed `id`: the catalog records it and the op goes. Returns the
    /// spool body to delete once this transaction has committed.
    pub fn complete(&self, id: u64) -> Result<Option<String>> {
        let op = self.remove_op(id)?.ok_or(Error::NoSuchOp(id))?;
        if let Action::Put { path, body, .. } = &op.action {
            self.mark_delivered(&op.pipe, path, body)?;
            return Ok(Some(body.clone()));
        }
        Ok(None)
    }

    /// A transient failure: try again at `due_ms`.
    pub fn retry_later(&self, id: u64, due_ms: u64, error: &str) -> Result<()> {
        let mut op = self.op(id)?.ok_or(Error::NoSuchOp(id))?;
        op.in_flight = false;
        op.due_ms = due_ms;
        op.last_error = Some(error.to_string());
        self.put_op(&op)
    }

    /// A permanent failure: wait for a person.
    pub fn park(&self, id: u64, reason: &str) -> Result<()> {
        let mut op = self.op(id)?.ok_or(Error::NoSuchOp(id))?;
        op.in_flight = false;
        op.last_error = Some(reason.to_string());
        op.parked = Some(reason.to_string());
        self.put_op(&op)
    }

    /// Makes parked ops due now: one op, or all of a Pipe's, or all. Returns how many.
    pub fn unpark(&self, id: Option<u64>, pipe: Option<&str>, now_ms: u64) -> Result<usize> {
        let mut n = 0;
        for mut op in self.ops()? {
            let wanted = id.is_none_or(|i| i == op.id) && pipe.is_none_or(|p| p == op.pipe);
            if wanted && (op.parked.is_some() || op.due_ms > now_ms) {
                op.parked = None;
                op.due_ms = now_ms;
                self.put_op(&op)?;
                n += 1;
            }
        }
        if let Some(i) = id
            && n == 0
            && self.op(i)?.is_none()
        {
            return Err(Error::NoSuchOp(i));
        }
        Ok(n)
    }

    /// At start-up: nothing is in flight any more.
    pub fn release_claims(&self) -> Result<()> {
        for mut op in self.ops()? {
            if op.in_flight {
                op.in_flight = false;
                self.put_op(&op)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, pipe: &str, action: Action, due_ms: u64) -> Op {
        Op {
            id,
            pipe: pipe.into(),
            action,
            queued_ms: 0,
            due_ms,
            attempts: 0,
            last_error: None,
            parked: None,
            in_flight: false,
        }
    }

    fn put(path: &str) -> Action {
        Action::Put {
            path: path.into(),
            body: "b".into(),
            size: 1,
            md5: String::new(),
            mtime: 0,
            sender: String::new(),
        }
    }

    #[test]
    fn due_respects_order_per_key() {
        let ops = vec![
            op(1, "p", put("/a"), 0),
            op(2, "p", Action::Delete { path: "/a".into() }, 0),
            op(3, "p", put("/b"), 0),
            op(4, "q", put("/a"), 0),
            op(
                5,
                "p",
                Action::Rename {
                    from: "/b".into(),
                    to: "/c".into(),
                },
                0,
            ),
            op(6, "p", put("/d"), 100),
            op(7, "p", put("/c"), 0),
        ];
        let ids = |v: Vec<Op>| v.iter().map(|o| o.id).collect::<Vec<_>>();
        assert_eq!(ids(due(ops.clone(), 0, 10, &HashSet::new())), vec![1, 3, 4]);
        assert_eq!(
            ids(due(ops.clone(), 100, 10, &HashSet::new())),
            vec![1, 3, 4, 6]
        );
        // An op already running still blocks later ops on its key.
        assert_eq!(
            ids(due(ops.clone(), 0, 10, &HashSet::from([1]))),
            vec![3, 4]
        );
        assert_eq!(ids(due(ops, 0, 2, &HashSet::new())), vec![1, 3]);
    }

    #[test]
    fn directories_wait_for_what_is_below_them_and_the_reverse() {
        let ops = vec![
            op(1, "p", Action::MkDir { path: "/d".into() }, 0),
            op(2, "p", put("/d/x"), 0),
            op(
                3,
                "p",
                Action::Rename {
                    from: "/d/x".into(),
                    to: "/y".into(),
                },
                0,
            ),
            op(4, "p", Action::RmDir { path: "/d".into() }, 0),
            op(5, "p", put("/dd/z"), 0),
            op(6, "p", put("/e/f/g"), 0),
            op(7, "p", Action::RmDir { path: "/e".into() }, 0),
        ];
        let ids = |v: Vec<Op>| v.iter().map(|o| o.id).collect::<Vec<_>>();
        // /dd is not below /d; /e waits for /e/f/g.
        assert_eq!(ids(due(ops.clone(), 0, 10, &HashSet::new())), vec![1, 5, 6]);
        let rest: Vec<Op> = ops
            .into_iter()
            .filter(|o| ![1, 5, 6].contains(&o.id))
            .collect();
        assert_eq!(ids(due(rest.clone(), 0, 10, &HashSet::new())), vec![2, 7]);
        let rest: Vec<Op> = rest
            .into_iter()
            .filter(|o| o.id != 2 && o.id != 7)
            .collect();
        assert_eq!(ids(due(rest.clone(), 0, 10, &HashSet::new())), vec![3]);
    }
}
