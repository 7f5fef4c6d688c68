//! Events and activity with no commit of their own: logins (failed or not), bans,
//! silent Senders, Pipes offline, a spool or state file filling up. Sessions hand them to
//! the [`Recorder`] without waiting; [`run`] writes whatever gathered in one commit at
//! most once a second, so a password-guessing bot costs one commit a second, not one
//! per guess. Upload events ride in the commits that already happen (`store::events`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::now_ms;
use crate::store::activity::LastLogin;
use crate::store::events::{Event, Kind};
use crate::store::{self, Store, View, Writer};

/// Most items waiting for the next commit; beyond it new ones are dropped and counted
/// (a flood of failed logins must not grow the daemon's memory).
const MAX_PENDING: usize = 10_000;

/// What waits for the next commit.
#[derive(Default)]
struct Pending {
    events: Vec<(Event, u64)>,
    logins: Vec<(String, LastLogin)>,
    /// Failed logins of existing Senders, counted in their activity.
    failed: Vec<(String, u64)>,
    dropped: u64,
}

impl Pending {
    fn len(&self) -> usize {
        self.events.len() + self.logins.len() + self.failed.len()
    }
}

/// Collects events and logins from sessions and the daemon's checks.
pub struct Recorder {
    pending: Mutex<Pending>,
    /// When this daemon started (ms): a silence is counted from it at the earliest.
    started_ms: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            pending: Mutex::new(Pending::default()),
            started_ms: now_ms(),
        }
    }
}

impl Recorder {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, f: impl FnOnce(&mut Pending)) {
        let mut p = self.pending();
        if p.len() >= MAX_PENDING {
            p.dropped += 1;
        } else {
            f(&mut p);
        }
    }

    /// An event, recorded with the next batch.
    pub fn event(&self, e: Event) {
        self.push(|p| p.events.push((e, now_ms())));
    }

    /// A login that passed: the Sender's last login.
    pub fn login_ok(&self, sender: &str, address: &str, proto: &str, client: Option<&str>) {
        let login = LastLogin {
            time_ms: now_ms(),
            address: address.to_string(),
            proto: proto.to_string(),
            client: client.map(|c| crate::names::sanitize(c).chars().take(128).collect()),
        };
        self.push(|p| p.logins.push((sender.to_string(), login)));
    }

    /// A login refused: a `login.failed` event, and a failure in the Sender's activity
    /// when `user` names one.
    pub fn login_failed(&self, user: &str, address: &str, proto: &str, reason: &str) {
        let user: String = crate::names::sanitize(user).chars().take(128).collect();
        // `name@pipe` picks a Pipe: the Sender is the name.
        let (name, pipe) = match user.split_once('@') {
            Some((n, p)) => (n.to_string(), Some(p.to_string())),
            None => (user, None),
        };
        let now = now_ms();
        self.push(|p| {
            p.failed.push((name.clone(), now));
            p.events.push((
                Event {
                    sender: Some(name),
                    pipe,
                    address: Some(address.to_string()),
                    proto: Some(proto.to_string()),
                    reason: Some(reason.to_string()),
                    ..Event::of(Kind::LoginFailed)
                },
                now,
            ));
        });
    }

    /// Whether anything waits for a commit.
    fn is_empty(&self) -> bool {
        let p = self.pending();
        p.len() == 0 && p.dropped == 0
    }

    /// Writes everything gathered in one commit (blocking). On failure it is lost but
    /// for the log line: events are for people, the uploads are never at stake.
    pub fn flush(&self, store: &Store) -> store::Result<usize> {
        let p = std::mem::take(&mut *self.pending());
        let n = p.len();
        if n == 0 && p.dropped == 0 {
            return Ok(0);
        }
        if p.dropped > 0 {
            log::warn!(
                "events: {} events or logins came faster than they could be recorded and were not",
                p.dropped
            );
        }
        store.write(|w| write_pending(w, &p))?;
        Ok(n)
    }

    /// Marks Senders silent that have not uploaded for longer than they are expected
    /// to: read first, written only when one turned silent.
    fn check_silence(&self, store: &Store, now: u64) -> store::Result<()> {
        let due = {
            let r = store.read()?;
            silent_now(&r, self.started_ms, now)?
        };
        if due.is_empty() {
            return Ok(());
        }
        store.write(|w| {
            // Checked again inside the transaction: an upload may have come meanwhile.
            for name in silent_now(w, self.started_ms, now)? {
                let mut a = w.activity(&name)?;
                let since = silence_start(w, &name, &a, self.started_ms)?;
                a.silent = true;
                w.put_activity(&name, &a)?;
                w.record_event(
                    Event {
                        sender: Some(name.clone()),
                        seconds: Some(now.saturating_sub(since) / 1000),
                        ..Event::of(Kind::SenderSilent)
                    },
                    now,
                )?;
                log::warn!(
                    "sender {name} is silent: no upload for {}s",
                    now.saturating_sub(since) / 1000
                );
            }
            Ok(())
        })
    }
}

fn write_pending(w: &Writer, p: &Pending) -> store::Result<()> {
    for (name, login) in &p.logins {
        if w.sender(name)?.is_some() {
            let mut a = w.activity(name)?;
            a.last_login = Some(login.clone());
            w.put_activity(name, &a)?;
        }
    }
    for (name, at) in &p.failed {
        if w.sender(name)?.is_some() {
            let mut a = w.activity(name)?;
            a.login_failed(*at);
            w.put_activity(name, &a)?;
        }
    }
    w.record_events(p.events.iter().cloned())?;
    Ok(())
}

/// When the current silence of `name` began: its last upload, when `--expect-every`
/// was set, or when this daemon started, whichever is latest.
fn silence_start(
    v: &impl View,
    name: &str,
    a: &store::activity::Activity,
    started_ms: u64,
) -> store::Result<u64> {
    let since = v.existing_sender(name)?.expect_since.saturating_mul(1000);
    let last = a.last_upload.as_ref().map_or(0, |u| u.time_ms);
    Ok(since.max(last).max(started_ms))
}

/// Senders with `--expect-every` that are not yet marked silent and should be.
fn silent_now(v: &impl View, started_ms: u64, now: u64) -> store::Result<Vec<String>> {
    let mut out = Vec::new();
    for s in v.senders()? {
        let Some(every) = s.expect_every else {
            continue;
        };
        let a = v.activity(&s.name)?;
        if a.silent {
            continue;
        }
        let since = silence_start(v, &s.name, &a, started_ms)?;
        if now.saturating_sub(since) > every.saturating_mul(1000) {
            out.push(s.name);
        }
    }
    Ok(out)
}

/// What [`run`] watches besides the recorder: transitions said once each.
pub struct Watch {
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
pub async fn run(watch: Watch) {
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
        watch_pipes(&watch, &mut said, now);
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
fn watch_pipes(watch: &Watch, said: &mut Said, now: u64) {
    let grace = watch.offline_grace.as_millis() as u64;
    for (pipe, h) in watch.forwarder.health() {
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
            let since = said.failing_since.remove(&pipe);
            if said.offline.remove(&pipe) {
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
    state: Option<(u64, u64)>,
}

impl Fill {
    fn measure(spool: &crate::spool::Spool, store: &Store) -> Fill {
        let limits = spool.limits();
        let used = spool.used();
        let free = spool.free_space().ok();
        let over_max = limits.max_bytes > 0 && used.saturating_mul(5) >= limits.max_bytes * 4;
        let low_disk = free.is_some_and(|f| f < limits.min_free.saturating_mul(2));
        let state_bytes = store.file_bytes();
        let state_free = store
            .path()
            .parent()
            .and_then(|dir| rustix::fs::statvfs(dir).ok())
            .map(|st| st.f_bavail.saturating_mul(st.f_frsize));
        Fill {
            spool_bytes: used,
            high: over_max || low_disk,
            state: state_free.map(|f| (state_bytes, f)),
        }
    }

    /// `spool.high` at 80 % of `--spool-max-bytes` or with free disk below twice
    /// `--spool-min-free`, `spool.ok` when neither holds; `state.large` when the state
    /// file would not fit twice in the free space beside it (see `status`).
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
        let large = self
            .state
            .is_some_and(|(size, free)| free < size.saturating_mul(2));
        if large && !said.state_large {
            r.event(Event {
                bytes: self.state.map(|(size, _)| size),
                reason: Some(
                    "the state file would not fit twice in the free space on its disk".into(),
                ),
                ..Event::of(Kind::StateLarge)
            });
        }
        said.state_large = large;
    }
}
