//! The spool: upload bodies on disk, one file per upload, named by a random
//! id and never by the client's name.
//!
//! A body's life, and who owns it at each step:
//!
//! * **receiving**: a [`Body`] in `spool/tmp/ID`, owned by the session. Bytes are counted
//!   against the quota as they are written (a failed write is cut back off), and its CRC32C is
//!   computed on the way. It ends in exactly one of three ways, each consuming the `Body`:
//!   [`Spool::commit`], [`Body::keep_partial`] or [`Body::discard`] (dropping it is the
//!   blocking last resort).
//! * **partial**: a broken upload, fsynced and recorded with its size; the store's partials
//!   table owns it until it is resumed (back to receiving), replaced, or expires
//!   ([`partials`]).
//! * **ready**: committed: fsynced, `tmp/` fsynced, recorded in the catalog and outbox in
//!   one redb commit (a `226` is durable from here), then moved into
//!   `spool/ready/BUCKET/ID` ([`ready`]).
//!   The outbox owns it. Concurrent uploads share the directory fsync and the commit
//!   (`commit.rs`).
//! * **released**: delivered, replaced, cancelled or its Pipe removed: listed in the store's
//!   garbage by the transaction that lets go of it, then deleted by
//!   [`Spool::remove_bodies`], the one way a body leaves the spool: emptied and kept as a
//!   spare file for a later upload ([`spares`]), or deleted (through [`Disk::delete_body`],
//!   which finds it in `ready/` or `tmp/`). [`Spool::tidy`] then removes the buckets of
//!   `ready/` that emptied and the spares beyond what uploads need.
//!
//! After a crash, recovery (`recover.rs`) makes disk and store agree again and recomputes
//! the bytes held from the store (queued puts and partials), reading `ready/`'s buckets
//! but not their bodies.
//! Every disk call goes through the [`Disk`] seam, so tests inject full disks and failed
//! fsyncs and renames. Quotas: `max_bytes` bounds what the spool holds, `min_free` keeps
//! free space on the filesystem; both are checked before data is accepted and while it
//! arrives.

mod body;
mod commit;
pub mod disk;
mod durable_names;
pub mod partials;
mod ready;
mod receive;
mod recover;
mod remove;
pub mod reserve;
mod room;
mod spares;
#[cfg(test)]
mod tests;
mod threads;

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use body::{Body, Ended};
pub use commit::Publish;
pub use disk::Disk;
pub use receive::receive;
pub use remove::purge_garbage;

use crate::state::StateDir;
use crate::store::{self, Store, View};

/// What can go wrong with an upload's body. Mapped to FTP replies in `ftp::errors`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Full(String),
    #[error("disk error: {0}")]
    Disk(#[from] io::Error),
    #[error("{0}")]
    Store(#[from] store::Error),
    #[error("could not record the upload: {0}")]
    Commit(String),
    #[error("another session is uploading to this file right now")]
    Busy,
    #[error("cannot resume at byte {asked}: only {have} bytes of this file were received")]
    BadOffset { asked: u64, have: u64 },
    #[error("cannot append: {0} was already delivered and is no longer on this gateway")]
    AlreadyDelivered(String),
}

/// What a device is told while the disk is full.
pub const DISK_FULL: &str = "the gateway's disk is full: try again later";

/// Spool limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes the spool may hold (bodies waiting and being received); 0: no limit.
    pub max_bytes: u64,
    /// Free space to leave on the spool's filesystem.
    pub min_free: u64,
    /// How long a broken upload can be resumed.
    pub partial_ttl: Duration,
    /// Most bytes of broken uploads kept for resumption; 0: a quarter of `max_bytes`, or
    /// 4 GiB without one (see [`partials`]).
    pub partial_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 0,
            min_free: 64 << 20,
            partial_ttl: Duration::from_secs(24 * 3600),
            partial_max_bytes: 0,
        }
    }
}

/// A body being read (see [`Spool::reading`]).
pub struct Reading<'a> {
    spool: &'a Spool,
    id: String,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut readers = self.spool.readers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = readers.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                readers.remove(&self.id);
            }
        }
    }
}

/// The spool of one gateway.
pub struct Spool {
    tmp: PathBuf,
    ready: PathBuf,
    limits: Limits,
    store: Arc<Store>,
    /// Bytes held in tmp/ and ready/.
    used: AtomicU64,
    /// Bodies a session is writing now.
    busy: Mutex<HashSet<String>>,
    /// Garbage deleted from disk, to be forgotten by the store's next write.
    collected: Mutex<Vec<String>>,
    /// When an upload last started or was committed (ms since the epoch).
    last_upload_ms: AtomicU64,
    committer: commit::Committer,
    /// Makes new `tmp/` names durable while their bodies arrive.
    names: Arc<durable_names::DurableNames>,
    /// The filesystem under `tmp/` and `ready/` (a fault-injecting one in tests).
    disk: Arc<dyn Disk>,
    /// Space kept for the database on the day the disk fills.
    reserve: reserve::Reserve,
    /// Emptied bodies kept for reuse (see [`spares`]).
    spares: spares::Spares,
    /// Buckets of `ready/` a body left since the last [`Spool::tidy`] (see [`ready`]).
    emptied: Mutex<std::collections::BTreeSet<String>>,
    /// Bodies someone reads now (a delivery, a resumed upload's copy), with how many
    /// readers: released, they are deleted, never emptied for reuse under a reader.
    readers: Mutex<std::collections::HashMap<String, usize>>,
    /// Free space promised to sessions writing now.
    grants: reserve::Grants,
}

impl Spool {
    /// Creates the directories, recovers from whatever a crash left, and starts the
    /// committer thread. Blocking.
    pub fn open(state: &StateDir, store: Arc<Store>, limits: Limits) -> Result<Arc<Spool>, Error> {
        Spool::open_on(Arc::new(disk::Os), state, store, limits)
    }

    /// [`Spool::open`] on the given filesystem.
    pub fn open_on(
        disk: Arc<dyn Disk>,
        state: &StateDir,
        store: Arc<Store>,
        limits: Limits,
    ) -> Result<Arc<Spool>, Error> {
        let (tmp, ready) = (state.spool_tmp(), state.spool_ready());
        std::fs::create_dir_all(&tmp)?;
        std::fs::create_dir_all(&ready)?;
        let used = recover::recover(&*disk, &tmp, &ready, &store)?;
        let spares = spares::Spares::open(&*disk, state.spool_spare(), spares::LISTED)?;
        let names = Arc::new(durable_names::DurableNames::start(
            disk.clone(),
            tmp.clone(),
        )?);
        let committer = commit::Committer::start(
            disk.clone(),
            tmp.clone(),
            ready.clone(),
            store.clone(),
            names.clone(),
        )?;
        let reserve = reserve::Reserve::new(state.spool_reserve());
        Ok(Arc::new(Spool {
            disk,
            reserve,
            spares,
            emptied: Mutex::default(),
            readers: Mutex::default(),
            grants: reserve::Grants::default(),
            tmp,
            ready,
            limits,
            store,
            used: AtomicU64::new(used),
            busy: Mutex::new(HashSet::new()),
            collected: Mutex::default(),
            last_upload_ms: AtomicU64::new(0),
            committer,
            names,
        }))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes the spool holds now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Notes that uploads are arriving now.
    pub(crate) fn uploading(&self) {
        self.last_upload_ms
            .store(crate::clock::now_ms(), Ordering::Relaxed);
    }

    /// Whether uploads arrived within the last `window_ms`: the forwarder then leaves
    /// them room (devices must never wait for the backlog).
    pub fn ingesting(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_upload_ms.load(Ordering::Relaxed)) < window_ms
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.tmp.join(id)
    }

    pub(crate) fn ready_path(&self, id: &str) -> PathBuf {
        ready::path(&self.ready, id)
    }

    /// How many bodies sessions are writing now.
    fn receiving(&self) -> usize {
        self.busy.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn claim(&self, id: &str) -> Result<(), Error> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if busy.insert(id.to_string()) {
            Ok(())
        } else {
            Err(Error::Busy)
        }
    }

    fn release(&self, id: &str) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Registers a reader of body `id` until the guard drops: while it is read, releasing
    /// the body deletes it rather than emptying it for reuse. Register before opening.
    pub fn reading(&self, id: &str) -> Reading<'_> {
        *self
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_default() += 1;
        Reading {
            spool: self,
            id: id.to_string(),
        }
    }

    /// Deletes a body that will not be committed, and the record of the partial it
    /// continued if that still names it (blocking).
    pub(crate) fn forget_body(&self, id: &str, continues: Option<(String, crate::vfs::VPath)>) {
        if let Some((pipe, path)) = continues {
            let dropped = self.store.write(|w| match w.partial(&pipe, &path)? {
                Some(p) if p.body == id => w.take_partial(&pipe, &path).map(|_| ()),
                _ => Ok(()),
            });
            if let Err(e) = dropped {
                log::warn!("forgetting the partial of {path}: {e}");
            }
        }
        self.remove_bodies(&[id.to_string()]);
    }

    /// Where a queued body is: `ready/`, or still `tmp/` for the moment between its
    /// commit and its rename; `None` if it is in neither.
    pub fn body_path(&self, id: &str) -> Option<PathBuf> {
        [self.ready_path(id), self.tmp_path(id)]
            .into_iter()
            .find(|p| p.exists())
    }
}

/// A new body id: 32 hex digits, the first 12 the wall clock in milliseconds and the rest
/// random (80 bits). Ids sort by creation, so the store's tables keyed by body (owner,
/// garbage) are written at their ends and emptied from their fronts as the backlog drains,
/// instead of one scattered page per body: at a million queued bodies that is most of
/// what a delivery writes. A clock set back only costs that order, never uniqueness.
pub fn new_id() -> String {
    id_made_at(crate::clock::now_ms())
}

/// A body id as [`new_id`] would have made it at `ms` (milliseconds since the epoch).
pub fn id_made_at(ms: u64) -> String {
    format!(
        "{:012x}{}",
        ms & 0xffff_ffff_ffff,
        crate::support::random_hex(10)
    )
}

/// When body `id` was made, in milliseconds since the epoch, as [`new_id`] wrote it (ids
/// of 0.1, all random, give a meaningless time).
pub fn id_created_ms(id: &str) -> Option<u64> {
    u64::from_str_radix(id.get(..12)?, 16).ok()
}
