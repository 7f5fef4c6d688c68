//! Who may deliver now: the deliveries each Pipe has claimed and is running
//! ([`Running`]), and from them how many more it may claim and start, offline Pipes
//! getting only their probe and uploads keeping the larger share while devices send.

use std::collections::HashMap;
use std::time::Duration;

use super::{Forwarder, INGEST_WINDOW_MS, claims};
use crate::backoff;
use crate::store::{Pipe, Result as StoreResult, View};

/// Ops claimed and not settled, and deliveries running now, per Pipe.
#[derive(Default, Clone)]
pub(super) struct Running {
    pub(super) per_pipe: HashMap<String, Count>,
    pub(super) claimed: usize,
    pub(super) active: usize,
}

#[derive(Default, Clone, Copy)]
pub(super) struct Count {
    /// Claimed: running, queued, or on their way to disk.
    pub(super) claimed: usize,
    /// Delivering now.
    pub(super) active: usize,
}

impl Running {
    pub(super) fn count(&mut self, pipe: &str) -> &mut Count {
        self.per_pipe.entry(pipe.to_string()).or_default()
    }

    pub(super) fn claimed(&mut self, pipe: &str) {
        self.count(pipe).claimed += 1;
        self.claimed += 1;
    }

    pub(super) fn started(&mut self, pipe: &str) {
        self.count(pipe).active += 1;
        self.active += 1;
    }

    /// A claim ended: delivered or not, or given back unstarted.
    pub(super) fn released(&mut self, pipe: &str, was_active: bool) {
        let c = self.count(pipe);
        c.claimed = c.claimed.saturating_sub(1);
        self.claimed = self.claimed.saturating_sub(1);
        if was_active {
            let c = self.count(pipe);
            c.active = c.active.saturating_sub(1);
            self.active = self.active.saturating_sub(1);
        }
    }

    pub(super) fn of(&self, pipe: &str) -> Count {
        self.per_pipe.get(pipe).copied().unwrap_or_default()
    }
}

impl Forwarder {
    /// How many deliveries `pipe` may run at once now. Uploads come first: while devices
    /// are uploading, the backlog drains with a quarter of the connections (at least one),
    /// so the disk and the CPU are theirs before the destination's; it never stops.
    pub(super) fn parallel_now(&self, pipe: &Pipe, now: u64) -> usize {
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
    pub(super) fn room(&self, pipe: &Pipe, running: &Running, now: u64) -> usize {
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
    pub(super) fn may_start(&self, pipe: &Pipe, running: &Running, now: u64) -> bool {
        let active = running.of(&pipe.id).active;
        let slot = match self.offline_until(&pipe.id) {
            Some(until) => backoff::due(until, now) && active == 0,
            None => active < self.parallel_now(pipe, now),
        };
        slot && running.active < self.config.max_parallel
    }

    /// How long the loop may sleep: until the earliest due op of a Pipe with room (by the
    /// same rule as [`Forwarder::room`], or a Pipe without room would wake it at once, again
    /// and again), or an offline Pipe's probe time; at most a second.
    pub(super) fn wait(&self, v: &impl View, running: &Running, now: u64) -> StoreResult<Duration> {
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
