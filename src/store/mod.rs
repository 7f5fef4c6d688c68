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
pub mod namespace;
pub mod partials;
pub mod pipes;
pub mod schema;
pub mod senders;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    Value, WriteTransaction,
};
use serde::{Serialize, de::DeserializeOwned};

pub use namespace::{catalog, outbox};
pub use pipes::{Pipe, S3Settings};
pub use senders::Sender;

use crate::names::Invalid;
use crate::vfs::VPath;
use namespace::Overwrite;
use schema::{META, SCHEMA_VERSION};

/// What can go wrong with the store. The messages are for the technician: they say what
/// is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error(
        "sender {0:?} already exists: choose another name, or change it with 'ftpgate sender set'"
    )]
    SenderExists(String),
    #[error("no sender named {0:?}: see 'ftpgate sender list'")]
    NoSuchSender(String),
    #[error("pipe id {0:?} is already taken: choose another --id, or leave it out to generate one")]
    PipeExists(String),
    #[error("no pipe with id {0:?}: see 'ftpgate pipe list'")]
    NoSuchPipe(String),
    #[error("sender {0:?} has no grant for pipe {1:?}: see 'ftpgate sender show {0}'")]
    NotGranted(String, String),
    #[error(
        "{0} is in use by another ftpgate process: wait for it to finish, or stop the other 'ftpgate serve'"
    )]
    InUse(PathBuf),
    #[error(
        "{path} was written by {written_by} (schema {found}), newer than this ftpgate ({ours}, schema {SCHEMA_VERSION}): install that version or newer"
    , ours = schema::WRITTEN_BY)]
    NewerSchema {
        path: PathBuf,
        found: u64,
        written_by: String,
    },
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("{0} is a directory")]
    IsADirectory(String),
    #[error("{0} is not empty: remove what it holds first")]
    NotEmpty(String),
    #[error("{0}: the directory it goes into does not exist (create it with MKD)")]
    NoParent(String),
    #[error("{0} exists and this pipe refuses overwrites: upload under another name")]
    OverwriteRefused(String),
    #[error("cannot move {0} into itself")]
    IntoItself(String),
    #[error("operation {0} is not in the outbox")]
    NoSuchOp(u64),
    #[error("{}", db_text(.0))]
    Db(#[from] redb::Error),
    #[error("the gateway's database cannot be written ({}); it is reopened by itself once the disk works again", .0.why)]
    Reopening(Failure),
    #[error("corrupt record {key:?} in table {table}: {detail}")]
    Corrupt {
        table: &'static str,
        key: String,
        detail: String,
    },
}

impl Error {
    /// The disk failed under the database (full, or an I/O error): redb refuses every
    /// write after one until the database is reopened.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            Error::Db(redb::Error::Io(_) | redb::Error::PreviousIo) | Error::Reopening(_)
        )
    }

    /// The store itself failed (the database, the disk, a corrupt record), as opposed to
    /// refusing what was asked.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Db(_) | Error::Reopening(_) | Error::Corrupt { .. }
        )
    }

    /// The disk (or the quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Db(redb::Error::Io(e)) => crate::spool::is_disk_full(e),
            Error::Reopening(f) => f.full,
            _ => false,
        }
    }

    /// True when the user asked for something malformed (exit code 2), as opposed to
    /// something that failed against the current state (exit code 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Invalid(_))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn db_text(e: &redb::Error) -> String {
    match e {
        redb::Error::Io(io) if crate::spool::is_disk_full(io) => format!(
            "the gateway's disk is full ({io}): nothing was changed; free space on it and try again"
        ),
        e => format!("database error: {e}"),
    }
}

/// Why the database failed under the store.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub why: String,
    /// The disk (or quota) was full.
    pub full: bool,
}

/// Memory redb may use to cache pages.
const CACHE_BYTES: usize = 4 << 20;

/// The open database. One process at a time may hold it (redb locks the file).
/// The database, reopened by itself after the disk failed under it.
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

/// A read-only view of the store.
pub struct Reader {
    txn: ReadTransaction,
}

/// A view inside a write transaction: reads see its own writes.
pub struct Writer {
    txn: WriteTransaction,
}

#[cfg(test)]
impl Writer {
    /// Overwrites the catalog record of (pipe, path) with bytes no version can read.
    pub(crate) fn corrupt_entry(&self, pipe: &str, path: &str) -> Result<()> {
        self.txn
            .open_table(schema::CATALOG)?
            .insert((pipe, path), &b"\xffnot a record"[..])?;
        Ok(())
    }
}

/// Read access to the store, the same for a snapshot and for a write transaction: every
/// read is written once, here, over [`View::table`].
pub trait View: Sized {
    /// Opens a table for reading.
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_>;

    fn sender(&self, name: &str) -> Result<Option<Sender>> {
        senders::get(self, name)
    }

    /// The Sender named `name`, or [`Error::NoSuchSender`].
    fn existing_sender(&self, name: &str) -> Result<Sender> {
        self.sender(name)?
            .ok_or_else(|| Error::NoSuchSender(name.to_string()))
    }

    fn senders(&self) -> Result<Vec<Sender>> {
        senders::all(self)
    }

    /// Pipe ids granted to `name`, in id order.
    fn grants_of(&self, name: &str) -> Result<Vec<String>> {
        senders::grants_of(self, name)
    }

    /// Every (Sender, Pipe) Grant, ordered by Sender then Pipe.
    fn grants(&self) -> Result<Vec<(String, String)>> {
        senders::grants(self)
    }

    fn pipe(&self, id: &str) -> Result<Option<Pipe>> {
        pipes::get(self, id)
    }

    /// The Pipe with `id`, or [`Error::NoSuchPipe`].
    fn existing_pipe(&self, id: &str) -> Result<Pipe> {
        self.pipe(id)?
            .ok_or_else(|| Error::NoSuchPipe(id.to_string()))
    }

    fn pipes(&self) -> Result<Vec<Pipe>> {
        pipes::all(self)
    }

    /// The catalog entry at `path` (the root always exists).
    fn entry(&self, pipe: &str, path: &VPath) -> Result<Option<catalog::Entry>> {
        catalog::entry(self, pipe, path)
    }

    /// Direct children of `dir`, in name order.
    fn children(&self, pipe: &str, dir: &VPath) -> Result<Vec<(String, catalog::Entry)>> {
        catalog::list(self, pipe, dir)
    }

    /// Where an upload to `path` may go under `policy`, or the refusal.
    fn check_upload(&self, pipe: &str, path: &VPath, policy: Overwrite) -> Result<VPath> {
        catalog::check_upload(self, pipe, path, policy)
    }

    fn op(&self, id: u64) -> Result<Option<outbox::Op>> {
        outbox::op(self, id)
    }

    /// Up to `limit` queued ops after op `after`, in acknowledgement order.
    fn ops_page(&self, pipe: Option<&str>, after: u64, limit: usize) -> Result<Vec<outbox::Op>> {
        outbox::page(self, pipe, after, limit)
    }

    /// A Pipe's backlog counters.
    fn backlog(&self, pipe: &str) -> Result<outbox::Backlog> {
        outbox::backlog(self, pipe)
    }

    /// A Pipe's oldest queued op.
    fn oldest_op(&self, pipe: &str) -> Result<Option<outbox::Op>> {
        outbox::oldest(self, pipe)
    }

    /// A Pipe's first parked op.
    fn first_parked(&self, pipe: &str) -> Result<Option<outbox::Op>> {
        outbox::first_parked(self, pipe)
    }

    /// Ids of up to `limit` ops of a Pipe that may start by `now_ms`, earliest due first.
    fn ready(&self, pipe: &str, now_ms: u64, limit: usize) -> Result<Vec<u64>> {
        outbox::ready(self, pipe, now_ms, limit)
    }

    /// When a Pipe's earliest ready op is due (ms since the epoch).
    fn next_due(&self, pipe: &str) -> Result<Option<u64>> {
        outbox::next_due(self, pipe)
    }

    /// The newest queued op that touches (pipe, key).
    fn last_op_on(&self, pipe: &str, key: &str) -> Result<Option<u64>> {
        outbox::last_on(self, pipe, key)
    }

    /// Whether a queued put owns this spool body.
    fn body_queued(&self, body: &str) -> Result<bool> {
        Ok(self.table(schema::BODIES)?.get(body)?.is_some())
    }

    /// Spool bodies waiting to be deleted.
    fn garbage(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for row in self.table(schema::GARBAGE)?.iter()? {
            out.push(row?.0.value().to_string());
        }
        Ok(out)
    }

    fn partial(&self, pipe: &str, path: &VPath) -> Result<Option<partials::Partial>> {
        partials::get(self, pipe, path)
    }

    /// Every partial upload as (pipe, path, partial).
    fn partials(&self) -> Result<Vec<(String, String, partials::Partial)>> {
        partials::all(self)
    }
}

impl View for Reader {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_> {
        Ok(self.txn.open_table(def)?)
    }
}

impl View for Writer {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_> {
        Ok(self.txn.open_table(def)?)
    }
}

/// Decodes a JSON record, naming the table and key if it is damaged.
fn decode<T: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        table,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain structs of strings, numbers and lists: serializing cannot fail.
    serde_json::to_vec(value).expect("records serialize to JSON")
}

/// Every record of a `name → JSON` table, in key order.
fn all_records<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        out.push(decode(name, k.value(), v.value())?);
    }
    Ok(out)
}

fn one_record<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
    key: &str,
) -> Result<Option<T>> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(name, key, v.value())?)),
        None => Ok(None),
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
