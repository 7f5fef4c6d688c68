//! The one place where domain errors become FTP replies.

use crate::ftp::datachan::DataError;
use crate::ftp::proto::Reply;
use crate::spool;
use crate::store;
use crate::vfs::PathError;

/// `421`: the gateway turns the connection or the login away; the session closes.
pub fn refused(r: crate::gateway::Refused) -> Reply {
    Reply::new(421, r.to_string())
}

pub fn path(e: &PathError) -> Reply {
    Reply::new(553, format!("Bad file name: {e}."))
}

pub fn store(e: &store::Error) -> Reply {
    use store::Error::*;
    match e {
        NotFound(_) | Exists(_) | NotADirectory(_) | IsADirectory(_) | NotEmpty(_)
        | OverwriteRefused(_) => Reply::new(550, format!("{e}.")),
        NoParent(_) | IntoItself(_) | Invalid(_) | DerivedNameTooLong(_) => {
            Reply::new(553, format!("{e}."))
        }
        _ if e.is_disk_full() => disk_full(),
        Reopening(f) => Reply::new(
            451,
            format!(
                "The gateway's disk failed ({}); nothing was changed. Try again later.",
                f.why
            ),
        ),
        _ => {
            log::error!("store error: {e}");
            Reply::new(
                451,
                "Local error in the gateway's database; nothing was changed. Try again.",
            )
        }
    }
}

/// `452`: the disk is full (a state that passes: the device should try again).
pub fn disk_full() -> Reply {
    spool(&spool::Error::Full(spool::DISK_FULL.into()))
}

pub fn spool(e: &spool::Error) -> Reply {
    use spool::Error::*;
    match e {
        Full(why) => Reply::new(
            452,
            format!("Insufficient storage: {why}. The upload was not stored."),
        ),
        Disk(io) if crate::support::is_disk_full(io) => disk_full(),
        Store(s) => store(s),
        Busy => Reply::new(450, format!("{e}: try again when it has finished.")),
        BadOffset { .. } => Reply::new(554, format!("{e}.")),
        AlreadyDelivered(_) => Reply::new(550, format!("{e}.")),
        Disk(_) | Commit(_) => {
            log::error!("spool error: {e}");
            Reply::new(
                451,
                "Local error writing the upload to the gateway's disk; it was not stored.",
            )
        }
    }
}

/// `425`: the data connection could not be opened; `522`: its TLS failed or was not the
/// session's.
pub fn data(e: &DataError) -> Reply {
    use DataError::*;
    match e {
        NoPlan | AcceptTimeout(_) | Connect(..) | Io(_) => {
            Reply::new(425, format!("Cannot open the data connection: {e}."))
        }
        TlsUnavailable => Reply::new(425, format!("{}.", capitalised(&e.to_string()))),
        TlsFailed(_) | TlsTimedOut | NotResumed { .. } => {
            Reply::new(522, format!("{}.", capitalised(&e.to_string())))
        }
    }
}

/// `426`: a transfer was cut off (`what` says how, and what became of the bytes).
pub fn interrupted(what: &str) -> Reply {
    Reply::new(426, what)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `425`: every port of the passive range is taken.
pub fn no_passive_port() -> Reply {
    Reply::new(425, "No passive port is free right now; try again.")
}
