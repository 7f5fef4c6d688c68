//! The forwarder's side of the outbox: claiming due ops, settling a batch of outcomes
//! in one transaction (done, retry later, or park with a reason), unparking, and
//! releasing the claims a crash left.

use super::*;
use crate::store::events::{Event, Kind};
use crate::vfs::VPath;

impl Writer {
    /// Claims up to `limit` ready ops of `pipe` due by `now_ms`, oldest due first:
    /// coalescing leaves them alone until they are settled.
    pub fn claim_ready(&self, pipe: &str, now_ms: u64, limit: usize) -> Result<Vec<Op>> {
        let ids = self.ready(pipe, now_ms, limit)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut op = self.existing_op(id)?;
            self.set_ready(&op, false)?;
            op.in_flight = true;
            op.attempts += 1;
            self.txn.open_table(IN_FLIGHT)?.insert(id, ())?;
            self.put_op(&op)?;
            out.push(op);
        }
        Ok(out)
    }

    /// Records how deliveries ended, all in this transaction. Returns the spool bodies
    /// that completed puts no longer need (already in `GARBAGE`). An op that is gone
    /// (its Pipe was removed meanwhile) is skipped.
    pub fn settle(&self, outcomes: &[(u64, Outcome)]) -> Result<Vec<String>> {
        let now_ms = crate::clock::now_ms();
        let mut freed = Vec::new();
        for (id, outcome) in outcomes {
            let Some(mut op) = self.op(*id)? else {
                continue;
            };
            match outcome {
                Outcome::Done | Outcome::Delivered { .. } => {
                    let holder = self.put_holder(&op)?;
                    if let (Some(e), Action::Put { mtime, .. }) = (&holder, &mut op.action)
                        && e.mtime != *mtime
                    {
                        // `MFMT` or SFTP `SETSTAT` came while this put was on its way, so
                        // the destination has the old mtime: the same body goes once more.
                        *mtime = e.mtime;
                        self.release(op)?;
                        continue;
                    }
                    let op = self.remove_op(*id)?;
                    if let Action::Put { path, body, .. } = &op.action {
                        if let Some(e) = holder {
                            self.mark_delivered(&op.pipe, path, e)?;
                        }
                        freed.push(body.clone());
                    }
                    self.delivered_event(&op, outcome, now_ms)?;
                }
                Outcome::Retry { due_ms, error } => {
                    op.due_ms = *due_ms;
                    op.last_error = Some(error.clone());
                    self.release(op)?;
                }
                Outcome::Park { reason } => {
                    if op.parked.is_none() {
                        self.parked_event(&op, reason, now_ms)?;
                    }
                    self.park(op, reason)?
                }
                Outcome::Unclaim => self.release(op)?,
            }
        }
        self.discard_bodies(&freed)?;
        Ok(freed)
    }

    /// `upload.delivered` for a put, in the transaction that settles it.
    fn delivered_event(&self, op: &Op, outcome: &Outcome, now_ms: u64) -> Result<()> {
        let Action::Put {
            path,
            size,
            sum,
            sender,
            ..
        } = &op.action
        else {
            return Ok(());
        };
        let (key, etag) = match outcome {
            Outcome::Delivered { key, etag } => (Some(key.clone()), etag.clone()),
            _ => (None, None),
        };
        self.record_event(
            Event {
                sender: Some(sender.clone()),
                pipe: Some(op.pipe.clone()),
                path: Some(path.clone()),
                size: Some(*size),
                crc32c: Some(sum.hex()),
                key,
                etag,
                ..Event::of(Kind::UploadDelivered)
            },
            now_ms,
        )
        .map(|_| ())
    }

    /// `upload.parked` for a put, the first time it is parked.
    fn parked_event(&self, op: &Op, reason: &str, now_ms: u64) -> Result<()> {
        let Action::Put { path, sender, .. } = &op.action else {
            return Ok(());
        };
        self.record_event(
            Event {
                sender: Some(sender.clone()),
                pipe: Some(op.pipe.clone()),
                path: Some(path.clone()),
                reason: Some(reason.to_string()),
                ..Event::of(Kind::UploadParked)
            },
            now_ms,
        )
        .map(|_| ())
    }

    /// The catalog entry at a put's path, if it still holds the put's body (a newer upload
    /// or a delete may have replaced it meanwhile). One read serves both the mtime check
    /// and the marking of a delivery.
    fn put_holder(&self, op: &Op) -> Result<Option<crate::store::catalog::Entry>> {
        let Action::Put { path, body, .. } = &op.action else {
            return Ok(None);
        };
        Ok(self
            .entry(&op.pipe, &VPath::from_normalised(path))?
            .filter(|e| e.body.as_deref() == Some(body.as_str())))
    }

    /// No longer in flight: ready when due.
    fn release(&self, mut op: Op) -> Result<()> {
        self.txn.open_table(IN_FLIGHT)?.remove(op.id)?;
        op.in_flight = false;
        self.set_ready(&op, op.is_ready())?;
        self.put_op(&op)
    }

    fn park(&self, mut op: Op, reason: &str) -> Result<()> {
        self.txn.open_table(IN_FLIGHT)?.remove(op.id)?;
        self.set_ready(&op, false)?;
        let newly = op.parked.is_none();
        op.in_flight = false;
        op.last_error = Some(reason.to_string());
        op.parked = Some(reason.to_string());
        self.txn
            .open_table(PARKED)?
            .insert((op.pipe.as_str(), op.id), ())?;
        if newly {
            self.change_backlog(&op.pipe, |b| b.parked += 1)?;
        }
        self.put_op(&op)
    }

    /// Makes parked or backed-off ops due now: one op, or all of a Pipe's, or all.
    /// Returns how many.
    pub fn unpark(&self, id: Option<u64>, pipe: Option<&str>, now_ms: u64) -> Result<usize> {
        let mut candidates = Vec::new();
        match id {
            Some(i) => candidates.push(self.existing_op(i)?),
            None => {
                let pipes: Vec<String> = match pipe {
                    Some(p) => vec![p.to_string()],
                    None => self.pipes()?.into_iter().map(|p| p.id).collect(),
                };
                for p in &pipes {
                    let parked: Vec<u64> = {
                        let t = self.txn.open_table(PARKED)?;
                        let r = t.range((p.as_str(), 0)..=(p.as_str(), u64::MAX))?;
                        r.map(|row| row.map(|(k, _)| k.value().1))
                            .collect::<std::result::Result<_, _>>()?
                    };
                    let later: Vec<u64> = {
                        let t = self.txn.open_table(READY)?;
                        let r = t.range(
                            (p.as_str(), now_ms + 1, 0)..=(p.as_str(), u64::MAX, u64::MAX),
                        )?;
                        r.map(|row| row.map(|(k, _)| k.value().2))
                            .collect::<std::result::Result<_, _>>()?
                    };
                    for i in parked.into_iter().chain(later) {
                        candidates.push(self.existing_op(i)?);
                    }
                }
            }
        }
        let mut n = 0;
        for mut op in candidates {
            if op.parked.is_none() && op.due_ms <= now_ms {
                continue;
            }
            self.set_ready(&op, false)?;
            if op.parked.take().is_some() {
                self.txn
                    .open_table(PARKED)?
                    .remove((op.pipe.as_str(), op.id))?;
                self.change_backlog(&op.pipe, |b| b.parked = b.parked.saturating_sub(1))?;
            }
            op.due_ms = now_ms;
            self.set_ready(&op, op.is_ready())?;
            self.put_op(&op)?;
            n += 1;
        }
        Ok(n)
    }

    /// At start-up: nothing is in flight any more. O(ops that were in flight).
    pub fn release_claims(&self) -> Result<usize> {
        let ids: Vec<u64> = {
            let mut t = self.txn.open_table(IN_FLIGHT)?;
            t.extract_from_if(0..=u64::MAX, |_, _| true)?
                .map(|row| row.map(|(k, _)| k.value()))
                .collect::<std::result::Result<_, _>>()?
        };
        for id in &ids {
            if let Some(mut op) = self.op(*id)? {
                op.in_flight = false;
                self.set_ready(&op, op.is_ready())?;
                self.put_op(&op)?;
            }
        }
        Ok(ids.len())
    }
}
