//! One round of the forwarder's loop, blocking: a single write transaction that records
//! the outcomes due and claims what every Pipe has room for (see [`crate::forward`]).

use std::time::Duration;

use super::slots::Running;
use super::{Forwarder, claims};
use crate::clock::now_ms;
use crate::store::outbox::Outcome;
use crate::store::{Result as StoreResult, View, Writer};

/// What one round claimed, and how long the loop may then sleep.
pub(super) struct Round {
    pub(super) claimed: Vec<claims::Claimed>,
    pub(super) wait: Duration,
    /// The outcomes passed in are recorded.
    pub(super) settled: bool,
    /// The round's commit was not durable: its claims wait for one that is.
    pub(super) unsynced: Option<crate::store::Unsynced>,
}

/// What a round needs to know of the claims the loop holds.
pub(super) struct Feed {
    /// A durable commit may be made for a hungry Pipe.
    pub(super) allowed: bool,
    /// Pipes with claims on disk, ready to start.
    pub(super) queued: Vec<String>,
    /// Pipes with claims on their way to disk.
    pub(super) unsynced: Vec<String>,
}

impl Forwarder {
    /// One round, blocking: claim what every Pipe has room for and, if the round is
    /// durable, record `outcomes` in the same transaction; then delete the bodies it
    /// freed. It is durable when outcomes are due to be recorded (`settle`) or a Pipe is
    /// hungry (it could start a delivery and has no claim on disk to start) and has claims
    /// on their way to disk or ops to claim, if `feed` allows. Otherwise its
    /// claims wait for a later durable commit (see [`claims`]). Without anything to write,
    /// a read snapshot decides first whether there is anything to claim.
    pub(super) fn round(
        &self,
        outcomes: &[(u64, Outcome)],
        settle: bool,
        feed: &Feed,
        running: &Running,
    ) -> StoreResult<Round> {
        let now = now_ms();
        let collected = self.spool.take_collected();
        let r = self.store.read()?;
        let (durable, due) = self.decide(&r, settle, feed, running, now)?;
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

    /// Whether this round's commit must be durable, and whether any Pipe with room has
    /// an op due; from a read snapshot, so a round with nothing to do writes nothing.
    fn decide(
        &self,
        r: &impl View,
        settle: bool,
        feed: &Feed,
        running: &Running,
        now: u64,
    ) -> StoreResult<(bool, bool)> {
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
        Ok((durable, due))
    }
}
