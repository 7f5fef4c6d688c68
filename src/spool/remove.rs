//! The one way a body leaves the spool: removed once no record needs it (delivered,
//! replaced, expired, abandoned), kept as an empty spare while uploads may want one, and
//! what a drain leaves behind given back ([`Spool::tidy`]).

use std::io;

use super::disk::{self, Disk};
use super::{Error, Spool, ready, spares};
use crate::state::StateDir;
use crate::store::{Store, View};

impl Spool {
    /// Removes bodies no record needs (delivered, replaced, expired, abandoned) wherever
    /// each is, and stops counting their bytes: the one way a body leaves the spool. Each
    /// is kept as an empty spare for a later upload while there is room ([`spares`]),
    /// else deleted. Blocking. A body that cannot be deleted is logged and still counted
    /// (it is still there); recovery deletes it at the next start if the store lists it
    /// as garbage.
    pub fn remove_bodies(&self, ids: &[String]) {
        let mut emptied = self.emptied.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            let bucket = ready::bucket(id);
            if !emptied.contains(bucket) {
                emptied.insert(bucket.to_string());
            }
        }
        drop(emptied);
        for id in ids {
            let kept = {
                // Held while the body is emptied and moved: a reader either registered
                // first (the body is deleted instead; its open file stays whole) or finds
                // the name gone.
                let readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
                if readers.contains_key(id) {
                    None
                } else {
                    self.spares
                        .keep(&*self.disk, [self.ready_path(id), self.tmp_path(id)], id)
                }
            };
            let removed = match kept {
                Some(freed) => Ok(freed),
                None => self.disk.delete_body(&self.tmp, &self.ready, id),
            };
            match removed {
                Ok(freed) => self.sub_used(freed),
                Err(e) => log::warn!("spool: deleting body {id}: {e}"),
            }
        }
    }

    /// Gives back what a drain left behind: removes the buckets of `ready/` that bodies
    /// left empty ([`ready`]), and deletes up to [`Spool::TRIM_BATCH`] of the spare files
    /// beyond what uploads need, if uploads have not been taking them faster than
    /// deliveries release them ([`spares`]). Blocking; meant to run every few seconds,
    /// and batch after batch while no upload arrives. Returns how many spares went.
    pub fn tidy(&self) -> io::Result<usize> {
        let emptied = std::mem::take(&mut *self.emptied.lock().unwrap_or_else(|e| e.into_inner()));
        ready::sweep(&self.ready, emptied);
        self.spares.trim(&*self.disk, Self::TRIM_BATCH)
    }

    /// Spare files [`Spool::tidy`] deletes at most per call: the pool's lock is held
    /// meanwhile, so an upload waits at most for that many deletions.
    pub const TRIM_BATCH: usize = spares::TRIM_BATCH;

    /// Deletes bodies the store has listed as garbage (after the commit that listed
    /// them). Blocking. The store forgets them with its next write
    /// ([`Spool::take_collected`]); a crash before that only repeats the deletion.
    pub fn collect(&self, ids: &[String]) {
        self.remove_bodies(ids);
        self.collected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(ids);
    }

    /// Deletes whatever the store lists as garbage now (after an admin change such as
    /// `pipe remove`). Blocking.
    pub fn collect_garbage(&self) -> Result<usize, Error> {
        let garbage = self.store.read()?.garbage()?;
        self.collect(&garbage);
        Ok(garbage.len())
    }

    /// Garbage deleted since the last call, for the store to forget.
    pub fn take_collected(&self) -> Vec<String> {
        std::mem::take(&mut *self.collected.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Deletes the bodies the store lists as garbage, without a running daemon (the CLI
/// after `pipe remove` or `apply`). Blocking.
pub fn purge_garbage(state: &StateDir, store: &Store) -> Result<usize, Error> {
    let garbage = store.read()?.garbage()?;
    let (tmp, ready) = (state.spool_tmp(), state.spool_ready());
    for id in &garbage {
        disk::Os.delete_body(&tmp, &ready, id)?;
    }
    if !garbage.is_empty() {
        store.write(|w| w.forget_garbage(&garbage))?;
    }
    Ok(garbage.len())
}
