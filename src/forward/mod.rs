//! The forwarder: delivers the outbox to each Pipe's destination (DESIGN §3, §9).
//!
//! One loop picks due ops ([`crate::store::Reader::due_ops`] keeps the order per key)
//! and runs at most `parallel` at a time, each off the executor. Completion is
//! crash-safe and in this order: the destination confirmed → one transaction marks the
//! catalog and removes the op → the spool body is deleted. A crash in between sends the
//! op again, which is harmless.
//!
//! A transient failure retries the op with backoff and marks its Pipe offline: until
//! the retry time only that op is tried (it is the probe), so a dead endpoint is not
//! hammered and a live one is used again within [`backoff::CAP`]. A permanent failure
//! parks the op with its reason until `spool retry` or a changed Pipe.

pub mod backoff;
pub mod dir;
pub mod s3;
pub mod sink;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spool::Spool;
use crate::store::outbox::{Action, Op};
use crate::store::{Pipe, Store, now_secs};
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
    /// Ops delivered at once across all Pipes.
    pub parallel: usize,
    /// Sent as object metadata.
    pub gateway: String,
}

impl Default for Config {
    fn default() -> Self {
        let gateway = crate::state::host_name().unwrap_or_else(|| "ftpgate".into());
        Config {
            parallel: 4,
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut busy: HashSet<u64> = HashSet::new();
        let (done_tx, done_rx) = smol::channel::unbounded::<u64>();
        loop {
            let free = self.config.parallel.saturating_sub(busy.len());
            if free > 0 {
                match self.pick(free, &busy).await {
                    Ok(ops) => {
                        for op in ops {
                            busy.insert(op.id);
                            let (me, done) = (self.clone(), done_tx.clone());
                            smol::spawn(async move {
                                let id = op.id;
                                me.deliver(op).await;
                                let _ = done.send(id).await;
                            })
                            .detach();
                        }
                    }
                    Err(e) => log::error!("forwarder: reading the outbox: {e}"),
                }
            }
            let event = smol::future::or(async { done_rx.recv().await.ok() }, async {
                smol::future::or(
                    async {
                        let _ = self.wake_rx.recv().await;
                    },
                    async {
                        smol::Timer::after(Duration::from_millis(500)).await;
                    },
                )
                .await;
                None
            })
            .await;
            if let Some(id) = event {
                busy.remove(&id);
                while let Ok(id) = done_rx.try_recv() {
                    busy.remove(&id);
                }
            }
        }
    }

    /// Due ops to start now; one probe op for a Pipe that is offline.
    async fn pick(&self, free: usize, busy: &HashSet<u64>) -> crate::store::Result<Vec<Op>> {
        let now = now_ms();
        let store = self.store.clone();
        let busy_ids = busy.clone();
        let ops = smol::unblock(move || store.read()?.due_ops(now, 256, &busy_ids)).await?;
        let health = self.health();
        let mut probing: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for op in ops {
            if out.len() == free {
                break;
            }
            // An offline Pipe waits until its retry time; then its first op probes it and
            // the rest wait for the answer.
            let waiting = match health.get(&op.pipe).and_then(|h| h.offline_until_ms) {
                Some(until) => until > now || !probing.insert(op.pipe.clone()),
                None => false,
            };
            if !waiting {
                out.push(op);
            }
        }
        Ok(out)
    }

    /// Delivers one op and records the outcome.
    async fn deliver(self: &Arc<Self>, op: Op) {
        let store = self.store.clone();
        let id = op.id;
        let claimed =
            smol::unblock(move || store.write(|w| Ok((w.claim(id)?, w.pipe_for_op(id)?)))).await;
        let (op, pipe) = match claimed {
            Ok((op, Some(pipe))) => (op, pipe),
            Ok((op, None)) => {
                self.settle(
                    &op,
                    Err(SinkError::permanent(format!(
                        "pipe {} no longer exists",
                        op.pipe
                    ))),
                )
                .await;
                return;
            }
            Err(e) => {
                log::error!("forwarder: claiming op {id}: {e}");
                return;
            }
        };
        let me = self.clone();
        let job = op.clone();
        let result = smol::unblock(move || me.execute(&pipe, &job)).await;
        self.settle(&op, result).await;
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
                let meta = Meta {
                    sender: sender.clone(),
                    pipe: pipe.id.clone(),
                    gateway: self.config.gateway.clone(),
                    mtime: *mtime,
                };
                sink.put(&key(path), &self.spool.body_path(body), *size, md5, &meta)?;
                Ok(*size)
            }
            Action::Delete { path } => sink.delete(&key(path)).map(|_| 0),
            Action::Rename { from, to } => sink.rename(&key(from), &key(to)).map(|_| 0),
            Action::MkDir { path } => sink.mkdir(&key(path)).map(|_| 0),
            Action::RmDir { path } => sink.rmdir(&key(path)).map(|_| 0),
        }
    }

    /// Records the outcome: completion (then the body goes), a retry, or a park.
    async fn settle(&self, op: &Op, result: Result<u64, SinkError>) {
        let store = self.store.clone();
        let id = op.id;
        let now = now_ms();
        match result {
            Ok(bytes) => {
                match smol::unblock(move || store.write(|w| w.complete(id))).await {
                    Ok(Some(body)) => {
                        let spool = self.spool.clone();
                        smol::unblock(move || spool.remove_bodies(&[body])).await;
                    }
                    Ok(None) => {}
                    Err(e) => log::error!("forwarder: recording op {id} as delivered: {e}"),
                }
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
            Err(e) if e.is_transient() => {
                let wait = backoff::delay(op.attempts.max(1), backoff::jitter());
                let due = now + wait.as_millis() as u64;
                let msg = e.message.clone();
                if let Err(err) =
                    smol::unblock(move || store.write(|w| w.retry_later(id, due, &msg))).await
                {
                    log::error!("forwarder: recording a retry of op {id}: {err}");
                }
                log::warn!(
                    "pipe {} offline: op {} {} failed ({}); retry in {:.1}s",
                    op.pipe,
                    op.id,
                    op.action.name(),
                    e.message,
                    wait.as_secs_f64()
                );
                self.update(&op.pipe, |h| {
                    h.offline_until_ms = Some(due);
                    h.last_error = Some(e.message.clone());
                    h.failed_ops += 1;
                });
            }
            Err(e) => {
                let msg = e.message.clone();
                if let Err(err) = smol::unblock(move || store.write(|w| w.park(id, &msg))).await {
                    log::error!("forwarder: parking op {id}: {err}");
                }
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
            }
        }
    }
}
