//! Making new names in `spool/tmp/` durable while their bodies are still arriving.
//!
//! A body's `tmp/` name must be on disk before the commit that records it (a crash must
//! not leave the outbox naming a file the directory forgot). Done by the commit thread,
//! that directory fsync was the second of three syncs in a row before every `226`, and a
//! device sending one file after another waited for each of them (docs/BENCHMARKS.md).
//! Now the name is made durable as soon as it exists: [`DurableNames::made`] wakes a
//! thread that fsyncs `tmp/`, while the client is told `150` and sends its data. By the
//! time the body itself is fsynced, its name usually is, and the commit skips the
//! directory fsync; when it is not yet, the commit waits for that fsync or makes one.
//!
//! Only for an upload that arrives alone. With uploads arriving together the group
//! commit already shares one directory fsync among a batch, and early fsyncs on top
//! (one per burst of new names) cost 13 % of the rate of 32 sessions
//! (`scripts/profile-small`, docs/BENCHMARKS.md), for a wait nobody had.
//!
//! Every fsync of the directory covers every name made before it started. Names are
//! counted ([`Ticket`]s): an fsync that starts after name `n` was made covers tickets up
//! to `n`, so one fsync serves every upload that started meanwhile.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
    /// fsyncs running now, and the newest name the newest of them covers.
    running: usize,
    running_covers: u64,
}

/// What the spool and the fsync thread share.
struct Dir {
    path: PathBuf,
    disk: Arc<dyn Disk>,
    counts: Mutex<Counts>,
    /// Signalled when an fsync ends.
    ended: Condvar,
}

impl Dir {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every name up to `needed` durable: done already, or by an fsync running now
    /// that covers it (waited for, so concurrent uploads share one), or by one started
    /// here, which covers every name made so far.
    fn make_durable(&self, needed: u64) -> std::io::Result<()> {
        let mut c = self.counts();
        while c.durable < needed && c.running > 0 && c.running_covers >= needed {
            c = self.ended.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        if c.durable >= needed {
            return Ok(());
        }
        self.sync(c)
    }

    /// One fsync of the directory, started now: it covers every name made so far.
    fn sync(&self, mut c: MutexGuard<'_, Counts>) -> std::io::Result<()> {
        let covers = c.made;
        c.running += 1;
        c.running_covers = c.running_covers.max(covers);
        drop(c);
        let synced = self.disk.sync_dir(&self.path);
        let mut c = self.counts();
        c.running -= 1;
        if c.running == 0 {
            c.running_covers = 0;
        }
        if synced.is_ok() {
            c.durable = c.durable.max(covers);
        }
        drop(c);
        self.ended.notify_all();
        synced
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
            ended: Condvar::new(),
        });
        let d = dir.clone();
        std::thread::Builder::new()
            .name("ftpgate-names".into())
            .spawn(move || run(&d, kicked))?;
        Ok(DurableNames { dir, kick })
    }

    /// A name was just made in `tmp/` (a body created, or a spare renamed there). `early`:
    /// start an fsync of the directory now (unless one is about to start) instead of
    /// leaving it to the commit.
    pub(super) fn made(&self, early: bool) -> Ticket {
        let ticket = {
            let mut c = self.dir.counts();
            c.made += 1;
            Ticket(c.made)
        };
        if early {
            let _ = self.kick.try_send(());
        }
        ticket
    }

    /// Makes the names of a batch durable: nothing to do if the fsyncs since have covered
    /// them all, else it waits for the one running or makes one now (blocking). A name
    /// this module was not told of (`None`: a body continuing a partial) always gets an
    /// fsync of its own.
    pub(super) fn ensure(&self, tickets: &[Option<Ticket>]) -> std::io::Result<()> {
        match tickets
            .iter()
            .try_fold(0, |newest, t| t.map(|t| newest.max(t.0)))
        {
            Some(newest) => self.dir.make_durable(newest),
            None => self.dir.sync(self.dir.counts()),
        }
    }
}

fn run(dir: &Dir, kicked: Receiver<()>) {
    while kicked.recv_blocking().is_ok() {
        let made = dir.counts().made;
        if let Err(e) = dir.make_durable(made) {
            // The commit then fsyncs the directory itself, and reports what fails.
            log::debug!("spool: fsyncing {}: {e}", dir.path.display());
        }
    }
}
