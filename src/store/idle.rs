//! Giving redb's page cache back once the gateway is quiet. The cache fills with the
//! pages a busy hour touched (up to [`super::open::CACHE_BYTES`]) and redb never empties it: a
//! gateway that drained a long backlog stayed that much larger for good
//! (`scripts/bench-backlog`, docs/BENCHMARKS.md). Closing the database and opening it
//! again is the only way redb offers; after a clean close that takes a few
//! milliseconds, and it is done only when no commit has come for a while.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Failure, Result, Store};

/// Counts the read snapshots alive: redb keeps the file (and its lock) open until every
/// one has ended, so the database cannot be opened again while one lives.
#[derive(Default)]
pub(super) struct Readers(Arc<AtomicUsize>);

/// One live read snapshot; ends with it.
pub(super) struct Live(Arc<AtomicUsize>);

impl Readers {
    pub(super) fn enter(&self) -> Live {
        self.0.fetch_add(1, Ordering::SeqCst);
        Live(self.0.clone())
    }

    fn alive(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Store {
    /// Notes a commit: the cache holds pages worth giving back once things are quiet.
    pub(super) fn note_commit(&self) {
        *self.last_commit.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Closes the database and opens it again, emptying redb's cache, if something was
    /// committed since the last time and nothing for `quiet`. Skipped (`Ok(false)`) while
    /// a read snapshot lives. A database that cannot be opened again is left failed, to be
    /// reopened as after a disk failure.
    pub fn release_cache_if_quiet(&self, quiet: Duration) -> Result<bool> {
        let due = |last: &Option<Instant>| last.is_some_and(|t| t.elapsed() >= quiet);
        if !due(&self.last_commit.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(false);
        }
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        let mut last = self.last_commit.lock().unwrap_or_else(|e| e.into_inner());
        if !due(&last) || self.readers.alive() > 0 || self.health().stale {
            return Ok(false);
        }
        let Some(open) = db.take() else {
            return Ok(false);
        };
        // Non-durable commits reach the disk first, and so stay valid: the reopen does
        // not count as one that loses them.
        let synced = self.sync_volatile(&open);
        drop(open);
        *last = None;
        drop(last);
        let reopened = synced.and_then(|synced| Ok((synced, self.open_again()?)));
        match reopened {
            Ok((synced, new)) => {
                *db = Some(new);
                drop(db);
                if synced && let Some(f) = self.on_durable.get() {
                    f();
                }
                log::debug!("{}: reopened to give its cache back", self.path.display());
                Ok(true)
            }
            Err(e) => {
                // Non-durable commits may not have reached the disk.
                self.generation.fetch_add(1, Ordering::SeqCst);
                let mut h = self.health();
                h.failed = Some(Failure {
                    why: e.to_string(),
                    full: e.is_disk_full(),
                });
                h.since = Instant::now();
                h.stale = true;
                h.retry_at = Instant::now();
                Err(e)
            }
        }
    }

    /// Makes the non-durable commits durable with an empty durable commit; `Ok(true)` if
    /// there were any.
    fn sync_volatile(&self, open: &redb::Database) -> Result<bool> {
        if self.durable_done.load(Ordering::SeqCst) >= self.volatile_need.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let number = self.durable_begun.fetch_add(1, Ordering::SeqCst) + 1;
        open.begin_write()?.commit()?;
        self.durable_done.fetch_max(number, Ordering::SeqCst);
        Ok(true)
    }

    /// Closes the database for good, as the daemon exits: non-durable commits reach the
    /// disk first, and redb records a clean close, so the next start does not check the
    /// whole file as after a crash. Waits up to `patience` for read snapshots to end
    /// (redb cannot record a clean close under one). Calls after this fail.
    pub fn close(&self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
            if self.readers.alive() > 0 && Instant::now() < deadline {
                drop(db);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let Some(open) = db.take() else {
                return Ok(());
            };
            let synced = self.sync_volatile(&open);
            if synced.is_err() {
                // Non-durable commits may not have reached the disk.
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
            let closed = open.close().map_err(super::Error::from);
            return synced.and(closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::power_cut::Disk;
    use crate::store::{SyncState, schema};

    fn set(w: &crate::store::Writer, n: u64) -> Result<()> {
        w.txn.open_table(schema::COUNTERS)?.insert("test", n)?;
        Ok(())
    }

    fn get(store: &Store) -> Option<u64> {
        let r = store.read().unwrap();
        let t = r.txn.open_table(schema::COUNTERS).unwrap();
        t.get("test").unwrap().map(|v| v.value())
    }

    #[test]
    fn a_quiet_store_is_reopened_once_and_a_non_durable_commit_reaches_the_disk_first() {
        let disk = Disk::default();
        let store = Store::open_on(&disk).unwrap();
        // Nothing committed yet: nothing to give back.
        assert!(!store.release_cache_if_quiet(Duration::ZERO).unwrap());
        store.write(|w| set(w, 1)).unwrap();
        let ((), unsynced) = store.write_volatile(|w| set(w, 2)).unwrap();
        assert_eq!(store.sync_state(&unsynced), SyncState::Pending);
        assert!(
            !store
                .release_cache_if_quiet(Duration::from_secs(60))
                .unwrap()
        );
        assert!(store.release_cache_if_quiet(Duration::ZERO).unwrap());
        // Still valid, and on disk: it survives a power cut made right now.
        assert_eq!(store.sync_state(&unsynced), SyncState::OnDisk);
        assert_eq!(get(&store), Some(2));
        assert!(!store.release_cache_if_quiet(Duration::ZERO).unwrap());
        let cut = disk.cut();
        drop(store);
        let after = Store::open_on(&cut).unwrap();
        assert_eq!(get(&after), Some(2));
    }

    #[test]
    fn not_while_a_read_snapshot_lives() {
        let disk = Disk::default();
        let store = Store::open_on(&disk).unwrap();
        store.write(|w| set(w, 7)).unwrap();
        let snapshot = store.read().unwrap();
        assert!(!store.release_cache_if_quiet(Duration::ZERO).unwrap());
        drop(snapshot);
        assert!(store.release_cache_if_quiet(Duration::ZERO).unwrap());
        store.write(|w| set(w, 8)).unwrap();
        assert_eq!(get(&store), Some(8));
    }
}
