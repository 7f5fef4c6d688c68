//! A disk for tests that can lose power: the database lives in memory, and a power cut
//! keeps exactly what had been made durable (`sync_data`) and nothing written after it.
//!
//! redb holds a non-durable commit in the process's memory until the next durable one,
//! so a `kill -9` loses the same as a power cut; this disk shows what either leaves
//! behind, without a process to kill.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

/// The file's bytes now, and as they were at the last sync.
#[derive(Default)]
struct Image {
    live: Vec<u8>,
    synced: Vec<u8>,
    /// What changed since the last sync, in order: a sync replays it onto `synced`.
    since_sync: Vec<Change>,
    /// The power is off: the old process can no longer write anything.
    cut: bool,
}

/// The test's handle on a disk; [`Disk::backend`] is what redb writes to.
#[derive(Clone, Default)]
pub struct Disk(Arc<Mutex<Image>>);

impl Disk {
    /// What redb opens.
    pub fn backend(&self) -> Backend {
        Backend(self.clone())
    }

    /// Cuts the power: this disk ignores every write from now on (the dying database's
    /// own flush included), and the returned one holds what was synced.
    pub fn cut(&self) -> Disk {
        let mut img = self.image();
        img.cut = true;
        Disk(Arc::new(Mutex::new(Image {
            live: img.synced.clone(),
            synced: img.synced.clone(),
            since_sync: Vec::new(),
            cut: false,
        })))
    }

    /// A write that reaches the disk's cache, not the disk.
    fn change(&self, c: Change) -> io::Result<()> {
        let mut img = self.image();
        if img.cut {
            return Ok(());
        }
        c.apply(&mut img.live)?;
        img.since_sync.push(c);
        Ok(())
    }

    fn image(&self) -> MutexGuard<'_, Image> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Change {
    Write(usize, Vec<u8>),
    SetLen(usize),
}

impl Change {
    fn apply(&self, to: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Change::SetLen(len) => to.resize(*len, 0),
            Change::Write(at, data) => to
                .get_mut(*at..*at + data.len())
                .ok_or_else(out_of_range)?
                .copy_from_slice(data),
        }
        Ok(())
    }
}

pub struct Backend(Disk);

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("power_cut::Backend")
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "beyond the end of the disk")
}

impl StorageBackend for Backend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.image().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let img = self.0.image();
        let at = usize::try_from(offset).map_err(|_| out_of_range())?;
        let from = img.live.get(at..at + out.len()).ok_or_else(out_of_range)?;
        out.copy_from_slice(from);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        self.0.change(Change::SetLen(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut img = self.0.image();
        if !img.cut {
            let Image {
                synced, since_sync, ..
            } = &mut *img;
            for c in since_sync.drain(..) {
                c.apply(synced)?;
            }
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let at = usize::try_from(offset).map_err(|_| out_of_range())?;
        self.0.change(Change::Write(at, data.to_vec()))
    }
}
