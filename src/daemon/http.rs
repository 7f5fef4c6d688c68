//! What the daemon's HTTP listener serves (see `crate::web`): the status view with what
//! only the running daemon knows, every Sender's activity, the newest events and the
//! last hour's counts, rendered as Prometheus text or as the status page.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::control;
use crate::admin::status::StatusView;
use crate::forward::Forwarder;
use crate::gateway::server::Server;
use crate::store::activity::Activity;
use crate::store::{Store, View};

/// Events the page lists.
const PAGE_EVENTS: usize = 25;

/// The status view, the Senders with their `--expect-every` and activity, and events.
type Picture = (
    StatusView,
    Vec<(String, Option<u64>, Activity)>,
    Vec<crate::store::events::Event>,
);

pub(super) struct DaemonSite {
    pub store: Arc<Store>,
    pub srv: Arc<Server>,
    pub fwd: Arc<Forwarder>,
    pub started: std::time::Instant,
    pub cap: u64,
}

impl DaemonSite {
    /// The status view, each existing Sender with its `--expect-every` and activity, and
    /// the newest `events` events, from one read snapshot.
    fn view(&self, events: usize) -> Picture {
        let read = self.store.read();
        let mut v = match &read {
            Ok(r) => crate::admin::status::from_store(r).unwrap_or_default(),
            Err(_) => StatusView::default(),
        };
        crate::admin::status::state_file(&self.store, &mut v);
        let (senders, newest) = read
            .and_then(|r| {
                let mut out = Vec::new();
                for s in r.senders()? {
                    let a = r.activity(&s.name)?;
                    out.push((s.name, s.expect_every, a));
                }
                let newest = match events {
                    0 => Vec::new(),
                    limit => r.events(&crate::store::events::Query {
                        limit,
                        ..Default::default()
                    })?,
                };
                Ok((out, newest))
            })
            .unwrap_or_default();
        control::live_status(&mut v, &self.srv, &self.fwd, self.started, self.cap);
        (v, senders, newest)
    }
}

impl crate::web::Site for DaemonSite {
    fn metrics(&self) -> String {
        let (v, senders, _) = self.view(0);
        let c = crate::metrics::Counters {
            logins_ok: self.srv.stats.logins_ok.load(Ordering::Relaxed),
            logins_failed: self.srv.stats.logins_failed.load(Ordering::Relaxed),
            senders: senders.into_iter().map(|(n, _, a)| (n, a)).collect(),
            now_ms: crate::clock::now_ms(),
        };
        crate::metrics::render(&v, &c)
    }

    fn page(&self) -> String {
        let (status, senders, events) = self.view(PAGE_EVENTS);
        let now_ms = crate::clock::now_ms();
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        crate::web::page::render(&crate::web::page::Snapshot {
            status,
            senders,
            events,
            minutes: self.srv.minutes.last_hour(now_ms),
            now_ms,
            host,
        })
    }

    fn token_digest(&self) -> Option<String> {
        self.store.read().ok()?.http_token_digest().ok()?
    }
}
