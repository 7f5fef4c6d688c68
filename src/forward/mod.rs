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
//! hammered, a live one is used again within [`backoff::CAP`], and other Pipes are not
//! held up. A permanent failure parks the op with its reason until `spool retry` or a
//! changed Pipe.

pub mod backoff;
mod claims;
mod deliver;
pub mod dir;
mod health;
pub mod journal;
mod prefetch;
pub mod s3;
pub mod sink;
#[cfg(test)]
mod tests;
mod workers;

pub use health::Health;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::{now_ms, now_secs};
use crate::spool::Spool;
use crate::store::destination::Destination;
use crate::store::outbox::{Action, Op, Outcome};
use crate::store::{Pipe, Result as StoreResult, Store, View, Writer};
use crate::vfs::VPath;
use sink::{Meta, Sink, SinkError};

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
type Ended = (Op, Result<u64, SinkError>);

/// What one round claimed, and how long the loop may then sleep.
struct Round {
    claimed: Vec<claims::Claimed>,
    wait: Duration,
    /// The outcomes passed in are recorded.
    settled: bool,
    /// The round's commit was not durable: its claims wait for one that is.
    unsynced: Option<crate::store::Unsynced>,
}

/// What a round needs to know of the claims the loop holds.
struct Feed {
    /// A durable commit may be made for a hungry Pipe.
    allowed: bool,
    /// Pipes with claims on disk, ready to start.
    queued: Vec<String>,
    /// Pipes with claims on their way to disk.
    unsynced: Vec<String>,
}

/// Ops claimed and not settled, and deliveries running now, per Pipe.
#[derive(Default, Clone)]
struct Running {
    per_pipe: HashMap<String, Count>,
    claimed: usize,
    active: usize,
}

#[derive(Default, Clone, Copy)]
struct Count {
    /// Claimed: running, queued, or on their way to disk.
    claimed: usize,
    /// Delivering now.
    active: usize,
}

impl Running {
    fn count(&mut self, pipe: &str) -> &mut Count {
        self.per_pipe.entry(pipe.to_string()).or_default()
    }

    fn claimed(&mut self, pipe: &str) {
        self.count(pipe).claimed += 1;
        self.claimed += 1;
    }

    fn started(&mut self, pipe: &str) {
        self.count(pipe).active += 1;
        self.active += 1;
    }

    /// A claim ended: delivered or not, or given back unstarted.
    fn released(&mut self, pipe: &str, was_active: bool) {
        let c = self.count(pipe);
        c.claimed = c.claimed.saturating_sub(1);
        self.claimed = self.claimed.saturating_sub(1);
        if was_active {
            let c = self.count(pipe);
            c.active = c.active.saturating_sub(1);
            self.active = self.active.saturating_sub(1);
        }
    }

    fn of(&self, pipe: &str) -> Count {
        self.per_pipe.get(pipe).copied().unwrap_or_default()
    }
}

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
        let s: Arc<dyn Sink> = Arc::from(sink::for_pipe(pipe, self.journal(&pipe.id))?);
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

    /// How many deliveries `pipe` may run at once now. Uploads come first: while devices
    /// are uploading, the backlog drains with a quarter of the connections (at least one),
    /// so the disk and the CPU are theirs before the destination's; it never stops.
    fn parallel_now(&self, pipe: &Pipe, now: u64) -> usize {
        if self.spool.ingesting(now, INGEST_WINDOW_MS) {
            pipe.parallel().div_ceil(4)
        } else {
            pipe.parallel()
        }
    }

    /// How many more ops `pipe` may claim now: none while it is offline and its retry time
    /// has not come or its probe is still out, one (the probe) after that; online,
    /// [`claims::DEPTH`] per delivery slot. While devices upload, claims are made half a
    /// share at a time: each claim is a write transaction, which waits for theirs and
    /// delays them (a claim per ended delivery made 300 of them a second).
    fn room(&self, pipe: &Pipe, running: &Running, now: u64) -> usize {
        let claimed = running.of(&pipe.id).claimed;
        let room = match self.offline_until(&pipe.id) {
            Some(until) if !backoff::due(until, now) || claimed > 0 => 0,
            Some(_) => 1,
            None => {
                let share = self.parallel_now(pipe, now) * claims::DEPTH;
                let room = share.saturating_sub(claimed);
                if self.spool.ingesting(now, INGEST_WINDOW_MS) && room < share / 2 {
                    0
                } else {
                    room
                }
            }
        };
        room.min((self.config.max_parallel * claims::DEPTH).saturating_sub(running.claimed))
    }

    /// Whether `pipe` may start one more delivery now (offline: only the probe).
    fn may_start(&self, pipe: &Pipe, running: &Running, now: u64) -> bool {
        let active = running.of(&pipe.id).active;
        let slot = match self.offline_until(&pipe.id) {
            Some(until) => backoff::due(until, now) && active == 0,
            None => active < self.parallel_now(pipe, now),
        };
        slot && running.active < self.config.max_parallel
    }

    /// Starts the queued claims that have a slot. An offline Pipe's queued claims go back
    /// to the outbox (as outcomes in `pending`) until its probe time, so they do not sit
    /// claimed through an outage.
    fn start_queued(
        self: &Arc<Self>,
        held: &mut claims::Held,
        running: &mut Running,
        pending: &mut Vec<(u64, Outcome)>,
        done: &smol::channel::Sender<Ended>,
    ) {
        let now = now_ms();
        for pipe in held.queued_pipes() {
            if self.offline_until(&pipe).is_some_and(|until| until > now) {
                for (_, op) in held.take_queued(&pipe) {
                    running.released(&pipe, false);
                    pending.push((op.id, Outcome::Unclaim));
                }
                continue;
            }
            while let Some((p, op)) = held.next(&pipe) {
                if !self.may_start(&p, running, now) {
                    held.put_back((p, op));
                    break;
                }
                running.started(&pipe);
                self.start(p, op, done);
            }
        }
    }

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let me = self.clone();
        smol::spawn(async move {
            loop {
                let m = me.clone();
                let swept = smol::unblock(move || {
                    m.rest_idle_sinks();
                    m.sweep()
                });
                if let Err(e) = swept.await {
                    log::warn!("cleaning up after interrupted deliveries: {e}");
                }
                smol::Timer::after(SWEEP_EVERY).await;
            }
        })
        .detach();
        let mut running = Running::default();
        let (done_tx, done_rx) = smol::channel::unbounded::<Ended>();
        let mut ended: Vec<Ended> = Vec::new();
        // Outcomes not yet recorded, and since when the oldest has waited.
        let mut pending: Vec<(u64, Outcome)> = Vec::new();
        let mut pending_since = Instant::now();
        let mut held = claims::Held::default();
        let mut failing = crate::repeated::Repeated::default();
        loop {
            let new = self.outcomes(&mut ended, &mut running);
            if pending.is_empty() {
                pending_since = Instant::now();
            }
            pending.extend(new);
            for (pipe, op) in held.sync(&self.store) {
                log::debug!(
                    "pipe {}: op {} lost its claim to a reopened database",
                    pipe.id,
                    op.id
                );
                running.released(&pipe.id, false);
            }
            self.start_queued(&mut held, &mut running, &mut pending, &done_tx);
            // Group commit: record outcomes every SETTLE_EVERY (or SETTLE_MAX of them), or
            // at once when nothing else is running; claims go on in between.
            // While devices upload, their commits come first: fewer of ours.
            let ingesting = self.spool.ingesting(now_ms(), INGEST_WINDOW_MS);
            let every = if ingesting {
                SETTLE_EVERY_INGESTING
            } else {
                SETTLE_EVERY
            };
            let settle_in = every.saturating_sub(pending_since.elapsed());
            let settle = !pending.is_empty()
                && (settle_in.is_zero() || pending.len() >= SETTLE_MAX || running.active == 0);
            // A Pipe that could deliver and has nothing to start gets a durable commit now
            // (with nobody uploading), or once claims have waited WAIT for an upload's.
            let feed = Feed {
                allowed: !ingesting || held.waited().is_some_and(|w| w >= claims::WAIT),
                queued: held.queued_pipes(),
                unsynced: held.unsynced_pipes(),
            };
            let me = self.clone();
            let busy = running.clone();
            // Kept until recorded: a round that fails (a full disk) must not lose them.
            let outcomes = pending.clone();
            // One trip off the executor per round: the reads, the write, the deletions.
            let round = smol::unblock(move || me.round(&outcomes, settle, &feed, &busy)).await;
            let wait = match round {
                Ok(round) => {
                    failing.clear();
                    if round.settled {
                        pending.clear();
                        pending_since = Instant::now();
                    }
                    let mut bodies = Vec::new();
                    for (_, op) in &round.claimed {
                        running.claimed(&op.pipe);
                        bodies.extend(op.action.body().map(str::to_string));
                    }
                    self.prefetch.ask(bodies);
                    held.add(round.unsynced, round.claimed);
                    self.start_queued(&mut held, &mut running, &mut pending, &done_tx);
                    self.awaiting_disk
                        .store(held.any_unsynced(), std::sync::atomic::Ordering::SeqCst);
                    let mut wait = round.wait;
                    if !pending.is_empty() {
                        wait = wait.min(settle_in);
                    }
                    if let Some(w) = claims_timer(held.waited()) {
                        wait = wait.min(w);
                    }
                    wait
                }
                Err(e) => {
                    failing.error(format!(
                        "forwarder: {e}; trying again every second, {} outcome(s) waiting to be recorded",
                        pending.len()
                    ));
                    Duration::from_secs(1)
                }
            };
            // Wait for a delivery to end, a wake-up (a durable commit that held claims
            // wait for, among others), or the next due time.
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

    /// Starts a claimed op's delivery on a delivery thread; its end is sent to `done`.
    fn start(self: &Arc<Self>, pipe: Pipe, op: Op, done: &smol::channel::Sender<Ended>) {
        let (me, done) = (self.clone(), done.clone());
        self.workers.run(move || {
            let result = me.execute(&pipe, &op);
            let _ = done.send_blocking((op, result));
        });
    }

    /// One round, blocking: claim what every Pipe has room for and, if the round is
    /// durable, record `outcomes` in the same transaction; then delete the bodies it
    /// freed. It is durable when outcomes are due to be recorded (`settle`) or a Pipe is
    /// hungry (it could start a delivery and has no claim on disk to start) and has claims
    /// on their way to disk or ops to claim, if `feed` allows. Otherwise its
    /// claims wait for a later durable commit (see [`claims`]). Without anything to write,
    /// a read snapshot decides first whether there is anything to claim.
    fn round(
        &self,
        outcomes: &[(u64, Outcome)],
        settle: bool,
        feed: &Feed,
        running: &Running,
    ) -> StoreResult<Round> {
        let now = now_ms();
        let collected = self.spool.take_collected();
        let r = self.store.read()?;
        let mut due = false;
        let mut durable = settle;
        for p in r.pipes()? {
            let hungry =
                feed.allowed && self.may_start(&p, running, now) && !feed.queued.contains(&p.id);
            durable |= hungry && feed.unsynced.contains(&p.id);
            if self.room(&p, running, now) > 0
                && r.next_due(&p.id, now)?.is_some_and(|at| at <= now)
            {
                due = true;
                durable |= hungry;
            }
        }
        if !durable && !due && collected.is_empty() {
            return Ok(Round {
                claimed: Vec::new(),
                wait: self.wait(&r, running, now)?,
                settled: false,
                unsynced: None,
            });
        }
        drop(r);
        let outcomes = if durable { outcomes } else { &[] };
        let work = |w: &Writer| {
            w.forget_garbage(&collected)?;
            let freed = w.settle(outcomes)?;
            let mut claimed = Vec::new();
            let mut claimed_now = running.clone();
            for p in w.pipes()? {
                let n = self.room(&p, running, now);
                if n > 0 {
                    for op in w.claim_ready(&p.id, now, n)? {
                        claimed_now.claimed(&p.id);
                        claimed.push((p.clone(), op));
                    }
                }
            }
            let wait = self.wait(w, &claimed_now, now)?;
            Ok((freed, claimed, wait))
        };
        let ((freed, claimed, wait), unsynced) = if durable {
            (self.store.write(work)?, None)
        } else {
            let (r, commit) = self.store.write_volatile(work)?;
            (r, Some(commit))
        };
        if !freed.is_empty() {
            self.spool.collect(&freed);
        }
        for (p, _) in &claimed {
            if self.offline_until(&p.id).is_some() {
                log::info!("pipe {}: probing the destination", p.id);
            }
        }
        Ok(Round {
            claimed,
            wait,
            settled: durable,
            unsynced,
        })
    }

    /// How long the loop may sleep: until the earliest due op of a Pipe with room (by the
    /// same rule as [`Forwarder::room`], or a Pipe without room would wake it at once, again
    /// and again), or an offline Pipe's probe time; at most a second.
    fn wait(&self, v: &impl View, running: &Running, now: u64) -> StoreResult<Duration> {
        let mut earliest: Option<u64> = None;
        for p in v.pipes()? {
            let at = match self.offline_until(&p.id) {
                Some(until) => Some(until),
                None if self.room(&p, running, now) == 0 => None,
                None => v.next_due(&p.id, now)?,
            };
            earliest = match (earliest, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let max = Duration::from_secs(1);
        Ok(earliest.map_or(max, |at| {
            Duration::from_millis(at.saturating_sub(now)).min(max)
        }))
    }
}
