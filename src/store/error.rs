//! What can go wrong with the store, in sentences for the technician, and how each
//! failure is classified (refused, internal, the disk failed, the disk is full).

use std::path::PathBuf;

use super::schema::{self, SCHEMA_VERSION};
use crate::names::Invalid;

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
    #[error(
        "{0} exists, and the -N suffix this pipe's keep-both policy adds would make a name longer than 255 bytes: upload under a shorter name"
    )]
    DerivedNameTooLong(String),
    #[error("operation {0} is not in the outbox")]
    NoSuchOp(u64),
    #[error(
        "pipe {id} still holds {files} undelivered file(s), {bytes} byte(s) ({ops} operation(s) in all, {parked} parked): removing it would lose them. 'ftpgate pipe disable {id}' stops it without losing anything; add --discard-backlog to remove it and its backlog anyway"
    )]
    PipeHasBacklog {
        id: String,
        files: u64,
        bytes: u64,
        ops: u64,
        parked: u64,
    },
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
            Error::Db(redb::Error::Io(e)) => crate::support::is_disk_full(e),
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
        redb::Error::Io(io) if crate::support::is_disk_full(io) => format!(
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
