//! The forwarder: delivers the outbox to each Pipe's destination (docs/ARCHITECTURE.md,
//! "At the destination").
//!
//! One loop works in rounds. A round is one write transaction that records the outcome
//! of every delivery that ended since the last round (a group commit: many settled ops,
//! one durable commit) and claims the ready ops each Pipe has room for
//! ([`crate::store::Writer::claim_ready`] reads the front of an index, so a round costs
//! the same with ten queued ops or ten million). Deliveries run on their own threads,
//! below the uploads' priority ([`workers`]), up to each Pipe's `parallel` at a time; ops
//! on one key are never ready together, so order per key holds however many run. The
//! bodies of claimed puts are read ahead ([`prefetch`]): a long outage's backlog is on the
//! disk, not in memory, and a delivery should not wait for its read.
//!
//! Completion is crash-safe and in this order: the destination confirmed → the round's
//! commit marks the catalog and removes the op → the spool body is deleted. A crash in
//! between sends the ops of that round again, which is harmless.
//!
//! A transient failure retries the op with backoff and marks its Pipe offline: until
//! the retry time that Pipe gets no slot, then one (the probe), so a dead endpoint is not
//! hammered, a live one is used again within [`crate::backoff::CAP`], and other Pipes are not
//! held up. A permanent failure parks the op with its reason until `spool retry` or a
//! changed Pipe.

mod claims;
mod deliver;
pub mod dir;
mod health;
pub mod journal;
mod prefetch;
mod round;
mod run;
pub mod s3;
pub mod sink;
mod slots;
#[cfg(test)]
mod tests;
mod workers;

pub use health::Health;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{now_ms, now_secs};
use crate::spool::Spool;
use crate::store::destination::Destination;
use crate::store::outbox::{Action, Op, Outcome};
use crate::store::{Pipe, Result as StoreResult, Store, View};
use crate::vfs::VPath;
use sink::{Meta, Sink, SinkError};

/// The sink for a Pipe's destination; `journal` records its open multipart uploads.
pub fn sink_for(
    pipe: &Pipe,
    journal: Option<std::sync::Arc<journal::Journal>>,
) -> Result<Box<dyn Sink>, SinkError> {
    match &pipe.dest {
        crate::store::destination::Destination::Dir { path } => Ok(Box::new(dir::DirSink::new(
            path.into(),
            &pipe.id,
            pipe.dest_marked,
        ))),
        crate::store::destination::Destination::S3 { bucket, .. } => {
            let s3 = pipe
                .s3
                .as_ref()
                .ok_or_else(|| SinkError::permanent("the pipe has no S3 settings"))?;
            Ok(Box::new(s3::S3Sink::new(bucket, s3, journal)?))
        }
    }
}

/// Forwarder settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most deliveries at once across all Pipes (each Pipe has its own `parallel` too).
    pub max_parallel: usize,
    /// Sent as object metadata.
    pub gateway: String,
    /// Where open multipart uploads are written down (see [`journal`]); none: nowhere.
    pub multipart_dir: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let gateway = crate::state::host_name().unwrap_or_else(|| "ftpgate".into());
        Config {
            max_parallel: 64,
            gateway,
            multipart_dir: None,
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
    /// Open multipart uploads per Pipe; outlives the Pipe's sinks.
    journals: Mutex<HashMap<String, Arc<journal::Journal>>>,
    /// Claims wait for a durable commit: the store's commits wake the loop.
    awaiting_disk: std::sync::atomic::AtomicBool,
    /// Where deliveries run: below the uploads' priority.
    workers: workers::Workers,
    /// Reads claimed bodies ahead of their deliveries.
    prefetch: prefetch::Prefetch,
}

/// How often what interrupted deliveries left at a destination is cleaned up (S3: see
/// [`journal`]).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How long delivery outcomes may wait to be recorded together (one durable commit).
const SETTLE_EVERY: Duration = Duration::from_millis(50);
/// The same while devices are uploading (each durable commit is a disk flush theirs wait
/// behind).
const SETTLE_EVERY_INGESTING: Duration = Duration::from_millis(500);
/// Most outcomes recorded in one commit.
const SETTLE_MAX: usize = 256;

/// Uploads within this long count as "devices are uploading now".
const INGEST_WINDOW_MS: u64 = 1000;

/// When held claims next need the loop: when the oldest has waited [`claims::WAIT`], so a
/// hungry Pipe may force a durable commit. After that moment only a durable commit or an
/// ended delivery changes anything, and both wake the loop themselves.
fn claims_timer(waited: Option<Duration>) -> Option<Duration> {
    waited.and_then(|w| claims::WAIT.checked_sub(w).filter(|left| !left.is_zero()))
}

/// A Pipe's sink and the record it was built from.
type CachedSink = (Pipe, Arc<dyn Sink>);

/// A delivery that ended: the op and what the sink said (bytes sent, or the error).
type Ended = (Op, Result<deliver::Sent, SinkError>);

impl Forwarder {
    pub fn new(store: Arc<Store>, spool: Arc<Spool>, config: Config) -> Arc<Forwarder> {
        let (wake_tx, wake_rx) = smol::channel::bounded(1);
        let me = Arc::new(Forwarder {
            store,
            prefetch: prefetch::Prefetch::new(spool.clone()),
            spool,
            config,
            health: Mutex::default(),
            wake_tx,
            wake_rx,
            sinks: Mutex::default(),
            journals: Mutex::default(),
            awaiting_disk: Default::default(),
            workers: Default::default(),
        });
        let weak = Arc::downgrade(&me);
        me.store.on_durable(move || {
            if let Some(f) = weak.upgrade()
                && f.awaiting_disk.load(std::sync::atomic::Ordering::SeqCst)
            {
                f.wake();
            }
        });
        me
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

    fn sink(&self, pipe: &Pipe) -> Result<Arc<dyn Sink>, SinkError> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, s)) = sinks.get(&pipe.id)
            && p == pipe
        {
            return Ok(s.clone());
        }
        let s: Arc<dyn Sink> = Arc::from(sink_for(pipe, self.journal(&pipe.id))?);
        sinks.insert(pipe.id.clone(), (pipe.clone(), s.clone()));
        Ok(s)
    }

    /// Each Pipe's destination clock offset, where a sink has learned one.
    pub fn clock_skews(&self) -> HashMap<String, i64> {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks
            .iter()
            .filter_map(|(id, (_, s))| Some((id.clone(), s.clock_skew_secs()?)))
            .collect()
    }

    /// Idle destinations let their connections go (see `s3::http`): a drained backlog
    /// leaves no buffers behind.
    fn rest_idle_sinks(&self) {
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for (_, s) in sinks.values() {
            s.rest(s3::http::REST_AFTER);
        }
    }

    fn journal(&self, pipe: &str) -> Option<Arc<journal::Journal>> {
        let dir = self.config.multipart_dir.as_ref()?;
        let mut journals = self.journals.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            journals
                .entry(pipe.to_string())
                .or_insert_with(|| Arc::new(journal::Journal::new(dir.join(pipe))))
                .clone(),
        )
    }

    /// Cleans up what interrupted deliveries left at the destinations that answer
    /// (blocking): S3 multipart uploads left open, a directory's temporary files.
    fn sweep(&self) -> StoreResult<()> {
        for p in self.store.read()?.pipes()? {
            // A directory's staging area is one small read; S3 is asked only about the
            // multipart uploads its journal holds.
            let may_have_leftovers = match p.dest {
                Destination::Dir { .. } => true,
                _ => self
                    .journal(&p.id)
                    .is_some_and(|j| !j.leftovers().is_empty()),
            };
            if !may_have_leftovers || self.offline_until(&p.id).is_some() {
                continue;
            }
            match self.sink(&p).and_then(|s| s.sweep()) {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "pipe {}: cleaned up {n} leftover(s) of interrupted deliveries at the destination",
                    p.id
                ),
                Err(e) => log::warn!(
                    "pipe {}: cleaning up after interrupted deliveries: {} (tried again in {}s)",
                    p.id,
                    e.message,
                    SWEEP_EVERY.as_secs()
                ),
            }
        }
        Ok(())
    }
}
