//! Reading claimed bodies ahead of their deliveries.
//!
//! A long outage's backlog is older than the page cache: on a gateway whose spool is many
//! times its memory, every delivery's body comes from the disk. Read there, by the
//! delivery thread, each op waits for one disk read before its request can start, and the
//! thread sleeps and wakes around it. The forwarder claims ops ahead of their deliveries
//! (see [`super::claims`]), so it knows which bodies are next: this thread asks the kernel
//! to start reading them (`posix_fadvise(WILLNEED)`, which returns without waiting), and
//! the delivery finds its body in memory.
//!
//! * Bodies made in the last [`FRESH_MS`] are left alone: they are still in memory, so
//!   forwarding as files arrive costs nothing more.
//! * Only the head of a body is asked for ([`HEAD`]): a small gateway's page cache is not
//!   spent on what a large body's own sequential read brings in anyway.
//! * A prefetch returns no byte to anybody and holds no lock; a body released meanwhile
//!   (delivered, deleted, or emptied for reuse) costs a wasted read at most.
//! * A round's claims are one ask (one wake-up of the thread, not one per body); asks
//!   beyond [`QUEUE`] waiting are dropped, and those deliveries read their bodies
//!   themselves, as without this.
//!
//! Measured with a first version (one ask per body, fresh ones included) on this
//! project's VM, whose virtual disk answers a 4 KiB read in about 0.25 ms:
//! `COLD=1 FILES=10000 scripts/bench-backlog` (page cache dropped before the drain) gave
//! 1184 and 1214 ops/s against a median of 1112 (1077–1231) in seven runs without it; with
//! the cache warm (`FILES=100000`), 1345 and 1180 against 1433 and 1264, within this
//! machine's noise. A slower disk (SD card, eMMC) waits longer per read, so there it
//! counts for more.

use std::fs::File;
use std::num::NonZeroU64;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use crate::spool::Spool;

/// Bytes asked for at the head of each body.
pub(super) const HEAD: u64 = 128 << 10;

/// Bodies younger than this are in memory still (an upload's pages are not even written
/// back for the first 30 s).
pub(super) const FRESH_MS: u64 = 60_000;

/// Asks (rounds) waiting at most: a few, not more, so a slow disk does not read ahead for
/// deliveries long done.
const QUEUE: usize = 8;

/// The prefetch thread, started at the first ask.
pub(super) struct Prefetch {
    spool: Arc<Spool>,
    tx: Mutex<Option<SyncSender<Vec<String>>>>,
}

impl Prefetch {
    pub(super) fn new(spool: Arc<Spool>) -> Prefetch {
        Prefetch {
            spool,
            tx: Mutex::new(None),
        }
    }

    /// Asks for the heads of spool bodies `ids` to be read now, those not made in the last
    /// [`FRESH_MS`]; never blocks.
    pub(super) fn ask(&self, mut ids: Vec<String>) {
        let now = crate::clock::now_ms();
        ids.retain(|id| !fresh(id, now));
        if ids.is_empty() {
            return;
        }
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.is_none() {
            *tx = self.start();
        }
        if let Some(sender) = tx.as_ref()
            && let Err(TrySendError::Disconnected(_)) = sender.try_send(ids)
        {
            // The thread is gone (it cannot panic, but a send must not assume so).
            *tx = None;
        }
    }

    fn start(&self) -> Option<SyncSender<Vec<String>>> {
        let (tx, rx) = sync_channel(QUEUE);
        let spool = self.spool.clone();
        match std::thread::Builder::new()
            .name("ftpgate-prefetch".into())
            .spawn(move || run(&spool, &rx))
        {
            Ok(_) => Some(tx),
            Err(e) => {
                log::debug!("forwarder: no prefetch thread ({e}); deliveries read their bodies");
                None
            }
        }
    }
}

/// Whether body `id` was made less than [`FRESH_MS`] before `now_ms`.
fn fresh(id: &str, now_ms: u64) -> bool {
    crate::spool::id_created_ms(id).is_some_and(|made| now_ms.saturating_sub(made) < FRESH_MS)
}

fn run(spool: &Spool, rx: &Receiver<Vec<String>>) {
    // Below the uploads, like the deliveries it serves.
    super::workers::lower_priority();
    while let Ok(ids) = rx.recv() {
        for id in &ids {
            read_ahead(spool, id);
        }
    }
}

/// Starts the read of `id`'s head, if it is still in the spool.
fn read_ahead(spool: &Spool, id: &str) {
    let Some(file) = spool.body_path(id).and_then(|p| File::open(p).ok()) else {
        return;
    };
    let _ = rustix::fs::fadvise(
        &file,
        0,
        NonZeroU64::new(HEAD),
        rustix::fs::Advice::WillNeed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Limits;
    use crate::state::StateDir;
    use crate::store::Store;
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Bytes of `path` in the page cache (util-linux's `fincore`).
    fn resident(path: &Path) -> u64 {
        let out = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path)
            .output()
            .expect("fincore (util-linux) runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    #[test]
    fn an_asked_body_is_read_into_memory_and_a_missing_one_is_skipped() {
        // On a disk: a tmpfs keeps every page in memory, so nothing would tell.
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let state = StateDir::new(dir.path());
        state.create().unwrap();
        let store = Arc::new(Store::open(&state.database()).unwrap());
        let limits = Limits {
            min_free: 0,
            ..Limits::default()
        };
        let spool = Spool::open(&state, store, limits).unwrap();
        // An upload of two minutes ago.
        let id = crate::spool::id_made_at(crate::clock::now_ms() - 2 * FRESH_MS);
        let path = spool.ready_path(&id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![7u8; 3 * HEAD as usize]).unwrap();
        let file = File::open(&path).unwrap();
        file.sync_all().unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        assert_eq!(resident(&path), 0, "the body starts out of memory");

        let prefetch = Prefetch::new(spool.clone());
        prefetch.ask(vec!["0000-no-such-body".into(), id]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while resident(&path) < HEAD && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = resident(&path);
        assert!(got >= HEAD, "the head is read ahead: {got} bytes in memory");
        assert!(got < 3 * HEAD, "only the head: {got} bytes in memory");
    }

    #[test]
    fn bodies_of_the_last_minute_are_left_alone() {
        let now = 1_800_000_000_000;
        let id = crate::spool::id_made_at;
        assert!(fresh(&id(now), now));
        assert!(fresh(&id(now - FRESH_MS + 1), now));
        assert!(!fresh(&id(now - FRESH_MS), now));
        // A body of 0.1 (a random id): read ahead, at worst for nothing.
        assert!(!fresh("not-hex-at-all-and-long", now));
        // Made "later" (the clock was set back since): left to its delivery to read.
        assert!(fresh(&id(now + 5_000), now));
    }
}
