//! The forwarder: delivers the outbox to each Pipe's destination (DESIGN §3, §9).
//!
//! One loop works in rounds. A round is one write transaction that records the outcome
//! of every delivery that ended since the last round (a group commit: many settled ops,
//! one durable commit) and claims the ready ops each Pipe has room for
//! ([`crate::store::Writer::claim_ready`] reads the front of an index, so a round costs
//! the same with ten queued ops or ten million). Deliveries run off the executor, up to
//! each Pipe's `parallel` at a time; ops on one key are never ready together, so order
//! per key holds however many run.
//!
//! Completion is crash-safe and in this order: the destination confirmed → the round's
//! commit marks the catalog and removes the op → the spool body is deleted. A crash in
//! between sends the ops of that round again, which is harmless.
//!
//! A transient failure retries the op with backoff and marks its Pipe offline: until
//! the retry time that Pipe gets no slot, then one (the probe), so a dead endpoint is not
//! hammered, a live one is used again within [`backoff::CAP`], and other Pipes are not
//! held up. A permanent failure parks the op with its reason until `spool retry` or a
//! changed Pipe.

pub mod backoff;
pub mod dir;
pub mod s3;
pub mod sink;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spool::Spool;
use crate::store::outbox::{Action, Op, Outcome};
use crate::store::{Pipe, Store, View, now_ms, now_secs};
use crate::vfs::VPath;
use sink::{Meta, Sink, SinkError};

/// Makes rust-s3 leave retries to us and picks ring as rustls's provider (rust-s3 and
/// futures-rustls would otherwise bring two, and rustls refuses to guess).
pub fn init() {
    ::s3::set_retries(0);
}

/// Per-Pipe delivery health, for `status` and metrics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Health {
    /// Set while the destination fails transiently: ops wait until this time (ms).
    pub offline_until_ms: Option<u64>,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    pub delivered_ops: u64,
    pub delivered_bytes: u64,
    pub failed_ops: u64,
    /// Bytes delivered in the last completed minute-long window, for a rate.
    pub recent_bytes: u64,
    pub window_start: u64,
}

/// Forwarder settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most deliveries at once across all Pipes (each Pipe has its own `parallel` too).
    pub max_parallel: usize,
    /// Sent as object metadata.
    pub gateway: String,
}

impl Default for Config {
    fn default() -> Self {
        let gateway = crate::state::host_name().unwrap_or_else(|| "ftpgate".into());
        Config {
            max_parallel: 64,
            gateway,
        }
    }
}

pub struct Forwarder {
    store: Arc<Store>,
    spool: Arc<Spool>,
    config: Config,
    health: Mutex<HashMap<String, Health>>,
    wake_tx: smol::channel::Sender<()>,
    wake_rx: smol::channel::Receiver<()>,
    /// Sinks by Pipe, rebuilt when the Pipe's record changes.
    sinks: Mutex<HashMap<String, CachedSink>>,
}

/// A Pipe's sink and the record it was built from.
type CachedSink = (Pipe, Arc<dyn Sink>);

/// A delivery that ended: the op and what the sink said (bytes sent, or the error).
type Ended = (Op, Result<u64, SinkError>);

/// What one round committed and claimed.
struct Round {
    freed: Vec<String>,
    claimed: Vec<(Pipe, Op)>,
}

/// Deliveries running now, per Pipe.
#[derive(Default)]
struct Running {
    per_pipe: HashMap<String, usize>,
    total: usize,
}

impl Running {
    fn add(&mut self, pipe: &str, n: isize) {
        let c = self.per_pipe.entry(pipe.to_string()).or_default();
        *c = c.saturating_add_signed(n);
        self.total = self.total.saturating_add_signed(n);
    }

    fn of(&self, pipe: &str) -> usize {
        self.per_pipe.get(pipe).copied().unwrap_or(0)
    }
}

impl Forwarder {
    pub fn new(store: Arc<Store>, spool: Arc<Spool>, config: Config) -> Arc<Forwarder> {
        let (wake_tx, wake_rx) = smol::channel::bounded(1);
        Arc::new(Forwarder {
            store,
            spool,
            config,
            health: Mutex::default(),
            wake_tx,
            wake_rx,
            sinks: Mutex::default(),
        })
    }

    /// Looks at the outbox now (after a commit or an admin change).
    pub fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// A person asked for it (`spool retry`, a changed Pipe): probe offline Pipes now
    /// instead of waiting out their backoff.
    pub fn retry_now(&self) {
        for h in self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            h.offline_until_ms = h.offline_until_ms.map(|_| 0);
        }
        self.wake();
    }

    /// A copy of every Pipe's health.
    pub fn health(&self) -> HashMap<String, Health> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, pipe: &str, f: impl FnOnce(&mut Health)) {
        f(self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pipe.to_string())
            .or_default());
    }

    fn sink(&self, pipe: &Pipe) -> Result<Arc<dyn Sink>, SinkError> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, s)) = sinks.get(&pipe.id)
            && p == pipe
        {
            return Ok(s.clone());
        }
        let s: Arc<dyn Sink> = Arc::from(sink::for_pipe(pipe)?);
        sinks.insert(pipe.id.clone(), (pipe.clone(), s.clone()));
        Ok(s)
    }

    /// How many more deliveries `pipe` may start now: none while it is offline and its
    /// retry time has not come or its probe is still out, one (the probe) after that.
    fn slots(&self, pipe: &Pipe, running: &Running, now: u64) -> usize {
        let offline = self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pipe.id)
            .and_then(|h| h.offline_until_ms);
        let busy = running.of(&pipe.id);
        let room = match offline {
            Some(until) if until > now || busy > 0 => 0,
            Some(_) => 1,
            None => pipe.parallel().saturating_sub(busy),
        };
        room.min(self.config.max_parallel.saturating_sub(running.total))
    }

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut running = Running::default();
        let (done_tx, done_rx) = smol::channel::unbounded::<Ended>();
        let mut ended: Vec<Ended> = Vec::new();
        loop {
            let outcomes = self.outcomes(&mut ended, &mut running);
            match self.round(outcomes, &running).await {
                Ok(Some(round)) => {
                    if !round.freed.is_empty() {
                        let spool = self.spool.clone();
                        smol::unblock(move || spool.collect(&round.freed)).await;
                    }
                    for (pipe, op) in round.claimed {
                        running.add(&op.pipe, 1);
                        let (me, done) = (self.clone(), done_tx.clone());
                        smol::spawn(async move {
                            let job = op.clone();
                            let me2 = me.clone();
                            let result = smol::unblock(move || me2.execute(&pipe, &job)).await;
                            let _ = done.send((op, result)).await;
                        })
                        .detach();
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    log::error!("forwarder: {e}; trying again in a second");
                    smol::Timer::after(Duration::from_secs(1)).await;
                }
            }
            // Wait for a delivery to end, a wake-up, or the next due time.
            let wait = self.next_wake(&running).await;
            if let Some(first) = smol::future::or(async { done_rx.recv().await.ok() }, async {
                smol::future::or(
                    async {
                        let _ = self.wake_rx.recv().await;
                    },
                    async {
                        smol::Timer::after(wait).await;
                    },
                )
                .await;
                None
            })
            .await
            {
                ended.push(first);
            }
            while let Ok(e) = done_rx.try_recv() {
                ended.push(e);
            }
        }
    }

    /// How long the loop may sleep: until the earliest due op of a Pipe with room, or an
    /// offline Pipe's probe time; at most a second.
    async fn next_wake(&self, running: &Running) -> Duration {
        let store = self.store.clone();
        let now = now_ms();
        let health = self.health();
        let busy: HashMap<String, usize> = running.per_pipe.clone();
        let found = smol::unblock(move || -> crate::store::Result<Option<u64>> {
            let r = store.read()?;
            let mut earliest: Option<u64> = None;
            for p in r.pipes()? {
                let offline = health.get(&p.id).and_then(|h| h.offline_until_ms);
                let at = match offline {
                    Some(until) => Some(until),
                    None if busy.get(&p.id).copied().unwrap_or(0) >= p.parallel() => None,
                    None => r.next_due(&p.id)?,
                };
                earliest = match (earliest, at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(earliest)
        })
        .await;
        let max = Duration::from_secs(1);
        match found {
            Ok(Some(at)) => Duration::from_millis(at.saturating_sub(now)).min(max),
            _ => max,
        }
    }

    /// Turns ended deliveries into outcomes to record, updating health and logs.
    fn outcomes(&self, ended: &mut Vec<Ended>, running: &mut Running) -> Vec<(u64, Outcome)> {
        let now = now_ms();
        let mut out = Vec::with_capacity(ended.len());
        for (op, result) in ended.drain(..) {
            running.add(&op.pipe, -1);
            let outcome = match result {
                Ok(bytes) => {
                    self.delivered(&op, bytes);
                    Outcome::Done
                }
                Err(e) if e.is_transient() => {
                    let wait = backoff::delay(op.attempts.max(1), backoff::jitter());
                    let due_ms = now + wait.as_millis() as u64;
                    log::warn!(
                        "pipe {} offline: op {} {} failed ({}); retry in {:.1}s",
                        op.pipe,
                        op.id,
                        op.action.name(),
                        e.message,
                        wait.as_secs_f64()
                    );
                    self.update(&op.pipe, |h| {
                        h.offline_until_ms = Some(due_ms);
                        h.last_error = Some(e.message.clone());
                        h.failed_ops += 1;
                    });
                    Outcome::Retry {
                        due_ms,
                        error: e.message,
                    }
                }
                Err(e) => {
                    log::error!(
                        "pipe {}: op {} {} parked: {}",
                        op.pipe,
                        op.id,
                        op.action.name(),
                        e.message
                    );
                    self.update(&op.pipe, |h| {
                        h.last_error = Some(e.message.clone());
                        h.failed_ops += 1;
                    });
                    Outcome::Park { reason: e.message }
                }
            };
            out.push((op.id, outcome));
        }
        out
    }

    fn delivered(&self, op: &Op, bytes: u64) {
        log::info!(
            "delivered pipe={} op={} {} {}",
            op.pipe,
            op.id,
            op.action.name(),
            op.action.keys().join(" -> ")
        );
        self.update(&op.pipe, |h| {
            let secs = now_secs();
            if secs >= h.window_start + 60 {
                h.window_start = secs;
                h.recent_bytes = 0;
            }
            h.recent_bytes += bytes;
            h.offline_until_ms = None;
            h.last_success = Some(secs);
            h.delivered_ops += 1;
            h.delivered_bytes += bytes;
        });
    }

    /// One transaction: record `outcomes` (durably, if there are any) and claim what
    /// every Pipe has room for. `None` when there was nothing to do.
    async fn round(
        self: &Arc<Self>,
        outcomes: Vec<(u64, Outcome)>,
        running: &Running,
    ) -> crate::store::Result<Option<Round>> {
        let now = now_ms();
        let me = self.clone();
        let store = self.store.clone();
        let collected = self.spool.take_collected();
        let room: HashMap<String, usize> = {
            let pipes = {
                let store = store.clone();
                smol::unblock(move || store.read()?.pipes()).await?
            };
            pipes
                .iter()
                .map(|p| (p.id.clone(), me.slots(p, running, now)))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        if outcomes.is_empty() && collected.is_empty() {
            // Nothing to record: skip the write unless some Pipe with room has work due.
            let (store, room) = (store.clone(), room.clone());
            let due = smol::unblock(move || -> crate::store::Result<bool> {
                let r = store.read()?;
                for id in room.keys() {
                    if r.next_due(id)?.is_some_and(|at| at <= now) {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await?;
            if !due {
                return Ok(None);
            }
        }
        let durable = !outcomes.is_empty();
        let round = smol::unblock(move || {
            let work = |w: &crate::store::Writer| {
                w.forget_garbage(&collected)?;
                let freed = w.settle(&outcomes)?;
                let mut claimed = Vec::new();
                for p in w.pipes()? {
                    if let Some(n) = room.get(&p.id) {
                        for op in w.claim_ready(&p.id, now, *n)? {
                            claimed.push((p.clone(), op));
                        }
                    }
                }
                Ok(Round { freed, claimed })
            };
            if durable {
                store.write(work)
            } else {
                store.write_volatile(work)
            }
        })
        .await?;
        for (p, _) in &round.claimed {
            if me
                .health()
                .get(&p.id)
                .is_some_and(|h| h.offline_until_ms.is_some())
            {
                log::info!("pipe {}: probing the destination", p.id);
            }
        }
        Ok(Some(round))
    }

    /// The blocking part: one call to the sink.
    fn execute(&self, pipe: &Pipe, op: &Op) -> Result<u64, SinkError> {
        let sink = self.sink(pipe)?;
        let prefix = sink::prefix(pipe);
        let key = |p: &str| VPath::from_normalised(p).key(prefix);
        match &op.action {
            Action::Put {
                path,
                body,
                size,
                md5,
                mtime,
                sender,
            } => {
                let file = self.spool.body_path(body);
                if !file.exists() {
                    return Err(SinkError::permanent(
                        "the spool body is missing from spool/ready (deleted by hand?)",
                    ));
                }
                let meta = Meta {
                    sender: sender.clone(),
                    pipe: pipe.id.clone(),
                    gateway: self.config.gateway.clone(),
                    mtime: *mtime,
                };
                sink.put(&key(path), &file, *size, md5, &meta)?;
                Ok(*size)
            }
            Action::Delete { path } => sink.delete(&key(path)).map(|_| 0),
            Action::Rename { from, to } => sink.rename(&key(from), &key(to)).map(|_| 0),
            Action::MkDir { path } => sink.mkdir(&key(path)).map(|_| 0),
            Action::RmDir { path } => sink.rmdir(&key(path)).map(|_| 0),
        }
    }
}
