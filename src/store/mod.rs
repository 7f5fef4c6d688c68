//! The gateway's durable state in one redb database (DESIGN §5): Senders, Pipes, Grants
//! and settings. Tables are defined in [`schema`]; records live in [`senders`] and
//! [`pipes`].
//!
//! Every call here blocks on disk I/O: async code calls it through `smol::unblock`, and
//! no transaction outlives the closure that uses it, so none is held across an `.await`.

pub mod catalog;
pub mod outbox;
pub mod partials;
pub mod pipes;
pub mod schema;
pub mod senders;

use std::path::{Path, PathBuf};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};

pub use pipes::{Pipe, S3Settings};
pub use senders::Sender;

use crate::names::Invalid;
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
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("corrupt record {key:?} in table {table}: {detail}")]
    Corrupt {
        table: &'static str,
        key: String,
        detail: String,
    },
}

impl Error {
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
    redb::CommitError
);

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The open database. One process at a time may hold it (redb locks the file).
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database at `path`, migrating an older schema and refusing
    /// a newer one.
    pub fn open(path: &Path) -> Result<Store> {
        let db = match Database::create(path) {
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
            let txn = db.begin_write()?;
            schema::migrate(&txn, found)?;
            txn.commit()?;
        }
        Ok(Store { db })
    }

    /// A consistent read-only snapshot.
    pub fn read(&self) -> Result<Reader> {
        Ok(Reader {
            txn: self.db.begin_read()?,
        })
    }

    /// Runs `f` in one write transaction, committed (durably) only if `f` succeeds.
    pub fn write<R>(&self, f: impl FnOnce(&Writer) -> Result<R>) -> Result<R> {
        self.write_or_discard(true, f)
    }

    /// Like [`Store::write`], but with `commit == false` the transaction is rolled back
    /// even on success: a dry run that takes exactly the path of the real one.
    pub fn write_or_discard<R>(
        &self,
        commit: bool,
        f: impl FnOnce(&Writer) -> Result<R>,
    ) -> Result<R> {
        let w = Writer {
            txn: self.db.begin_write()?,
        };
        let r = f(&w)?;
        if commit {
            w.txn.commit()?;
        } else {
            w.txn.abort()?;
        }
        Ok(r)
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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
