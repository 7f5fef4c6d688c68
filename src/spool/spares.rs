//! Spare body files: released bodies, emptied and kept for the next uploads instead of
//! being deleted and created again.
//!
//! On ext4 without a journal (common on flash-based gateways, and on this project's test
//! machine) creating a file scans the inode table past every inode freed in the last
//! minutes (`recently_deleted`, up to 300 s while the table's blocks are dirty), and does
//! so holding the directory's lock. A gateway that delivers while devices upload deletes
//! a body for every one it creates, and its ingest fell to half (measured with
//! `scripts/bench-backlog`). Reusing an inode skips the allocation; on other filesystems
//! a reuse costs about what a delete and a create do.
//!
//! A fixed bound was not enough: when a backlog drains while devices upload, the drain
//! releases bodies more slowly than uploads take them, and every body released beyond
//! the bound earlier in the drain had been deleted, so the uploads after that paid the
//! scan again (0.57× of ingest alone with a 100k backlog). So:
//!
//! * A spare is empty: it is truncated before it is moved to `spool/spare/`, so no stored
//!   byte stays there.
//! * A new body takes a spare by renaming it into `tmp/`. From there it is a body like any
//!   other: fsynced before its `226`, its name made durable by the commit's fsync of `tmp/`.
//! * Every released body is kept while the filesystem has room for it ([`has_room`]: an
//!   eighth of its inodes stays free for everything else), so the pool never holds more
//!   files than the spool held at its fullest.
//! * At most [`LISTED`] names are held in memory; the rest stay in the directory,
//!   unlisted, and are read in batches of that size when the listed ones are gone.
//!   Start-up reads one batch: bounded work, whatever the pool's size.
//! * When the pool is not being drawn down (since the last [`Spares::trim`], no more
//!   spares were taken than kept), the unlisted ones are deleted a few hundred at a
//!   time until only the listed ones remain: a batch every few seconds while uploads
//!   arrive, batch after batch once they stop (the daemon's tidy loop), so a pool a
//!   long outage left behind is gone within a minute of quiet without slowing uploads.
//! * Then the directory itself is renewed if it is far larger than the listed spares
//!   need ([`Spares::renew`]): ext4 never shrinks a directory.
//! * Reading a batch deletes what is no spare: a file a crash left with its bytes (a
//!   truncation lost), or with a second name (a power cut during a take kept the spare's
//!   old name beside its new one in `tmp/`: a file with two names is a body, and only
//!   the spare's name goes).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Disk;

/// Spare names held in memory at most (about 60 bytes each); more spares stay in the
/// directory, unlisted.
pub const LISTED: usize = 4096;

/// Unlisted spares deleted at most per [`Spares::trim`].
pub const TRIM_BATCH: usize = 500;

/// Whether a filesystem with `files` inodes, `free` of them free, can keep one more
/// spare: while more than an eighth stay free. Filesystems without a fixed number of
/// inodes report none and always have room.
pub(super) fn has_room(files: u64, free: u64) -> bool {
    files == 0 || free > files / 8
}

/// The most a directory of `spares` names may take before it is renewed: four times
/// what ext4 needs for them (an entry is 40 bytes for a 32-character id) and 64 KiB, so
/// only a directory a far larger pool left behind is renewed. File systems that report
/// a directory's size otherwise (tmpfs, btrfs) report less and are never renewed.
fn idle_dir_bytes(spares: usize) -> u64 {
    4 * 48 * spares as u64 + 64 * 1024
}

fn room_in(dir: &Path) -> bool {
    match rustix::fs::statvfs(dir) {
        Ok(st) => has_room(st.f_files, st.f_ffree),
        Err(_) => false,
    }
}

pub(super) struct Spares {
    dir: PathBuf,
    pool: Mutex<Pool>,
    /// Names held in memory at most ([`LISTED`] in a daemon).
    listed: usize,
}

#[derive(Default)]
struct Pool {
    /// Spares known by name.
    names: Vec<String>,
    /// The directory holds spares that are not in `names`.
    unlisted: bool,
    /// Spares kept minus spares taken since the last trim.
    net: i64,
}

impl Spares {
    /// Opens `dir`, listing up to `listed` of the spares in it.
    pub(super) fn open(disk: &dyn Disk, dir: PathBuf, listed: usize) -> io::Result<Spares> {
        // A renewal cut short: the new directory holds the spares if the old one is gone.
        let new = dir.with_extension("new");
        if new.exists() {
            if dir.exists() {
                std::fs::remove_dir_all(&new)?;
            } else {
                std::fs::rename(&new, &dir)?;
            }
        }
        std::fs::create_dir_all(&dir)?;
        let spares = Spares {
            dir,
            pool: Mutex::default(),
            listed,
        };
        let mut pool = spares.lock();
        spares.refill(disk, &mut pool)?;
        drop(pool);
        Ok(spares)
    }

    /// Lists the next batch of spares from the directory (the listed ones are gone, so
    /// every spare in it is unlisted), deleting on the way what is no spare.
    fn refill(&self, disk: &dyn Disk, pool: &mut Pool) -> io::Result<()> {
        debug_assert!(pool.names.is_empty());
        pool.unlisted = false;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let spare = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() == 0 && m.nlink() == 1);
            if !spare {
                disk.remove(&entry.path())?;
            } else if pool.names.len() < self.listed {
                pool.names
                    .push(entry.file_name().to_string_lossy().into_owned());
            } else {
                pool.unlisted = true;
                break;
            }
        }
        Ok(())
    }

    /// A spare renamed to `path`, empty and open for writing; `None` if there is none (or
    /// taking it failed: the caller creates a new file).
    pub(super) fn take(&self, disk: &dyn Disk, path: &Path) -> Option<File> {
        let mut pool = self.lock();
        if pool.names.is_empty()
            && pool.unlisted
            && let Err(e) = self.refill(disk, &mut pool)
        {
            log::debug!("spool: listing spares: {e}");
        }
        let name = pool.names.pop()?;
        pool.net -= 1;
        drop(pool);
        let taken = disk.rename(&self.dir.join(&name), path).and_then(|()| {
            let file = disk.open(path)?;
            // Emptied when it was kept; a crash may have lost that.
            if file.metadata()?.len() != 0 {
                file.set_len(0)?;
            }
            Ok(file)
        });
        match taken {
            Ok(file) => Some(file),
            Err(e) => {
                log::debug!("spool: reusing spare {name}: {e}");
                let _ = disk.remove(path);
                None
            }
        }
    }

    /// Keeps body `id` (no record needs it; at the first of `paths` that exists) as a
    /// spare if the filesystem has room: empties it and moves it here. Returns the bytes
    /// that freed once the body is gone from its place (kept, or deleted here if keeping
    /// failed half-way), or `None` if nothing was done (the caller deletes it).
    pub(super) fn keep(&self, disk: &dyn Disk, paths: [PathBuf; 2], id: &str) -> Option<u64> {
        if !room_in(&self.dir) {
            return None;
        }
        let (path, file) = paths
            .into_iter()
            .find_map(|p| disk.open(&p).ok().map(|f| (p, f)))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut pool = self.lock();
        let moved = file
            .set_len(0)
            .and_then(|()| disk.rename(&path, &self.dir.join(id)));
        match moved {
            Ok(()) => {
                pool.net += 1;
                if pool.names.len() < self.listed {
                    pool.names.push(id.to_string());
                } else {
                    pool.unlisted = true;
                }
                Some(len)
            }
            Err(e) => {
                log::debug!("spool: keeping {id} as a spare: {e}");
                drop(pool);
                disk.remove(&path).ok().map(|()| len)
            }
        }
    }

    /// Deletes up to `batch` unlisted spares if the pool has not been drawn down since
    /// the last trim. Returns how many went.
    pub(super) fn trim(&self, disk: &dyn Disk, batch: usize) -> io::Result<usize> {
        let mut pool = self.lock();
        let net = std::mem::take(&mut pool.net);
        if net < 0 || !pool.unlisted {
            return Ok(0);
        }
        let listed: HashSet<&str> = pool.names.iter().map(String::as_str).collect();
        let mut gone = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if listed.contains(entry.file_name().to_string_lossy().as_ref()) {
                continue;
            }
            if gone == batch {
                return Ok(gone);
            }
            disk.remove(&entry.path())?;
            gone += 1;
        }
        drop(listed);
        pool.unlisted = false;
        if let Err(e) = self.renew(disk, &mut pool) {
            log::warn!("spool: renewing {}: {e}", self.dir.display());
        }
        Ok(gone)
    }

    /// Moves the listed spares into a new directory that takes the old one's place, once
    /// the old one is far larger than they need: a directory on ext4 keeps the blocks of
    /// every entry it ever held, and the pool of a large drain left 7.6 MB behind. Runs
    /// under the pool's lock, after a trim left only the listed ones; a few thousand
    /// renames. A crash half-way leaves `DIR.new`, which [`Spares::open`] settles.
    fn renew(&self, disk: &dyn Disk, pool: &mut Pool) -> io::Result<()> {
        let size = std::fs::metadata(&self.dir)?.len();
        if size <= idle_dir_bytes(pool.names.len()) {
            return Ok(());
        }
        let new = self.dir.with_extension("new");
        std::fs::create_dir(&new)?;
        pool.names
            .retain(|name| disk.rename(&self.dir.join(name), &new.join(name)).is_ok());
        // Whatever did not move goes with the old directory: spares are only files.
        std::fs::remove_dir_all(&self.dir)?;
        std::fs::rename(&new, &self.dir)?;
        log::info!(
            "spool: renewed {} ({size} bytes for {} spares)",
            self.dir.display(),
            pool.names.len()
        );
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
