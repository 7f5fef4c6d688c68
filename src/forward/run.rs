//! The forwarder's loop, on the executor: take the deliveries that ended, decide whether
//! this round records outcomes, run the round off the executor, start what it claimed,
//! then sleep until a delivery ends, a commit wakes it, or something falls due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};

use super::round::{Feed, Round};
use super::slots::Running;
use super::{
    Ended, Forwarder, INGEST_WINDOW_MS, SETTLE_EVERY, SETTLE_EVERY_INGESTING, SETTLE_MAX,
    SWEEP_EVERY, claims, claims_timer,
};
use crate::clock::now_ms;
use crate::store::Pipe;
use crate::store::outbox::{Op, Outcome};

/// What the loop carries from one round to the next.
struct Loop {
    running: Running,
    done_tx: Sender<Ended>,
    done_rx: Receiver<Ended>,
    /// Deliveries that ended and are not yet turned into outcomes.
    ended: Vec<Ended>,
    /// Outcomes not yet recorded, and since when the oldest has waited.
    pending: Vec<(u64, Outcome)>,
    pending_since: Instant,
    /// Claims made and not started (see [`claims`]).
    held: claims::Held,
    failing: crate::repeated::Repeated,
}

/// What this round is asked to do.
struct Plan {
    /// Record the pending outcomes.
    settle: bool,
    /// How long until they are due anyway.
    settle_in: Duration,
    feed: Feed,
}

impl Forwarder {
    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        self.spawn_sweeper();
        let (done_tx, done_rx) = smol::channel::unbounded::<Ended>();
        let mut l = Loop {
            running: Running::default(),
            done_tx,
            done_rx,
            ended: Vec::new(),
            pending: Vec::new(),
            pending_since: Instant::now(),
            held: claims::Held::default(),
            failing: Default::default(),
        };
        loop {
            self.take_ended(&mut l);
            let plan = self.plan(&l);
            let me = self.clone();
            let busy = l.running.clone();
            // Kept until recorded: a round that fails (a full disk) must not lose them.
            let outcomes = l.pending.clone();
            // One trip off the executor per round: the reads, the write, the deletions.
            let round =
                smol::unblock(move || me.round(&outcomes, plan.settle, &plan.feed, &busy)).await;
            let wait = match round {
                Ok(round) => self.after_round(&mut l, round, plan.settle_in),
                Err(e) => {
                    l.failing.error(format!(
                        "forwarder: {e}; trying again every second, {} outcome(s) waiting to be recorded",
                        l.pending.len()
                    ));
                    Duration::from_secs(1)
                }
            };
            self.sleep(&mut l, wait).await;
        }
    }

    /// Every [`SWEEP_EVERY`]: idle destinations let their connections go, and what
    /// interrupted deliveries left at the destinations is cleaned up.
    fn spawn_sweeper(self: &Arc<Self>) {
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
    }

    /// Turns ended deliveries into pending outcomes, lets go of claims a reopened
    /// database lost, and starts the queued claims that now have a slot.
    fn take_ended(self: &Arc<Self>, l: &mut Loop) {
        let new = self.outcomes(&mut l.ended, &mut l.running);
        if l.pending.is_empty() {
            l.pending_since = Instant::now();
        }
        l.pending.extend(new);
        for (pipe, op) in l.held.sync(&self.store) {
            log::debug!(
                "pipe {}: op {} lost its claim to a reopened database",
                pipe.id,
                op.id
            );
            l.running.released(&pipe.id, false);
        }
        self.start_queued(l);
    }

    /// Group commit: outcomes are recorded every [`SETTLE_EVERY`] (or [`SETTLE_MAX`] of
    /// them), or at once when nothing else runs; claims go on in between. While devices
    /// upload, their commits come first: fewer of ours. A Pipe that could deliver and has
    /// nothing to start gets a durable commit now (with nobody uploading), or once claims
    /// have waited [`claims::WAIT`] for an upload's.
    fn plan(&self, l: &Loop) -> Plan {
        let ingesting = self.spool.ingesting(now_ms(), INGEST_WINDOW_MS);
        let every = if ingesting {
            SETTLE_EVERY_INGESTING
        } else {
            SETTLE_EVERY
        };
        let settle_in = every.saturating_sub(l.pending_since.elapsed());
        let settle = !l.pending.is_empty()
            && (settle_in.is_zero() || l.pending.len() >= SETTLE_MAX || l.running.active == 0);
        Plan {
            settle,
            settle_in,
            feed: Feed {
                allowed: !ingesting || l.held.waited().is_some_and(|w| w >= claims::WAIT),
                queued: l.held.queued_pipes(),
                unsynced: l.held.unsynced_pipes(),
            },
        }
    }

    /// Takes in what a round did: recorded outcomes leave `pending`, its claims are read
    /// ahead and held, those with a slot start. Returns how long the loop may sleep.
    fn after_round(self: &Arc<Self>, l: &mut Loop, round: Round, settle_in: Duration) -> Duration {
        l.failing.clear();
        if round.settled {
            l.pending.clear();
            l.pending_since = Instant::now();
        }
        let mut bodies = Vec::new();
        for (_, op) in &round.claimed {
            l.running.claimed(&op.pipe);
            bodies.extend(op.action.body().map(str::to_string));
        }
        self.prefetch.ask(bodies);
        l.held.add(round.unsynced, round.claimed);
        self.start_queued(l);
        self.awaiting_disk
            .store(l.held.any_unsynced(), std::sync::atomic::Ordering::SeqCst);
        let mut wait = round.wait;
        if !l.pending.is_empty() {
            wait = wait.min(settle_in);
        }
        if let Some(w) = claims_timer(l.held.waited()) {
            wait = wait.min(w);
        }
        wait
    }

    /// Waits for a delivery to end, a wake-up (a durable commit that held claims wait
    /// for, among others), or `wait`; collects every delivery that ended meanwhile.
    async fn sleep(&self, l: &mut Loop, wait: Duration) {
        let first = smol::future::or(async { l.done_rx.recv().await.ok() }, async {
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
        .await;
        l.ended.extend(first);
        while let Ok(e) = l.done_rx.try_recv() {
            l.ended.push(e);
        }
    }

    /// Starts the queued claims that have a slot. An offline Pipe's queued claims go back
    /// to the outbox (as outcomes in `pending`) until its probe time, so they do not sit
    /// claimed through an outage.
    fn start_queued(self: &Arc<Self>, l: &mut Loop) {
        let now = now_ms();
        for pipe in l.held.queued_pipes() {
            if self.offline_until(&pipe).is_some_and(|until| until > now) {
                for (_, op) in l.held.take_queued(&pipe) {
                    l.running.released(&pipe, false);
                    l.pending.push((op.id, Outcome::Unclaim));
                }
                continue;
            }
            while let Some((p, op)) = l.held.next(&pipe) {
                if !self.may_start(&p, &l.running, now) {
                    l.held.put_back((p, op));
                    break;
                }
                l.running.started(&pipe);
                self.start(p, op, &l.done_tx);
            }
        }
    }

    /// Starts a claimed op's delivery on a delivery thread; its end is sent to `done`.
    fn start(self: &Arc<Self>, pipe: Pipe, op: Op, done: &Sender<Ended>) {
        let (me, done) = (self.clone(), done.clone());
        self.workers.run(move || {
            let result = me.execute(&pipe, &op);
            let _ = done.send_blocking((op, result));
        });
    }
}
