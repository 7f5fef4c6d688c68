//! Room for uploads: the bytes the spool holds against `--spool-max-bytes`, the disk's
//! free space against `--spool-min-free` and what is promised to sessions writing now
//! ([`reserve`]), and the reserve file given to the database when the disk fills.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DISK_FULL, Error, Spool, reserve};

impl Spool {
    /// Free bytes on the spool's filesystem.
    pub fn free_space(&self) -> io::Result<u64> {
        self.disk.free_space(&self.ready)
    }

    /// Takes the reserve again if there is room for it (blocking; the daemon calls this
    /// now and then).
    pub fn restore_reserve(&self) -> io::Result<bool> {
        if self.reserve.is_held() {
            return Ok(true);
        }
        let free = self.free_space()?;
        self.reserve.restore(
            free.saturating_sub(self.grants.outstanding()),
            self.limits.min_free,
        )
    }

    /// The database met a full disk: gives it the reserve (blocking).
    pub fn release_reserve(&self) {
        self.reserve.release();
    }

    /// Checks that the quota is not reached and that `disk` more bytes fit on the disk,
    /// then promises those to the caller until the returned grant is dropped: sessions
    /// writing at once cannot together pass the free space to keep.
    pub fn grant(&self, disk: u64) -> Result<reserve::Grant, Error> {
        self.check_quota(0)?;
        self.check_disk(disk)?;
        Ok(self.grants.take(disk))
    }

    /// [`Spool::grant`] off the executor (it asks the filesystem for its free space).
    pub async fn grant_async(self: &Arc<Self>, disk: u64) -> Result<reserve::Grant, Error> {
        let spool = self.clone();
        smol::unblock(move || spool.grant(disk)).await
    }

    /// Whether `more` bytes may still come in: within `--spool-max-bytes`, and on the disk
    /// beyond `--spool-min-free` and what is promised to others.
    pub fn check_room(&self, more: u64) -> Result<(), Error> {
        self.check_quota(more)?;
        self.check_disk(more)
    }

    pub(super) fn check_quota(&self, more: u64) -> Result<(), Error> {
        let used = self.used();
        if self.limits.max_bytes > 0 && used.saturating_add(more) > self.limits.max_bytes {
            return Err(Error::Full(format!(
                "the gateway's spool is full ({used} of {} bytes waiting for delivery): try again later",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }

    pub(super) fn check_disk(&self, more: u64) -> Result<(), Error> {
        let free = self.free_space()?.saturating_sub(self.grants.outstanding());
        if free < self.limits.min_free.saturating_add(more) {
            return Err(Error::Full(format!(
                "the gateway's disk is almost full ({free} bytes free): try again later"
            )));
        }
        if self.reserve.given_away() {
            return Err(Error::Full(format!(
                "{DISK_FULL} (its last reserve went to recording deliveries)"
            )));
        }
        Ok(())
    }

    pub(super) fn add_used(&self, n: u64) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn sub_used(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}
