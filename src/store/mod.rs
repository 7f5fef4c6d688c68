//! The gateway's durable state in one redb database: Senders, Pipes, Grants,
//! each Pipe's namespace and outbox, partial uploads. Tables are defined in [`schema`];
//! records live in [`senders`], [`pipes`], [`namespace`] and [`partials`].
//!
//! Reads go through the [`View`] trait, implemented by both a read snapshot ([`Reader`],
//! of which redb allows many at once) and a write transaction ([`Writer`], one at a
//! time): code that only looks never takes the write lock.
//!
//! Every call here blocks on disk I/O: async code calls it through `smol::unblock`, and
//! no transaction outlives the closure that uses it, so none is held across an `.await`.

pub mod activity;
pub mod destination;
mod error;
pub mod events;
mod health;
pub mod hooks;
mod idle;
pub mod namespace;
mod open;
pub mod partials;
pub mod pipes;
#[cfg(test)]
pub mod power_cut;
mod record;
pub mod schema;
pub mod senders;
mod view;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable};

pub use error::{Error, Failure, Result};
pub use namespace::{catalog, outbox};
pub use pipes::{Pipe, S3Settings};
pub use senders::Sender;
pub use view::{Reader, View, Writer};
use view::{all_records, decode, encode, one_record};

use health::DbHealth;

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
    /// Called after every durable commit (the forwarder waits for one, see [`Unsynced`]).
    on_durable: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Durable commits begun so far; each is numbered when it begins, under redb's
    /// write lock, so a commit numbered above n began after everything committed by then.
    durable_begun: AtomicU64,
    /// The number of the last durable commit that succeeded.
    durable_done: AtomicU64,
    /// Times the database was opened again (a non-durable commit does not survive it).
    generation: AtomicU64,
    /// One more than the highest `durable_begun` a non-durable commit saw (0: none): all of
    /// them are on disk once `durable_done` reaches it.
    volatile_need: AtomicU64,
    /// The steady clock: (ms it read when this process opened the store, and when).
    steady: Mutex<(u64, Instant)>,
    /// The read snapshots alive, and when the last commit was (none since the cache was
    /// last given back): see [`idle`].
    readers: idle::Readers,
    last_commit: Mutex<Option<Instant>>,
    /// Tests: the database lives on this disk instead of the file at `path`.
    #[cfg(test)]
    disk: Option<power_cut::Disk>,
}

/// A non-durable commit that is not on disk yet: see [`Store::write_volatile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsynced {
    generation: u64,
    /// Durable commits begun when it was made.
    begun: u64,
}

/// Where a non-durable commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// A durable commit made after it has succeeded: it survives a crash now.
    OnDisk,
    /// Not yet.
    Pending,
    /// The database was opened again meanwhile (after a disk failure): it is gone.
    Lost,
}

impl Store {
    /// Opens (or creates) the database at `path`, migrating an older schema and refusing
    /// a newer one.
    pub fn open(path: &Path) -> Result<Store> {
        Ok(Self::with(path, Self::open_db(path)?))
    }

    fn with(path: &Path, db: Database) -> Store {
        Store {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
            health: Mutex::new(DbHealth {
                failed: None,
                since: Instant::now(),
                failures: 0,
                stale: false,
                retry_at: Instant::now(),
            }),
            on_disk_full: std::sync::OnceLock::new(),
            on_durable: std::sync::OnceLock::new(),
            durable_begun: AtomicU64::new(0),
            durable_done: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            volatile_need: AtomicU64::new(0),
            steady: Mutex::new((0, Instant::now())),
            readers: idle::Readers::default(),
            last_commit: Mutex::new(None),
            #[cfg(test)]
            disk: None,
        }
        .with_steady_clock()
    }

    /// Starts the steady clock where the last run left it.
    fn with_steady_clock(self) -> Store {
        let stored = self
            .read()
            .and_then(|r| {
                Ok(r.table(schema::COUNTERS)?
                    .get("steady_ms")?
                    .map_or(0, |v| v.value()))
            })
            .unwrap_or(0);
        *self.steady.lock().unwrap_or_else(|e| e.into_inner()) = (stored, Instant::now());
        self
    }

    /// The steady clock, in ms: how long the gateway has run, summed over every run of
    /// this state directory (each write of [`Writer::expire`] stores it). Retention is
    /// measured on it, so a wall clock that jumps by years when NTP first answers, or
    /// back to 1970 on a box without a real-time clock, neither forgets everything at
    /// once nor keeps it forever. Time while the gateway is off does not count.
    pub fn steady_ms(&self) -> u64 {
        let (base, at) = *self.steady.lock().unwrap_or_else(|e| e.into_inner());
        base.saturating_add(at.elapsed().as_millis() as u64)
    }

    /// Compacts the state file when more than half of it is free (and it is over 4 MiB),
    /// returning its size before and after. redb reuses free pages but never gives them
    /// back to the file system; this does, at start-up only, before anything else uses
    /// the database.
    pub fn compact_if_sparse(&self) -> Result<Option<(u64, u64)>> {
        let before = self.file_bytes();
        if before < 4 << 20 {
            return Ok(None);
        }
        let used = self.used_bytes()?;
        if used * 2 >= before {
            return Ok(None);
        }
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = db.as_mut() {
            db.compact().map_err(|e| Error::Db(e.into()))?;
        }
        drop(db);
        Ok(Some((before, self.file_bytes())))
    }

    /// Bytes of the state file in pages that hold data (the rest is free for reuse). Takes
    /// the write lock for a moment: not for every status request.
    pub fn used_bytes(&self) -> Result<u64> {
        self.with_db(false, |db| {
            let txn = db.begin_write()?;
            let stats = txn.stats()?;
            txn.abort()?;
            Ok(stats.allocated_pages() * stats.page_size() as u64)
        })
    }

    /// Where the state file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state file's size on disk.
    pub fn file_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Moves the steady clock forward (tests of retention, and `bench-state`).
    pub fn advance_steady(&self, by: Duration) {
        let mut s = self.steady.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_add(by.as_millis() as u64);
    }

    /// Tests: opens (or creates) the database on a disk that can lose power.
    #[cfg(test)]
    pub fn open_on(disk: &power_cut::Disk) -> Result<Store> {
        let path = Path::new("<power-cut disk>");
        let mut store = Self::with(path, Self::open_disk(path, disk)?);
        store.disk = Some(disk.clone());
        Ok(store.with_steady_clock())
    }

    /// A consistent read-only snapshot.
    pub fn read(&self) -> Result<Reader> {
        self.with_db(false, |db| {
            Ok(Reader {
                txn: db.begin_read()?,
                _live: self.readers.enter(),
            })
        })
    }

    /// Runs `f` in one write transaction, committed (durably) only if `f` succeeds.
    pub fn write<R>(&self, f: impl FnOnce(&Writer) -> Result<R>) -> Result<R> {
        self.write_or_discard(true, f)
    }

    /// Like [`Store::write`], but the commit is not made durable by itself: redb keeps it
    /// in memory until the next durable commit, and it is lost if the process dies (even by
    /// `kill -9`) or the power fails first. [`Store::sync_state`] says when it is safe.
    pub fn write_volatile<R>(&self, f: impl FnOnce(&Writer) -> Result<R>) -> Result<(R, Unsynced)> {
        let generation = self.generation.load(Ordering::SeqCst);
        self.with_db(true, |db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::None)?;
            let w = Writer {
                txn,
                steady_ms: self.steady_ms(),
            };
            let r = f(&w)?;
            w.txn.commit()?;
            self.note_commit();
            // Read after the commit: every durable commit numbered above this began later,
            // so it carries this one to the disk.
            let begun = self.durable_begun.load(Ordering::SeqCst);
            self.volatile_need.fetch_max(begun + 1, Ordering::SeqCst);
            Ok((r, Unsynced { generation, begun }))
        })
    }

    /// Whether a non-durable commit has reached the disk.
    pub fn sync_state(&self, commit: &Unsynced) -> SyncState {
        if self.generation.load(Ordering::SeqCst) != commit.generation {
            SyncState::Lost
        } else if self.durable_done.load(Ordering::SeqCst) > commit.begun {
            SyncState::OnDisk
        } else {
            SyncState::Pending
        }
    }

    /// Sets what to do after each durable commit (once).
    pub fn on_durable(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_durable.set(Box::new(f));
    }

    /// Like [`Store::write`], but with `commit == false` the transaction is rolled back
    /// even on success: a dry run that takes exactly the path of the real one.
    pub fn write_or_discard<R>(
        &self,
        commit: bool,
        f: impl FnOnce(&Writer) -> Result<R>,
    ) -> Result<R> {
        let r = self.with_db(commit, |db| {
            let txn = db.begin_write()?;
            // Numbered while this transaction holds the write lock.
            let number = self.durable_begun.fetch_add(1, Ordering::SeqCst) + 1;
            // One fsync per commit (redb's one-phase commit with checksums), not quick
            // repair's two plus its allocator snapshot, whose cost grows with the file
            // (see `repair_progress`).
            let w = Writer {
                txn,
                steady_ms: self.steady_ms(),
            };
            let r = f(&w)?;
            if commit {
                w.txn.commit()?;
                self.durable_done.fetch_max(number, Ordering::SeqCst);
                self.note_commit();
            } else {
                w.txn.abort()?;
            }
            Ok(r)
        });
        if commit
            && r.is_ok()
            && let Some(f) = self.on_durable.get()
        {
            f();
        }
        r
    }
}
