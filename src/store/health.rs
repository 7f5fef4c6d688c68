//! A disk that fails under the database: the failure is remembered and logged once,
//! calls fail at once with its reason, and the database is reopened at most once a
//! second until a write works again (see [`Store`]'s documentation).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redb::Database;

use super::{Error, Failure, Result, Store};

/// Whether the disk failed under the database, and what to do about it.
#[derive(Debug)]
pub(super) struct DbHealth {
    /// Why, from the first failure until a write works again.
    pub(super) failed: Option<Failure>,
    pub(super) since: Instant,
    /// Calls that failed meanwhile.
    pub(super) failures: u64,
    /// The database must be reopened before its next use...
    pub(super) stale: bool,
    /// ...not before this.
    pub(super) retry_at: Instant,
}

/// How often a failed database is reopened.
pub(super) const REOPEN_EVERY: Duration = Duration::from_secs(1);

impl Store {
    /// Runs `f` with the database: reopened first if the disk failed under it (at most
    /// once a second; calls in between fail at once with the reason), and marked failed if
    /// `f` meets a storage failure. The failure is logged once, and its end (the first
    /// write that works again) with the number of calls that failed meanwhile.
    pub(super) fn with_db<R>(
        &self,
        write: bool,
        f: impl FnOnce(&Database) -> Result<R>,
    ) -> Result<R> {
        self.reopen_if_stale(write)?;
        let db = self.db.read().unwrap_or_else(|e| e.into_inner());
        let Some(db) = db.as_ref() else {
            return Err(Error::Reopening(
                self.health().failed.clone().unwrap_or_default(),
            ));
        };
        let r = f(db);
        match &r {
            Err(e) if e.is_storage_failure() => self.failed(e),
            Ok(_) if write => self.wrote(),
            _ => {}
        }
        r
    }

    /// A database the disk failed under is reopened first, at most once a second; a
    /// write in between fails at once with the reason (a read tries the handle there is:
    /// redb may still serve it).
    fn reopen_if_stale(&self, write: bool) -> Result<()> {
        let mut h = self.health();
        if !h.stale {
            return Ok(());
        }
        let failure = h.failed.clone().unwrap_or_default();
        if Instant::now() < h.retry_at {
            if write {
                h.failures += 1;
                return Err(Error::Reopening(failure));
            }
            return Ok(());
        }
        h.retry_at = Instant::now() + REOPEN_EVERY;
        drop(h);
        self.reopen(failure)?;
        self.health().stale = false;
        Ok(())
    }

    /// A call met storage failure `e`: logged if it is the first, the database marked for
    /// reopening, and a full disk given the spool's reserve.
    fn failed(&self, e: &Error) {
        let mut h = self.health();
        if h.failed.is_none() {
            log::error!(
                "{}: the disk failed under the database ({e}); until it works again uploads are refused, and the database is reopened every {}s",
                self.path.display(),
                REOPEN_EVERY.as_secs()
            );
            h.failed = Some(Failure {
                why: e.to_string(),
                full: e.is_disk_full(),
            });
            h.since = Instant::now();
            h.failures = 0;
        }
        h.failures += 1;
        if !h.stale {
            h.stale = true;
            h.retry_at = Instant::now() + REOPEN_EVERY;
        }
        drop(h);
        if e.is_disk_full()
            && let Some(f) = self.on_disk_full.get()
        {
            f();
        }
    }

    /// A write worked: a failure before it has ended, and the log says so.
    fn wrote(&self) {
        let mut h = self.health();
        if h.failed.is_some() {
            log::warn!(
                "{}: the database writes again, after {:.0}s and {} refused calls",
                self.path.display(),
                h.since.elapsed().as_secs_f64(),
                h.failures
            );
            h.failed = None;
        }
    }

    /// Sets what to do when the database meets a full disk (once).
    pub fn on_disk_full(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_disk_full.set(Box::new(f));
    }

    pub(super) fn health(&self) -> std::sync::MutexGuard<'_, DbHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the database is failing now, if it is: for `status`.
    pub fn trouble(&self) -> Option<String> {
        self.health().failed.as_ref().map(|f| f.why.clone())
    }

    /// Closes the database and opens it again. Fails while another thread still has a
    /// transaction open (redb holds the file and its lock until every one has ended), or
    /// while the disk still fails.
    pub(super) fn reopen(&self, failure: Failure) -> Result<()> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        drop(db.take());
        self.generation.fetch_add(1, Ordering::SeqCst);
        match self.open_again() {
            Ok(new) => {
                *db = Some(new);
                log::info!("{}: reopened", self.path.display());
                Ok(())
            }
            Err(Error::InUse(_)) => Err(Error::Reopening(failure)),
            Err(e) if e.is_storage_failure() => Err(Error::Reopening(Failure {
                full: failure.full || e.is_disk_full(),
                ..failure
            })),
            Err(e) => Err(e),
        }
    }

    /// Opens the database at `path` (on the test's disk, if it has one).
    pub(super) fn open_again(&self) -> Result<Database> {
        #[cfg(test)]
        if let Some(disk) = &self.disk {
            return Self::open_disk(&self.path, disk);
        }
        Self::open_db(&self.path)
    }
}
