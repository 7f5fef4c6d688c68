//! Room on the spool's disk: the reserve kept for the database, and the grants that keep
//! concurrent uploads within `--spool-min-free`.
//!
//! * **The reserve** is a file of [`Reserve::BYTES`] kept beside the spool. When the disk
//!   fills anyway (something else on the box wrote to it), the database may be unable to
//!   commit even the removal of delivered work, and then nothing ever frees space. So the
//!   first disk-full failure of the database gives the reserve back to the filesystem:
//!   the forwarder can record deliveries (which deletes their bodies) while uploads are
//!   refused. The reserve is taken again once there is room for it.
//! * **Grants**: a session takes a grant of free space before it writes (a few MiB at a
//!   time) and checks the free space net of every other session's grant, so sessions
//!   writing at once cannot together run past the free space to keep.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct Reserve {
    path: PathBuf,
    held: AtomicBool,
    /// Given to the database on a full disk and not yet taken back: uploads wait.
    given: AtomicBool,
}

impl Reserve {
    /// Enough for many commits that remove delivered work.
    pub const BYTES: u64 = 8 << 20;

    pub fn new(path: PathBuf) -> Reserve {
        let held = fs::metadata(&path).is_ok_and(|m| m.len() == Self::BYTES);
        Reserve {
            path,
            held: AtomicBool::new(held),
            given: AtomicBool::new(false),
        }
    }

    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether the reserve went to the database and is not back yet. (A reserve that
    /// never fitted, on a small disk, refuses nothing: the gateway runs without it.)
    pub fn given_away(&self) -> bool {
        self.given.load(Ordering::Relaxed)
    }

    /// Gives the space back to the filesystem (blocking); true if it was held.
    pub fn release(&self) -> bool {
        if !self.held.swap(false, Ordering::Relaxed) {
            return false;
        }
        self.given.store(true, Ordering::Relaxed);
        match fs::remove_file(&self.path) {
            Ok(()) => {
                log::warn!(
                    "the spool's disk is full: released the {} MiB reserve so delivered work can still be recorded; uploads are refused until there is room again",
                    Self::BYTES >> 20
                );
                true
            }
            Err(e) => {
                log::error!("releasing the reserve {}: {e}", self.path.display());
                false
            }
        }
    }

    /// Takes the reserve (again) if `free` bytes leave room for it and `keep` more
    /// (blocking). Written and fsynced under a temporary name, so a crash never leaves a
    /// short reserve.
    pub fn restore(&self, free: u64, keep: u64) -> io::Result<bool> {
        if self.is_held() {
            return Ok(true);
        }
        if free < keep.saturating_add(2 * Self::BYTES) {
            return Ok(false);
        }
        let tmp = self.path.with_extension("tmp");
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..(Self::BYTES >> 20) {
                f.write_all(&chunk)?;
            }
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.held.store(true, Ordering::Relaxed);
        if self.given.swap(false, Ordering::Relaxed) {
            log::info!("the spool's disk has room again: reserve restored, uploads accepted");
        }
        Ok(true)
    }
}

/// Free space promised to sessions that are writing, in bytes.
#[derive(Debug, Default, Clone)]
pub struct Grants(Arc<AtomicU64>);

/// Bytes a session may write before it checks the free space again; returned on drop.
#[derive(Debug)]
pub struct Grant {
    grants: Grants,
    bytes: u64,
}

impl Grants {
    pub fn outstanding(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Promises `bytes` (the caller has checked there is room net of the others).
    pub fn take(&self, bytes: u64) -> Grant {
        self.0.fetch_add(bytes, Ordering::Relaxed);
        Grant {
            grants: self.clone(),
            bytes,
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.grants.0.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_released_once_and_restored_only_with_room() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reserve::new(dir.path().join("reserve"));
        assert!(!r.is_held());
        assert!(!r.restore(Reserve::BYTES, 0).unwrap(), "no room: not taken");
        assert!(r.restore(3 * Reserve::BYTES, 0).unwrap());
        assert_eq!(
            fs::metadata(dir.path().join("reserve")).unwrap().len(),
            Reserve::BYTES
        );
        assert!(
            Reserve::new(dir.path().join("reserve")).is_held(),
            "found at start"
        );
        assert!(!r.given_away());
        assert!(r.release());
        assert!(r.given_away(), "uploads wait until it is back");
        assert!(!r.release(), "only once");
        assert!(!dir.path().join("reserve").exists());
        assert!(r.restore(3 * Reserve::BYTES, 0).unwrap());
        assert!(!r.given_away());
        // A disk too small for it: the gateway runs without one, refusing nothing.
        let small = Reserve::new(dir.path().join("other"));
        assert!(!small.restore(Reserve::BYTES, 0).unwrap());
        assert!(!small.given_away());
    }

    #[test]
    fn grants_are_returned_when_dropped() {
        let g = Grants::default();
        let a = g.take(5);
        let b = g.take(7);
        assert_eq!(g.outstanding(), 12);
        drop(a);
        assert_eq!(g.outstanding(), 7);
        drop(b);
        assert_eq!(g.outstanding(), 0);
    }
}
