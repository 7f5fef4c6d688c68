//! The destination seam: a [`Sink`] does one operation, blocking, and says whether a
//! failure is worth retrying. S3 and directories implement it; tests can plug in their
//! own to inject faults.

use std::path::Path;

use crate::checksum::Checksum;
use crate::store::Pipe;

/// Object metadata sent with every put.
#[derive(Debug, Clone)]
pub struct Meta {
    pub sender: String,
    pub pipe: String,
    pub gateway: String,
    /// Original modification time, seconds since the epoch.
    pub mtime: u64,
    /// The Pipe never overwrites (`refuse`, `keep-both`): the put must not replace an
    /// object that is not its own, even one the namespace has forgotten. Done by a
    /// conditional write (S3 `If-None-Match: *`; a directory's rename that does not
    /// replace).
    pub only_new: bool,
    /// The spool body's id: a put sent again (its answer was lost, or its mtime
    /// changed) recognises its own object by it.
    pub upload: String,
}

/// A failed operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub transient: bool,
    pub message: String,
    /// A conditional put found another object at its key.
    pub exists: bool,
}

impl SinkError {
    pub fn transient(message: impl Into<String>) -> SinkError {
        SinkError {
            transient: true,
            message: message.into(),
            exists: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> SinkError {
        SinkError {
            transient: false,
            message: message.into(),
            exists: false,
        }
    }

    /// A put that would have replaced an object at `key` the Pipe's policy keeps:
    /// parked until a person moves that object away or changes the policy.
    pub fn exists(key: &str) -> SinkError {
        SinkError {
            transient: false,
            message: format!(
                "{key} already exists at the destination and this Pipe never overwrites \
                 (overwrite policy refuse or keep-both; the gateway no longer remembers \
                 that name): move that object away and run 'ftpgate spool retry', or \
                 'ftpgate pipe set ID --overwrite replace'"
            ),
            exists: true,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// Where a Pipe's operations land. Keys are relative (`prefix/a/b.jpg`); directory
/// markers end in `/`. Every call blocks: the forwarder runs them off the executor.
pub trait Sink: Send + Sync {
    /// Stores `body` (`size` bytes, checksum `sum` as taken on receipt) under `key`. The
    /// bytes read from the spool are checked against `sum` before the destination may
    /// keep them: a body damaged on the gateway's disk is never delivered. Returns the
    /// object's ETag when the destination gives one.
    fn put(
        &self,
        key: &str,
        body: &Path,
        size: u64,
        sum: &Checksum,
        meta: &Meta,
    ) -> Result<Option<String>, SinkError>;
    fn delete(&self, key: &str) -> Result<(), SinkError>;
    /// Moves `from` to `to` (server-side copy, then delete). Done already counts as done.
    fn rename(&self, from: &str, to: &str) -> Result<(), SinkError>;
    fn mkdir(&self, key: &str) -> Result<(), SinkError>;
    fn rmdir(&self, key: &str) -> Result<(), SinkError>;
    /// A harmless real request that proves the destination works (`pipe test`).
    fn probe(&self) -> Result<String, SinkError>;
    /// Cleans up what deliveries of earlier daemons (or failed ones) left at the
    /// destination: open S3 multipart uploads, a directory's temporary files. Never
    /// touches what a running delivery uses. Returns how many it removed.
    fn sweep(&self) -> Result<usize, SinkError> {
        Ok(0)
    }
    /// Lets go of what the destination keeps while idle (kept-alive connections and their
    /// buffers) once nothing was sent for `quiet`; the next operation makes it again.
    fn rest(&self, _quiet: std::time::Duration) {}
    /// How far the destination's clock is from ours (seconds, positive: ahead), when it
    /// matters and is known (S3 signatures; see `s3::http`).
    fn clock_skew_secs(&self) -> Option<i64> {
        None
    }
}

/// The key prefix of a Pipe's destination (S3 prefix; empty for directories).
pub fn prefix(pipe: &Pipe) -> &str {
    match &pipe.dest {
        crate::store::destination::Destination::S3 { prefix, .. } => prefix,
        crate::store::destination::Destination::Dir { .. } => "",
    }
}

/// What a delivery reports when the bytes it read from the spool are not the bytes that
/// were acknowledged: the op is parked, the destination keeps nothing.
pub fn corrupted(got: &Checksum, want: &Checksum) -> SinkError {
    SinkError::permanent(format!(
        "the spool body no longer matches its checksum ({} {}, expected {}): disk corruption",
        want.algorithm(),
        got.hex(),
        want.hex()
    ))
}
