//! The spool's filesystem seam. Every call the spool makes to the disk for a body goes
//! through [`Disk`]: creating and opening it, writing, fsyncing it and its directory,
//! linking it into `ready/`, deleting it, and asking how much room is left. The real
//! filesystem is [`Os`]; tests put a [`Disk`] in its place that fails a write with
//! ENOSPC, an fsync or a rename with EIO, without a real full disk (as redb's
//! `StorageBackend` is for the database).
//!
//! It also holds the one way a body leaves the disk, [`Disk::delete_body`], wherever in its
//! life the body is.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The disk under the spool. Every method defaults to the real filesystem.
pub trait Disk: Send + Sync + 'static {
    /// Creates a new, empty body file (never an existing one).
    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Opens an existing body to continue it.
    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    /// Writes all of `chunk` at the file's position.
    fn write(&self, file: &mut File, chunk: &[u8]) -> io::Result<()> {
        file.write_all(chunk)
    }

    /// Makes the file's bytes durable.
    fn sync(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// Makes a directory's entries (the names created or renamed in it) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        crate::support::sync_dir(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Gives a body a second name (the step before its first is removed).
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Bytes free for an unprivileged writer on the filesystem holding `dir`.
    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(dir)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Deletes body `id` wherever it is (its bucket in `ready/` once recorded and moved,
    /// `ready/` itself if an earlier release put it there, `tmp/` while it is received,
    /// kept as a partial, or between its commit and its move) and returns the bytes that
    /// freed. A body that is nowhere is already gone: 0. Two names of one body (a crash
    /// during its move) free its bytes once.
    fn delete_body(&self, tmp: &Path, ready: &Path, id: &str) -> io::Result<u64> {
        let mut freed = 0;
        for path in [super::ready::path(ready, id), ready.join(id), tmp.join(id)] {
            let len = match std::fs::metadata(&path) {
                Ok(m) if m.nlink() > 1 => 0,
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match self.remove(&path) {
                Ok(()) => freed += len,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(freed)
    }
}

/// The real filesystem.
pub struct Os;

impl Disk for Os {}
