//! Hook deliveries, off every upload's path: one thread per hook sends the events it
//! wants, oldest first, each until it is taken (a `2xx` answer, or the program exiting
//! 0), with backoff between failed attempts. How far a hook has got is its cursor in
//! the event ring (`store::hooks`), written without a sync of its own: it reaches the
//! disk with the next durable commit, or when the daemon stops. So every event is sent
//! at least once (after a crash, the last few may be sent again; the event id lets the
//! receiver tell), in order, even across restarts and outages. A hook that falls more
//! than `max_pending` events behind drops the oldest and counts them; so does one whose
//! events leave the ring before it could send them. A dead or hanging receiver only
//! ever holds up its own thread.
//!
//! A URL hook's request (see docs/EVENTS.md, "Hooks"): `POST` of the event's JSON, with
//! `X-Ftpgate-Event`, `X-Ftpgate-Event-Id`, `X-Ftpgate-Timestamp` and, with a secret,
//! `X-Ftpgate-Signature: sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::events::{Event, Kind, Query, RING};
use crate::store::hooks::{Hook, HookState, Target};
use crate::store::{Store, View};

/// Longest wait for one attempt (a URL's answer, a program's exit).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait between attempts of a failing hook.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often an idle hook looks for new events, and the supervisor for changed hooks.
const POLL: Duration = Duration::from_secs(1);
/// Sent events between two writes of a hook's cursor while it catches up.
const PERSIST_EVERY: u64 = 50;

/// `sha256=HEX`: the HMAC-SHA256 of `TIMESTAMP.BODY` with the hook's secret.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "sha256={}",
        crate::support::hex(&mac.finalize().into_bytes())
    )
}

/// Sends one event to `hook` now (blocking, at most [`ATTEMPT_TIMEOUT`]).
pub fn send(hook: &Hook, event: &Event, agent: &ureq::Agent) -> Result<(), String> {
    let body = serde_json::to_vec(event).expect("events serialize");
    match &hook.target {
        Target::Url { url, secret } => post(agent, url, secret.expose(), event, &body),
        Target::Command { path } => run_program(path, event, &body),
    }
}

/// An HTTP agent for hooks: the proxy from the environment, bounded waits.
pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            .proxy(ureq::Proxy::try_from_env())
            .build(),
    )
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    secret: &str,
    e: &Event,
    body: &[u8],
) -> Result<(), String> {
    let timestamp = crate::clock::now_secs();
    let mut req = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("ftpgate/", env!("CARGO_PKG_VERSION")))
        .header("X-Ftpgate-Event", e.kind.as_str())
        .header("X-Ftpgate-Event-Id", e.id.to_string())
        .header("X-Ftpgate-Timestamp", timestamp.to_string());
    if !secret.is_empty() {
        req = req.header("X-Ftpgate-Signature", signature(secret, timestamp, body));
    }
    match req.send(body) {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) => Err(format!("{url} answered HTTP {}", answer.status())),
        Err(err) => Err(format!("{url}: {err}")),
    }
}

/// Runs the program with the event on its standard input; it has taken the event when
/// it exits 0 within [`ATTEMPT_TIMEOUT`].
fn run_program(path: &str, e: &Event, body: &[u8]) -> Result<(), String> {
    let mut child = std::process::Command::new(path)
        .env("FTPGATE_EVENT", e.kind.as_str())
        .env("FTPGATE_EVENT_ID", e.id.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run {path}: {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input still gets to answer with its exit.
        let _ = stdin.write_all(body);
    }
    let deadline = Instant::now() + ATTEMPT_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{path} exited with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{path} did not exit within {}s: killed",
                    ATTEMPT_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(format!("waiting for {path}: {err}")),
        }
    }
}

/// The hooks' threads, started and stopped as hooks are added and removed.
pub struct Hooks {
    store: Arc<Store>,
    /// One per running hook: the hook as it was started, and the sender whose drop
    /// stops its thread.
    workers: Mutex<HashMap<String, (Hook, Sender<()>)>>,
}

impl Hooks {
    /// Starts the supervisor, which starts a thread per hook (and again for a changed
    /// one) and stops those of removed hooks. It ends when `stop` is dropped.
    pub fn start(store: Arc<Store>) -> std::io::Result<Stop> {
        let hooks = Arc::new(Hooks {
            store,
            workers: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = channel::<()>();
        std::thread::Builder::new()
            .name("ftpgate-hooks".into())
            .spawn(move || {
                hooks.supervise(&rx);
                // Stopping: every worker's sender goes, and with it the worker.
                hooks
                    .workers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
            })?;
        Ok(Stop(tx))
    }

    fn supervise(&self, stop: &Receiver<()>) {
        loop {
            match self.store.read().and_then(|r| r.hooks()) {
                Ok(hooks) => self.reconcile(hooks),
                Err(e) => log::debug!("hooks: reading the hooks: {e}"),
            }
            if let Err(RecvTimeoutError::Disconnected) = stop.recv_timeout(POLL) {
                return;
            }
        }
    }

    fn reconcile(&self, hooks: Vec<Hook>) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.retain(|name, (running, _)| hooks.iter().any(|h| h.name == *name && h == running));
        for h in hooks {
            if workers.contains_key(&h.name) {
                continue;
            }
            let (tx, rx) = channel();
            let (store, hook) = (self.store.clone(), h.clone());
            let started = std::thread::Builder::new()
                .name("ftpgate-hook".into())
                .spawn(move || Worker::new(store, hook, rx).run());
            match started {
                Ok(_) => {
                    workers.insert(h.name.clone(), (h, tx));
                }
                Err(e) => log::warn!("hook {}: cannot start its thread: {e}", h.name),
            }
        }
    }
}

/// Dropped at shutdown: every hook thread stops at its next look (one waiting for an
/// answer stops when it comes, at most [`ATTEMPT_TIMEOUT`] later).
pub struct Stop(#[allow(dead_code)] Sender<()>);

struct Worker {
    store: Arc<Store>,
    hook: Hook,
    stop: Receiver<()>,
    state: HookState,
    /// Sent since the state was last written.
    unsaved: u64,
    agent: ureq::Agent,
}

impl Worker {
    fn new(store: Arc<Store>, hook: Hook, stop: Receiver<()>) -> Worker {
        let state = store
            .read()
            .and_then(|r| r.hook_state(&hook.name))
            .unwrap_or_default();
        Worker {
            store,
            hook,
            stop,
            state,
            unsaved: 0,
            agent: agent(),
        }
    }

    /// Waits `d`; false once the hook is to stop.
    fn wait(&self, d: Duration) -> bool {
        !matches!(
            self.stop.recv_timeout(d),
            Err(RecvTimeoutError::Disconnected) | Ok(())
        )
    }

    fn run(mut self) {
        loop {
            let sent_all = match self.pending() {
                Ok(events) => self.send_all(events),
                Err(e) => {
                    log::debug!("hook {}: reading events: {e}", self.hook.name);
                    true
                }
            };
            self.save();
            if sent_all && !self.wait(POLL) {
                return;
            }
        }
    }

    /// The events to send, oldest first, after dropping what is over the cap or has
    /// left the ring.
    fn pending(&mut self) -> crate::store::Result<Vec<Event>> {
        let r = self.store.read()?;
        let newest = r.last_event_id()?;
        let oldest_kept = newest.saturating_sub(RING) + 1;
        if self.state.cursor + 1 < oldest_kept {
            let lost = oldest_kept - self.state.cursor - 1;
            self.dropped(lost, "left the event ring before they could be sent");
            self.state.cursor = oldest_kept - 1;
        }
        let mut events = r.events(&Query {
            after: Some(self.state.cursor),
            kinds: self.hook.events.clone(),
            limit: RING as usize,
            ..Query::default()
        })?;
        let cap = self.hook.max_pending as usize;
        if events.len() > cap {
            let over = events.len() - cap;
            self.state.cursor = events[over - 1].id;
            events.drain(..over);
            self.dropped(over as u64, "were over its --max-pending");
        }
        if events.is_empty() && self.state.cursor < newest {
            // Only events it does not want came: nothing to send up to the newest.
            self.state.cursor = newest;
            self.unsaved += 1;
        }
        Ok(events)
    }

    fn dropped(&mut self, n: u64, why: &str) {
        self.state.dropped += n;
        self.unsaved += 1;
        log::warn!("hook {}: {n} events dropped: they {why}", self.hook.name);
    }

    /// Sends `events` in order; false when one failed (after its backoff) or the hook
    /// is stopping.
    fn send_all(&mut self, events: Vec<Event>) -> bool {
        for e in events {
            if matches!(
                self.stop.try_recv(),
                Err(std::sync::mpsc::TryRecvError::Disconnected)
            ) {
                return false;
            }
            match send(&self.hook, &e, &self.agent) {
                Ok(()) => {
                    if self.state.failures > 0 {
                        log::info!(
                            "hook {}: sending again after {} failed attempts",
                            self.hook.name,
                            self.state.failures
                        );
                    }
                    self.state.cursor = e.id;
                    self.state.sent += 1;
                    self.state.failures = 0;
                    self.state.last_error = None;
                    self.state.last_sent_ms = Some(crate::clock::now_ms());
                    self.unsaved += 1;
                    if self.unsaved >= PERSIST_EVERY {
                        self.save();
                    }
                }
                Err(msg) => {
                    self.state.failures = self.state.failures.saturating_add(1);
                    if self.state.failures == 1 {
                        log::warn!(
                            "hook {}: event {} ({}) not taken: {msg}; trying again with backoff",
                            self.hook.name,
                            e.id,
                            e.kind
                        );
                    }
                    self.state.last_error = Some(msg);
                    self.unsaved += 1;
                    self.save();
                    let backoff =
                        Duration::from_secs(1u64 << self.state.failures.min(9)).min(MAX_BACKOFF);
                    self.wait(backoff);
                    return false;
                }
            }
        }
        true
    }

    /// Writes the hook's state without a sync of its own (see the module's docs).
    fn save(&mut self) {
        if self.unsaved == 0 {
            return;
        }
        let (name, state) = (&self.hook.name, &self.state);
        match self.store.write_volatile(|w| w.put_hook_state(name, state)) {
            Ok(_) => self.unsaved = 0,
            Err(e) => log::debug!("hook {name}: recording its progress: {e}"),
        }
    }
}

/// The event `hook test` sends: never in the ring.
pub fn test_event() -> Event {
    Event {
        time: crate::calendar::format_rfc3339_ms(crate::clock::now_ms()),
        reason: Some("a test from 'ftpgate hook test'".into()),
        ..Event::of(Kind::HookTest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same construction as the verification snippet in docs/EVENTS.md.
    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() {
        let sig = signature("s3cret", 1_796_597_400, b"{\"id\":1}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"1796597400.{\"id\":1}");
        let want = crate::support::hex(&mac.finalize().into_bytes());
        assert_eq!(sig, format!("sha256={want}"));
        assert_ne!(sig, signature("other", 1_796_597_400, b"{\"id\":1}"));
        assert_ne!(sig, signature("s3cret", 1_796_597_401, b"{\"id\":1}"));
    }
}
