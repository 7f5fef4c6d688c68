//! Writing a body at any offset, for SFTP: clients pipeline many `WRITE`s, and some send
//! them out of order or go back over bytes already sent. A write at the end appends and
//! keeps the running checksum (nearly every upload); any other write makes the checksum
//! stale, and [`Body::fresh_checksum`] reads the file back once before the commit, so the
//! checksum sent to the destination is always of the final bytes.
//!
//! The quota and free space are checked as the body grows, as [`crate::spool::receive`] does for
//! FTP: over the quota the oldest partials make room first; free space is asked of the
//! filesystem once per [`STATVFS_EVERY`] bytes.

use std::io::{self, Seek, SeekFrom};

use super::{Body, Error, rehash};
use crate::checksum::Checksum;

/// Free space is checked when the body's end crosses a multiple of this.
const STATVFS_EVERY: u64 = 8 << 20;
/// Write-behind, as for FTP: after this many bytes, what is written so far is flushed in
/// the background, so the fsync before `CLOSE` is answered has only the tail left.
const FLUSH_EVERY: u64 = 16 << 20;

/// Bytes written since the last background flush, and that flush.
#[derive(Default)]
pub(crate) struct WriteBehind {
    since: u64,
    flushing: Option<smol::Task<()>>,
}

impl Body {
    /// Writes `data` at `offset` (blocking: call it off the executor). The body grows to
    /// `offset + data.len()` if that is past its end; bytes between the old end and
    /// `offset` read as zeros until written.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        let grows = end.saturating_sub(self.size);
        if grows > 0 {
            self.room_for(end, grows)?;
        }
        self.write_behind(data.len() as u64);
        if offset == self.size {
            return Ok(self.write_chunk(data)?);
        }
        self.sum_stale = true;
        self.file.seek(SeekFrom::Start(offset))?;
        let written = self.spool.disk.write(&mut self.file, data);
        let new_end = self.size.max(end);
        if let Err(e) = written {
            let _ = self.file.set_len(self.size);
            let _ = self.file.seek(SeekFrom::Start(self.size));
            return Err(e.into());
        }
        // The file stays positioned at its end, where the next in-order write goes.
        self.file.seek(SeekFrom::Start(new_end))?;
        self.spool.add_used(grows);
        self.size = new_end;
        Ok(())
    }

    /// Starts an early fdatasync on a clone of the descriptor every [`FLUSH_EVERY`] bytes
    /// (never two at once); a failure shows again in the final fsync, which decides.
    fn write_behind(&mut self, n: u64) {
        let b = &mut self.behind;
        b.since += n;
        if b.since < FLUSH_EVERY || b.flushing.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        b.since = 0;
        if let Ok(file) = self.file.try_clone() {
            b.flushing = Some(smol::unblock(move || drop(file.sync_data())));
        }
    }

    /// Refuses growth past the quota (after partials made room) or into the last free
    /// space of the disk.
    fn room_for(&self, end: u64, grows: u64) -> Result<(), Error> {
        let spool = &self.spool;
        if spool.limits.max_bytes > 0 && spool.used() + grows > spool.limits.max_bytes {
            spool.make_room(grows)?;
        }
        if self.size == 0 || self.size / STATVFS_EVERY != end / STATVFS_EVERY {
            spool.check_disk(grows.max(STATVFS_EVERY))?;
        }
        Ok(())
    }

    /// The checksum of the body's bytes as they are now in the file (blocking: it reads
    /// the file back if a write landed anywhere but the end).
    pub fn fresh_checksum(&mut self) -> io::Result<Checksum> {
        if self.sum_stale {
            self.sum = rehash(&mut self.file, self.size)?;
            self.sum_stale = false;
        }
        Ok(self.checksum())
    }
}
