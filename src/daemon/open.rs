//! The state at start-up, in order: the state directory claimed and the store opened
//! (waiting for a CLI command that holds it), compacted if mostly free, `file://`
//! destinations given their marker, and the spool opened with its reserve.

use std::sync::Arc;
use std::time::Duration;

use super::{Error, Options, io_err};
use crate::spool::Spool;
use crate::state::StateDir;
use crate::store::{self, Store};

/// How long the daemon waits for a CLI command that holds the database (it opens the
/// file itself when no daemon answers, for as long as its one change takes).
const CLI_PATIENCE: Duration = Duration::from_secs(30);

/// Claims the state directory (a second daemon is refused here, whatever it finds of
/// the database's own lock) and opens the store, waiting for a CLI command that holds it.
pub(super) fn open_store(state: &StateDir) -> Result<(std::fs::File, Store), Error> {
    let claim = state
        .claim()
        .map_err(io_err(format!("cannot lock {}", state.root().display())))?
        .ok_or_else(|| Error::AlreadyRunning(state.root().display().to_string()))?;
    let deadline = std::time::Instant::now() + CLI_PATIENCE;
    let mut said = false;
    loop {
        match Store::open(&state.database()) {
            Err(store::Error::InUse(_)) if std::time::Instant::now() < deadline => {
                if !std::mem::replace(&mut said, true) {
                    log::info!("the state file is in use by an ftpgate command; waiting for it");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok((claim, other?)),
        }
    }
}

/// Pipes into a directory made before destinations carried a marker get one now, if their
/// directory is there (see `forward::dir`); from then on a missing marker holds the Pipe
/// as "destination not mounted?". One made while its directory was missing is adopted
/// the same way once the directory is there at a start.
pub(super) fn adopt_destinations(store: &Store) {
    // A read first: a durable write at every start costs 1.6 MiB of resident memory.
    let pending = store.read().and_then(|r| {
        Ok(store::View::pipes(&r)?
            .iter()
            .any(|p| !p.dest.is_s3() && !p.dest_marked))
    });
    if !matches!(pending, Ok(true)) {
        return;
    }
    let adopted = store.write(|w| {
        let mut adopted = Vec::new();
        for mut p in store::View::pipes(w)? {
            if p.dest.is_s3() || p.dest_marked {
                continue;
            }
            match crate::forward::dir::mark(&mut p) {
                Ok(true) => {
                    w.put_pipe(&p)?;
                    adopted.push(format!("{} ({})", p.id, p.dest));
                }
                Ok(false) => {}
                Err(e) => log::warn!(
                    "pipe {}: cannot write the marker into {}: {e}",
                    p.id,
                    p.dest
                ),
            }
        }
        Ok(adopted)
    });
    match adopted {
        Ok(a) if !a.is_empty() => log::info!(
            "left a destination marker in {}: from now on a missing marker (an unmounted disk) holds deliveries",
            a.join(", ")
        ),
        Ok(_) => {}
        Err(e) => log::warn!("adopting destinations: {e}"),
    }
}

/// Compacts the state file when more than half of it is free. Never while serving:
/// compaction holds the database for its whole run.
pub(super) fn compact_if_sparse(store: &Store) {
    match store.compact_if_sparse() {
        Ok(Some((before, after))) => log::info!(
            "state file compacted from {:.1} to {:.1} MiB (more than half of it was free)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        ),
        Ok(None) => {}
        Err(e) => log::warn!("state file not compacted: {e}"),
    }
}

/// Opens the spool (recovering what a crash left) and gives it its reserve: the 8 MiB
/// handed to the database the day the disk fills.
pub(super) fn open_spool(
    state: &StateDir,
    store: &Arc<Store>,
    opts: &Options,
) -> Result<Arc<Spool>, Error> {
    let spool = Spool::open(state, store.clone(), opts.limits.clone())?;
    {
        let spool = Arc::downgrade(&spool);
        store.on_disk_full(move || {
            if let Some(s) = spool.upgrade() {
                s.release_reserve();
            }
        });
    }
    if let Ok(false) | Err(_) = spool.restore_reserve() {
        log::warn!(
            "the spool's disk has no room for its {} MiB reserve: running without one until there is (a full disk may then keep deliveries from being recorded)",
            crate::spool::reserve::Reserve::BYTES >> 20
        );
    }
    Ok(spool)
}
