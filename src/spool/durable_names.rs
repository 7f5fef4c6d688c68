//! Making new names in `spool/tmp/` durable while their bodies are still arriving.
//!
//! A body's `tmp/` name must be on disk before the commit that records it (a crash must
//! not leave the outbox naming a file the directory forgot). Done by the commit thread,
//! that directory fsync was the second of three syncs in a row before every `226`, and a
//! device sending one file after another waited for each of them (docs/BENCHMARKS.md).
//! Now the name is made durable as soon as it exists: [`DurableNames::made`] wakes a
//! thread that fsyncs `tmp/`, while the client is told `150` and sends its data. By the
//! time the body itself is fsynced, its name usually is, and the commit skips the
//! directory fsync; when it is not yet, the commit does it as before.
//!
//! Every fsync of the directory covers every name made before it started. Names are
//! counted ([`Ticket`]s): an fsync that starts after name `n` was made covers tickets up
//! to `n`, so one fsync serves every upload that started meanwhile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use smol::channel::{Receiver, Sender, bounded};

use super::Disk;

/// A name made in `tmp/`: durable once an fsync that began after it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

#[derive(Default)]
struct Counts {
    /// Names made so far (the last ticket given).
    made: u64,
    /// Every name up to this one is durable.
    durable: u64,
}

/// What the spool and the fsync thread share.
struct Dir {
    path: PathBuf,
    disk: Arc<dyn Disk>,
    counts: Mutex<Counts>,
}

impl Dir {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One fsync of the directory: covers every name made before it starts.
    fn sync(&self) -> std::io::Result<()> {
        let covers = self.counts().made;
        self.disk.sync_dir(&self.path)?;
        let mut c = self.counts();
        c.durable = c.durable.max(covers);
        Ok(())
    }
}

pub(super) struct DurableNames {
    dir: Arc<Dir>,
    /// Wakes the fsync thread; holds at most one wake-up, so requests coalesce. The
    /// thread ends when this is dropped.
    kick: Sender<()>,
}

impl DurableNames {
    /// Starts the thread that fsyncs `path` after new names.
    pub(super) fn start(disk: Arc<dyn Disk>, path: PathBuf) -> std::io::Result<DurableNames> {
        let (kick, kicked) = bounded(1);
        let dir = Arc::new(Dir {
            path,
            disk,
            counts: Mutex::default(),
        });
        let d = dir.clone();
        std::thread::Builder::new()
            .name("ftpgate-names".into())
            .spawn(move || run(&d, kicked))?;
        Ok(DurableNames { dir, kick })
    }

    /// A name was just made in `tmp/` (a body created, or a spare renamed there): starts
    /// an fsync of the directory unless one is about to start.
    pub(super) fn made(&self) -> Ticket {
        let ticket = {
            let mut c = self.dir.counts();
            c.made += 1;
            Ticket(c.made)
        };
        let _ = self.kick.try_send(());
        ticket
    }

    /// Makes the names of a batch durable (`None`: a name this module was not told of):
    /// nothing to do if the fsyncs since have covered them all, else one fsync now
    /// (blocking).
    pub(super) fn ensure(&self, tickets: &[Option<Ticket>]) -> std::io::Result<()> {
        let durable = self.dir.counts().durable;
        if tickets.iter().all(|t| t.is_some_and(|t| t.0 <= durable)) {
            return Ok(());
        }
        self.dir.sync()
    }
}

fn run(dir: &Dir, kicked: Receiver<()>) {
    while kicked.recv_blocking().is_ok() {
        if let Err(e) = dir.sync() {
            // The commit then fsyncs the directory itself, and reports what fails.
            log::debug!("spool: fsyncing {}: {e}", dir.path.display());
        }
    }
}
