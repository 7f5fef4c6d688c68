//! The one place where domain errors become SFTP status replies: a status code a client
//! acts on, and the same sentence an FTP client would see.

use crate::sftp::proto::Status;
use crate::spool;
use crate::store;
use crate::vfs::PathError;

/// A refusal: the status code and its message.
pub type Refusal = (Status, String);

pub fn path(e: &PathError) -> Refusal {
    (Status::Failure, format!("bad file name: {e}"))
}

pub fn store(e: &store::Error) -> Refusal {
    use store::Error::*;
    match e {
        NotFound(_) | NoParent(_) => (Status::NoSuchFile, e.to_string()),
        OverwriteRefused(_) => (Status::PermissionDenied, e.to_string()),
        Exists(_)
        | NotADirectory(_)
        | IsADirectory(_)
        | NotEmpty(_)
        | IntoItself(_)
        | Invalid(_)
        | DerivedNameTooLong(_) => (Status::Failure, e.to_string()),
        _ if e.is_disk_full() => disk_full(),
        Reopening(f) => (
            Status::Failure,
            format!(
                "the gateway's disk failed ({}); nothing was changed, try again later",
                f.why
            ),
        ),
        _ => {
            log::error!("store error: {e}");
            (
                Status::Failure,
                "local error in the gateway's database; nothing was changed, try again".into(),
            )
        }
    }
}

fn disk_full() -> Refusal {
    spool(&spool::Error::Full(spool::DISK_FULL.into()))
}

pub fn spool(e: &spool::Error) -> Refusal {
    use spool::Error::*;
    match e {
        Full(why) => (
            Status::Failure,
            format!("insufficient storage: {why}; the upload was not stored"),
        ),
        Disk(io) if crate::support::is_disk_full(io) => disk_full(),
        Store(s) => store(s),
        Busy | BadOffset { .. } | AlreadyDelivered(_) => (Status::Failure, e.to_string()),
        Disk(_) | Commit(_) => {
            log::error!("spool error: {e}");
            (
                Status::Failure,
                "local error writing the upload to the gateway's disk; it was not stored".into(),
            )
        }
    }
}

/// Anything that would return stored bytes.
pub fn no_reading() -> Refusal {
    (
        Status::PermissionDenied,
        "this gateway only receives files: reading them back is refused".into(),
    )
}
