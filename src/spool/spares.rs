//! Spare body files: released bodies, emptied and kept for the next uploads instead of
//! being deleted and created again.
//!
//! On ext4 without a journal (common on flash-based gateways, and on this project's test
//! machine) creating a file scans the inode table past every inode freed in the last
//! minutes (`recently_deleted`, up to 300 s while the table's blocks are dirty), and does
//! so holding the directory's lock. A gateway that delivers while devices upload deletes
//! a body for every one it creates, and its ingest fell to half (measured with
//! `scripts/bench-backlog`: 0.5× with the destination up, 1.0× with it down). Reusing an
//! inode skips the allocation; on other filesystems a reuse costs about what a delete
//! and a create do.
//!
//! * A spare is empty: it is truncated before it is moved to `spool/spare/`, so no stored
//!   byte stays there.
//! * A new body takes a spare by renaming it into `tmp/`. From there it is a body like any
//!   other: fsynced before its `226`, its name made durable by the commit's fsync of `tmp/`.
//! * At most [`SPARES`] are kept (fewer where inodes are scarce, see [`affordable`]). At start-up the empty ones are kept up to that bound and
//!   the rest deleted (a crash can lose a truncation, or keep the spare's old name beside
//!   its new one in `tmp/`: a file with two names is a body): bounded work, whatever the
//!   backlog.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::Disk;

/// Spare files kept at most: enough for a burst of uploads after a drain that released
/// thousands of bodies (each costs an inode and a name, no data block).
pub const SPARES: usize = 4096;

/// How many spares a filesystem can afford: [`SPARES`], or a sixteenth of its free inodes
/// if that is less (a small flash partition has few). Filesystems without a fixed number
/// of inodes report none: they get [`SPARES`].
pub(super) fn affordable(dir: &Path) -> usize {
    match rustix::fs::statvfs(dir) {
        Ok(st) if st.f_files > 0 => SPARES.min((st.f_ffree / 16) as usize),
        _ => SPARES,
    }
}

pub(super) struct Spares {
    dir: PathBuf,
    names: Mutex<Vec<String>>,
    /// Kept at most ([`SPARES`] in a daemon).
    max: usize,
}

impl Spares {
    /// Opens `dir`, keeping the empty files in it (up to `max`) and deleting the rest.
    pub(super) fn open(disk: &dyn Disk, dir: PathBuf, max: usize) -> io::Result<Spares> {
        std::fs::create_dir_all(&dir)?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A power cut can keep both names of a spare that was being taken: the file
            // is then also a body (linked twice), and only this name goes.
            let spare = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() == 0 && m.nlink() == 1);
            if spare && names.len() < max {
                names.push(name);
            } else {
                disk.remove(&entry.path())?;
            }
        }
        Ok(Spares {
            dir,
            names: Mutex::new(names),
            max,
        })
    }

    /// A spare renamed to `path`, empty and open for writing; `None` if there is none (or
    /// taking it failed: the caller creates a new file).
    pub(super) fn take(&self, disk: &dyn Disk, path: &Path) -> Option<File> {
        let name = self.lock().pop()?;
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

    /// Keeps body `id` (no record needs it; in `ready/` or else `tmp/`) as a spare if there
    /// is room: empties it and moves it here. Returns the bytes that freed once the body is
    /// gone from its place (kept, or deleted here if keeping failed half-way), or `None` if
    /// nothing was done (the caller deletes it). The list stays locked throughout, so
    /// concurrent releases cannot overshoot the bound.
    pub(super) fn keep(&self, disk: &dyn Disk, dirs: [&Path; 2], id: &str) -> Option<u64> {
        let mut names = self.lock();
        if names.len() >= self.max {
            return None;
        }
        let (path, file) = dirs
            .iter()
            .map(|d| d.join(id))
            .find_map(|p| disk.open(&p).ok().map(|f| (p, f)))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let moved = file
            .set_len(0)
            .and_then(|()| disk.rename(&path, &self.dir.join(id)));
        match moved {
            Ok(()) => {
                names.push(id.to_string());
                Some(len)
            }
            Err(e) => {
                log::debug!("spool: keeping {id} as a spare: {e}");
                drop(names);
                disk.remove(&path).ok().map(|()| len)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::disk::Os;

    #[test]
    fn spares_are_bounded_and_reopening_keeps_only_empty_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (spare, bodies) = (dir.path().join("spare"), dir.path().join("ready"));
        std::fs::create_dir_all(&spare).unwrap();
        std::fs::create_dir_all(&bodies).unwrap();
        for i in 0..5 {
            std::fs::write(spare.join(format!("e{i}")), b"").unwrap();
        }
        // A crash lost the truncation of one.
        std::fs::write(spare.join("full"), b"bytes of a delivered upload").unwrap();
        let s = Spares::open(&Os, spare.clone(), 3).unwrap();
        let left: Vec<u64> = std::fs::read_dir(&spare)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .collect();
        assert_eq!(left, [0, 0, 0], "three empty spares kept, the rest deleted");
        // Full: a released body is not kept (the caller deletes it).
        std::fs::write(bodies.join("b1"), b"12345").unwrap();
        assert_eq!(s.keep(&Os, [&bodies, &bodies], "b1"), None);
        assert!(bodies.join("b1").exists());
        // One taken: room for one, emptied on the way.
        let taken = dir.path().join("new");
        assert_eq!(s.take(&Os, &taken).unwrap().metadata().unwrap().len(), 0);
        assert_eq!(s.keep(&Os, [&bodies, &bodies], "b1"), Some(5));
        assert_eq!(std::fs::metadata(spare.join("b1")).unwrap().len(), 0);
        assert!(!bodies.join("b1").exists());
        // A body that is nowhere: nothing done.
        assert_eq!(s.keep(&Os, [&bodies, &bodies], "gone"), None);
        for _ in 0..3 {
            assert!(s.take(&Os, &taken).is_some());
            std::fs::remove_file(&taken).unwrap();
        }
        assert!(s.take(&Os, &taken).is_none(), "all taken");
    }

    #[test]
    fn a_spare_name_a_power_cut_kept_beside_its_body_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (spare, tmp) = (dir.path().join("spare"), dir.path().join("tmp"));
        std::fs::create_dir_all(&spare).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        // An empty upload took a spare; the power cut kept both names.
        std::fs::write(tmp.join("body"), b"").unwrap();
        std::fs::hard_link(tmp.join("body"), spare.join("taken")).unwrap();
        std::fs::write(spare.join("free"), b"").unwrap();
        let s = Spares::open(&Os, spare.clone(), 10).unwrap();
        assert!(
            !spare.join("taken").exists(),
            "a body's second name is no spare"
        );
        assert!(tmp.join("body").exists(), "the body stays");
        assert!(spare.join("free").exists());
        let into = dir.path().join("new");
        assert!(s.take(&Os, &into).is_some());
        assert!(s.take(&Os, &into).is_none(), "one spare only");
    }
}
