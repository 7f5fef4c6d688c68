//! The gateway's durable state in one redb database (DESIGN §5): Senders, Pipes, Grants,
//! each Pipe's namespace and outbox, partial uploads. Tables are defined in [`schema`];
//! records live in [`senders`], [`pipes`], [`namespace`] and [`partials`].
//!
//! Reads go through the [`View`] trait, implemented by both a read snapshot ([`Reader`],
//! of which redb allows many at once) and a write transaction ([`Writer`], one at a
//! time): code that only looks never takes the write lock.
//!
//! Every call here blocks on disk I/O: async code calls it through `smol::unblock`, and
//! no transaction outlives the closure that uses it, so none is held across an `.await`.

pub mod destination;
mod error;
pub mod namespace;
pub mod partials;
pub mod pipes;
pub mod schema;
pub mod senders;
mod view;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase};

pub use error::{Error, Failure, Result};
pub use namespace::{catalog, outbox};
pub use pipes::{Pipe, S3Settings};
pub use senders::Sender;
pub use view::{Reader, View, Writer};
use view::{all_records, decode, encode, one_record};

use schema::{META, SCHEMA_VERSION};

/// Memory redb may use to cache pages.
const CACHE_BYTES: usize = 4 << 20;

/// The open database (one process at a time may hold it: redb locks the file),
/// reopened by itself after the disk failed under it.
///
/// redb refuses every write after an I/O error (a full disk, say) until the database is
/// closed and opened again. So a storage failure marks the store failed, with its reason;
/// the next call closes the database and opens it again (when the transactions of other
/// threads have ended), and a call that finds it still failing says why. A full disk
/// therefore lasts as long as the disk is full, not until someone restarts the daemon.
pub struct Store {
    path: PathBuf,
    db: RwLock<Option<Database>>,
    health: Mutex<DbHealth>,
    /// Called when the database meets a full disk (the spool gives it its reserve).
    on_disk_full: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// Whether the disk failed under the database, and what to do about it.
#[derive(Debug)]
struct DbHealth {
    /// Why, from the first failure until a write works again.
    failed: Option<Failure>,
    since: Instant,
    /// Calls that failed meanwhile.
    failures: u64,
    /// The database must be reopened before its next use...
    stale: bool,
    /// ...not before this.
    retry_at: Instant,
}

/// How often a failed database is reopened.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

impl Store {
    /// Opens (or creates) the database at `path`, migrating an older schema and refusing
    /// a newer one.
    pub fn open(path: &Path) -> Result<Store> {
        Ok(Store {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Self::open_db(path)?)),
            health: Mutex::new(DbHealth {
                failed: None,
                since: Instant::now(),
                failures: 0,
                stale: false,
                retry_at: Instant::now(),
            }),
            on_disk_full: std::sync::OnceLock::new(),
        })
    }

    fn open_db(path: &Path) -> Result<Database> {
        // redb's default cache may grow to 1 GiB: with a million queued ops the daemon's
        // memory would grow with the backlog. The hot pages (the fronts of the indexes,
        // the newest ops) fit in a few MiB; the rest is read through the OS page cache.
        let db = match Database::builder().set_cache_size(CACHE_BYTES).create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::InUse(path.to_path_buf()));
            }
            Err(e) => return Err(e.into()),
        };
        // It holds password hashes and S3 secrets.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        let (found, written_by) = {
            let txn = db.begin_read()?;
            match txn.open_table(META) {
                Ok(meta) => (
                    meta.get("schema_version")?
                        .and_then(|v| v.value().parse::<u64>().ok())
                        .unwrap_or(0),
                    meta.get("written_by")?
                        .map(|v| v.value().to_string())
                        .unwrap_or_default(),
                ),
                Err(redb::TableError::TableDoesNotExist(_)) => (0, String::new()),
                Err(e) => return Err(e.into()),
            }
        };
        if found > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found,
                written_by,
            });
        }
        if found < SCHEMA_VERSION {
            let w = Writer {
                txn: db.begin_write()?,
            };
            schema::migrate(&w, found)?;
            w.txn.commit()?;
            if found > 0 {
                log::info!(
                    "{}: migrated from schema {found} to {SCHEMA_VERSION}",
                    path.display()
                );
            }
        }
        Ok(db)
    }

    /// Runs `f` with the database: reopened first if the disk failed under it (at most
    /// once a second; calls in between fail at once with the reason), and marked failed if
    /// `f` meets a storage failure. The failure is logged once, and its end (the first
    /// write that works again) with the number of calls that failed meanwhile.
    fn with_db<R>(&self, write: bool, f: impl FnOnce(&Database) -> Result<R>) -> Result<R> {
        {
            let mut h = self.health();
            if h.stale {
                let failure = h.failed.clone().unwrap_or_default();
                if Instant::now() < h.retry_at {
                    // Reads try the handle there is (redb may still serve them); writes
                    // would only fail again.
                    if write {
                        h.failures += 1;
                        return Err(Error::Reopening(failure));
                    }
                } else {
                    h.retry_at = Instant::now() + REOPEN_EVERY;
                    drop(h);
                    self.reopen(failure)?;
                    self.health().stale = false;
                }
            }
        }
        let db = self.db.read().unwrap_or_else(|e| e.into_inner());
        let Some(db) = db.as_ref() else {
            return Err(Error::Reopening(
                self.health().failed.clone().unwrap_or_default(),
            ));
        };
        let r = f(db);
        let mut h = self.health();
        match &r {
            Err(e) if e.is_storage_failure() => {
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
                if e.is_disk_full()
                    && let Some(f) = self.on_disk_full.get()
                {
                    drop(h);
                    f();
                    return r;
                }
            }
            Ok(_) if write && h.failed.is_some() => {
                log::warn!(
                    "{}: the database writes again, after {:.0}s and {} refused calls",
                    self.path.display(),
                    h.since.elapsed().as_secs_f64(),
                    h.failures
                );
                h.failed = None;
            }
            _ => {}
        }
        r
    }

    /// Sets what to do when the database meets a full disk (once).
    pub fn on_disk_full(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_disk_full.set(Box::new(f));
    }

    fn health(&self) -> std::sync::MutexGuard<'_, DbHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the database is failing now, if it is: for `status`.
    pub fn trouble(&self) -> Option<String> {
        self.health().failed.as_ref().map(|f| f.why.clone())
    }

    /// Closes the database and opens it again. Fails while another thread still has a
    /// transaction open (redb holds the file and its lock until every one has ended), or
    /// while the disk still fails.
    fn reopen(&self, failure: Failure) -> Result<()> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        drop(db.take());
        match Self::open_db(&self.path) {
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

    /// A consistent read-only snapshot.
    pub fn read(&self) -> Result<Reader> {
        self.with_db(false, |db| {
            Ok(Reader {
                txn: db.begin_read()?,
            })
        })
    }

    /// Runs `f` in one write transaction, committed (durably) only if `f` succeeds.
    pub fn write<R>(&self, f: impl FnOnce(&Writer) -> Result<R>) -> Result<R> {
        self.write_or_discard(true, f)
    }

    /// Like [`Store::write`], but the commit is not made durable by itself: it reaches the
    /// disk with the next durable commit, and is lost if the process dies first. For state
    /// that start-up resets anyway (claims of in-flight ops).
    pub fn write_volatile<R>(&self, f: impl FnOnce(&Writer) -> Result<R>) -> Result<R> {
        self.with_db(true, |db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)?;
            let w = Writer { txn };
            let r = f(&w)?;
            w.txn.commit()?;
            Ok(r)
        })
    }

    /// Like [`Store::write`], but with `commit == false` the transaction is rolled back
    /// even on success: a dry run that takes exactly the path of the real one.
    pub fn write_or_discard<R>(
        &self,
        commit: bool,
        f: impl FnOnce(&Writer) -> Result<R>,
    ) -> Result<R> {
        self.with_db(commit, |db| {
            let mut txn = db.begin_write()?;
            // Each durable commit saves redb's allocator state, so that opening the
            // database after a crash or power cut takes a moment, not a walk of every page.
            txn.set_quick_repair(true);
            let w = Writer { txn };
            let r = f(&w)?;
            if commit {
                w.txn.commit()?;
            } else {
                w.txn.abort()?;
            }
            Ok(r)
        })
    }
}
