//! The daemon's watch, once a second: the sessions' batch of events and logins written
//! (`crate::events::Recorder`), silent Senders, Pipes failing past `--offline-grace`, a
//! filling spool and a state file without room to grow, each change said once as an
//! event; and the per-minute counts of the status page's chart.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::now_ms;
use crate::events::Recorder;
use crate::store::Store;
use crate::store::events::{Event, Kind};

/// What [`run`] watches besides the recorder: transitions said once each.
pub(super) struct Watch {
    /// The sessions' recorder lives in the server (`Server::events`).
    pub server: Arc<crate::gateway::server::Server>,
    pub forwarder: Arc<crate::forward::Forwarder>,
    pub spool: Arc<crate::spool::Spool>,
    pub store: Arc<Store>,
    /// How long a Pipe fails before `pipe.offline`.
    pub offline_grace: Duration,
}

/// Conditions already reported, so each change is said once.
#[derive(Default)]
struct Said {
    offline: HashSet<String>,
    spool_high: bool,
    state_large: bool,
    /// When each failing Pipe was first seen failing (ms).
    failing_since: HashMap<String, u64>,
}

/// Writes the recorder's batches (at most one commit a second) and watches for silent
/// Senders, offline Pipes, a filling spool and a large state file.
pub(super) async fn run(watch: Watch) {
    let mut said = Said::default();
    let mut failing = crate::repeated::Repeated::default();
    let mut tick: u64 = 0;
    loop {
        smol::Timer::after(Duration::from_secs(1)).await;
        tick += 1;
        let now = now_ms();
        let health = watch.forwarder.health();
        let delivered: u64 = health.values().map(|h| h.delivered_ops).sum();
        let received = watch
            .server
            .stats
            .uploads
            .load(std::sync::atomic::Ordering::Relaxed);
        watch.server.minutes.record(received, delivered, now);
        watch_pipes(&watch, &health, &mut said, now);
        if tick.is_multiple_of(5) {
            let (spool, store) = (watch.spool.clone(), watch.store.clone());
            let fill = smol::unblock(move || Fill::measure(&spool, &store)).await;
            fill.report(&watch.server.events, &mut said);
        }
        let (srv, store) = (watch.server.clone(), watch.store.clone());
        if srv.events.is_empty() && !tick.is_multiple_of(5) {
            continue;
        }
        let done = smol::unblock(move || {
            srv.events.flush(&store)?;
            srv.events.check_silence(&store, now)
        })
        .await;
        match done {
            Ok(()) => failing.clear(),
            Err(e) => {
                failing.error(format!("recording events: {e}"));
            }
        }
    }
}

/// `pipe.offline` once a Pipe has failed for longer than the grace, `pipe.online` when
/// it delivers again.
fn watch_pipes(
    watch: &Watch,
    health: &HashMap<String, crate::forward::Health>,
    said: &mut Said,
    now: u64,
) {
    let grace = watch.offline_grace.as_millis() as u64;
    for (pipe, h) in health {
        if h.failures > 0 {
            let since = *said.failing_since.entry(pipe.clone()).or_insert(now);
            if now.saturating_sub(since) >= grace && said.offline.insert(pipe.clone()) {
                watch.server.events.event(Event {
                    pipe: Some(pipe.clone()),
                    reason: h.last_error.clone(),
                    seconds: Some(now.saturating_sub(since) / 1000),
                    ..Event::of(Kind::PipeOffline)
                });
            }
        } else {
            let since = said.failing_since.remove(pipe);
            if said.offline.remove(pipe) {
                watch.server.events.event(Event {
                    pipe: Some(pipe.clone()),
                    seconds: since.map(|s| now.saturating_sub(s) / 1000),
                    ..Event::of(Kind::PipeOnline)
                });
            }
        }
    }
}

/// How full the spool and the state file's disk are.
struct Fill {
    spool_bytes: u64,
    high: bool,
    state_bytes: u64,
    /// What `status` warns of when the state file would not fit twice beside itself.
    state_warning: Option<String>,
}

impl Fill {
    fn measure(spool: &crate::spool::Spool, store: &Store) -> Fill {
        let limits = spool.limits();
        let used = spool.used();
        let free = spool.free_space().ok();
        let over_max = limits.max_bytes > 0 && used.saturating_mul(5) >= limits.max_bytes * 4;
        let low_disk = free.is_some_and(|f| f < limits.min_free.saturating_mul(2));
        let mut view = crate::admin::status::StatusView::default();
        crate::admin::status::state_file(store, &mut view);
        Fill {
            spool_bytes: used,
            high: over_max || low_disk,
            state_bytes: view.state_bytes,
            state_warning: view.state_warning,
        }
    }

    /// `spool.high` at 80 % of `--spool-max-bytes` or with free disk below twice
    /// `--spool-min-free`, `spool.ok` when neither holds; `state.large` when `status`
    /// warns that the state file would not fit twice in the free space beside it.
    fn report(&self, r: &Recorder, said: &mut Said) {
        if self.high != said.spool_high {
            said.spool_high = self.high;
            let kind = if self.high {
                Kind::SpoolHigh
            } else {
                Kind::SpoolOk
            };
            r.event(Event {
                bytes: Some(self.spool_bytes),
                ..Event::of(kind)
            });
        }
        if let Some(warning) = &self.state_warning
            && !said.state_large
        {
            r.event(Event {
                bytes: Some(self.state_bytes),
                reason: Some(warning.clone()),
                ..Event::of(Kind::StateLarge)
            });
        }
        said.state_large = self.state_warning.is_some();
    }
}
