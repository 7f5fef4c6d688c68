//! The daemon's housekeeping, each a task on the executor that does its blocking work on
//! the blocking pool: the spool's reserve, tidying what a drain left, retention of the
//! catalog, giving redb's cache back, expiring partial uploads.

use std::sync::Arc;
use std::time::Duration;

use crate::spool::Spool;
use crate::store::{self, Store};

/// Starts every housekeeping task. The returned ones stop when dropped (at shutdown,
/// before the store is closed); the reserve and tidy loops run until the process ends.
pub(super) fn start(store: &Arc<Store>, spool: &Arc<Spool>, cap: u64) -> Vec<smol::Task<()>> {
    smol::spawn(reserve_loop(spool.clone())).detach();
    smol::spawn(spool_tidy_loop(spool.clone())).detach();
    vec![
        smol::spawn(expiry_loop(spool.clone())),
        smol::spawn(retention_loop(store.clone(), cap)),
        smol::spawn(cache_release_loop(store.clone())),
    ]
}

/// Takes the spool's reserve again once there is room for it (see `spool::reserve`).
async fn reserve_loop(spool: Arc<Spool>) {
    let mut failing = crate::repeated::Repeated::default();
    loop {
        smol::Timer::after(Duration::from_secs(2)).await;
        let s = spool.clone();
        match smol::unblock(move || s.restore_reserve()).await {
            Ok(_) => failing.clear(),
            Err(e) => {
                failing.error(format!("restoring the spool's reserve: {e}"));
            }
        }
    }
}

/// Gives back the spool's space a drain left behind (emptied `ready/` buckets, spare
/// body files beyond what uploads need; see `Spool::tidy`): a batch every few seconds
/// while uploads arrive, batch after batch once they have stopped for a while, so a
/// large pool is gone within a minute of quiet rather than over hours.
async fn spool_tidy_loop(spool: Arc<Spool>) {
    const QUIET_MS: u64 = 30_000;
    let mut failing = crate::repeated::Repeated::default();
    loop {
        smol::Timer::after(Duration::from_secs(5)).await;
        loop {
            let s = spool.clone();
            match smol::unblock(move || s.tidy()).await {
                Ok(n) => {
                    failing.clear();
                    let quiet = !spool.ingesting(crate::clock::now_ms(), QUIET_MS);
                    if n < Spool::TRIM_BATCH || !quiet {
                        break;
                    }
                }
                Err(e) => {
                    failing.error(format!("tidying the spool: {e}"));
                    break;
                }
            }
        }
    }
}

/// Forgets delivered files and empty directories past their Pipe's retention window, and
/// the oldest beyond the gateway-wide cap (see `store::catalog::expire`): a batch per
/// transaction, so uploads wait at most for one batch. It looks with a read first and
/// writes only when something is due, or every [`STEADY_EVERY`] to store the steady
/// clock: an idle gateway on flash writes nothing every ten seconds.
async fn retention_loop(store: Arc<Store>, cap: u64) {
    const BATCH: usize = 2000;
    const STEADY_EVERY: Duration = Duration::from_secs(600);
    let mut failing = crate::repeated::Repeated::default();
    let mut stored = std::time::Instant::now();
    loop {
        let s = store.clone();
        let due = smol::unblock(move || {
            let now = s.steady_ms();
            s.read().and_then(|r| store::View::expiry_due(&r, cap, now))
        })
        .await
        .unwrap_or(true);
        if !due && stored.elapsed() < STEADY_EVERY {
            smol::Timer::after(Duration::from_secs(10)).await;
            continue;
        }
        stored = std::time::Instant::now();
        let s = store.clone();
        match smol::unblock(move || s.write(|w| w.expire(cap, BATCH))).await {
            Ok(done) => {
                failing.clear();
                if done.more {
                    smol::future::yield_now().await;
                    continue;
                }
            }
            Err(e) => {
                failing.error(format!("forgetting expired catalog entries: {e}"));
            }
        }
        smol::Timer::after(Duration::from_secs(10)).await;
    }
}

/// Gives redb's page cache back once nothing has been committed for [`QUIET`]: after a
/// busy hour or a drained backlog the daemon returns to its idle size (see
/// `store::idle`).
async fn cache_release_loop(store: Arc<Store>) {
    const QUIET: Duration = Duration::from_secs(60);
    let mut failing = crate::repeated::Repeated::default();
    loop {
        smol::Timer::after(Duration::from_secs(10)).await;
        let s = store.clone();
        match smol::unblock(move || s.release_cache_if_quiet(QUIET)).await {
            Ok(_) => failing.clear(),
            Err(e) => {
                failing.error(format!("reopening the state file to free its cache: {e}"));
            }
        }
    }
}

/// Deletes expired partial uploads now and then.
async fn expiry_loop(spool: Arc<Spool>) {
    loop {
        smol::Timer::after(Duration::from_secs(600)).await;
        let s = spool.clone();
        if let Err(e) = smol::unblock(move || s.expire_partials()).await {
            log::warn!("expiring partial uploads: {e}");
        }
    }
}
