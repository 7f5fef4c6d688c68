//! One delivery: the blocking call to the Pipe's sink, and what the ended deliveries
//! become (outcomes to record, health, log lines).

use super::slots::Running;
use super::*;
use crate::backoff;

/// What a delivery that succeeded did: the bytes sent and, for a put, where the object
/// landed and its ETag (for the `upload.delivered` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sent {
    pub(super) bytes: u64,
    pub(super) put: Option<(String, Option<String>)>,
}

impl Sent {
    fn other() -> Sent {
        Sent {
            bytes: 0,
            put: None,
        }
    }
}

impl Forwarder {
    /// Turns ended deliveries into outcomes to record, updating health and logs.
    pub(super) fn outcomes(
        &self,
        ended: &mut Vec<Ended>,
        running: &mut Running,
    ) -> Vec<(u64, Outcome)> {
        let now = now_ms();
        let mut out = Vec::with_capacity(ended.len());
        for (op, result) in ended.drain(..) {
            running.released(&op.pipe, true);
            let outcome = match result {
                Ok(sent) => {
                    self.delivered(&op, sent.bytes);
                    match sent.put {
                        Some((key, etag)) => Outcome::Delivered { key, etag },
                        None => Outcome::Done,
                    }
                }
                Err(e) if e.is_transient() => self.will_retry(&op, e, now),
                Err(e) => self.parked(&op, e),
            };
            out.push((op.id, outcome));
        }
        out
    }

    /// A transient failure: the op is tried again after the Pipe's backoff, and the Pipe
    /// is offline until then (said once when it goes offline; its probes after that are
    /// in `status` and at debug level, not a warning a second).
    fn will_retry(&self, op: &Op, e: SinkError, now: u64) -> Outcome {
        let (mut failures, mut wait, mut due_ms) = (0, Duration::ZERO, now);
        self.update(&op.pipe, |h| {
            h.failures = h.failures.saturating_add(1);
            failures = h.failures;
            wait = backoff::delay(op.attempts.max(failures), backoff::jitter());
            due_ms = now + wait.as_millis() as u64;
            h.offline_until_ms = Some(due_ms);
            h.last_error = Some(e.message.clone());
            h.failed_ops += 1;
        });
        let level = match failures {
            1 => log::Level::Warn,
            _ => log::Level::Debug,
        };
        log::log!(
            level,
            "pipe {} offline: op {} {} failed ({}); retry in {:.1}s",
            op.pipe,
            op.id,
            op.action.name(),
            e.message,
            wait.as_secs_f64()
        );
        Outcome::Retry {
            due_ms,
            error: e.message,
        }
    }

    /// A permanent failure: the op is parked with the sentence until someone retries it.
    fn parked(&self, op: &Op, e: SinkError) -> Outcome {
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
            if h.failures > 0 {
                log::info!(
                    "pipe {} back online after {} failed attempts",
                    op.pipe,
                    h.failures
                );
            }
            h.failures = 0;
            h.offline_until_ms = None;
            h.last_success = Some(secs);
            h.delivered_ops += 1;
            h.delivered_bytes += bytes;
        });
    }

    /// The blocking part: one call to the sink.
    pub(super) fn execute(&self, pipe: &Pipe, op: &Op) -> Result<Sent, SinkError> {
        let sink = self.sink(pipe)?;
        let prefix = sink::prefix(pipe);
        let key = |p: &str| VPath::from_normalised(p).key(prefix);
        match &op.action {
            Action::Put {
                path,
                body,
                size,
                sum,
                mtime,
                sender,
            } => {
                let missing = || {
                    SinkError::permanent(
                        "the spool body is missing from spool/ready (deleted by hand?)",
                    )
                };
                let _reading = self.spool.reading(body);
                let file = self.spool.body_path(body).ok_or_else(missing)?;
                let meta = Meta {
                    sender: sender.clone(),
                    pipe: pipe.id.clone(),
                    gateway: self.config.gateway.clone(),
                    mtime: *mtime,
                    only_new: pipe.overwrite != crate::store::namespace::Overwrite::Replace,
                    upload: body.clone(),
                };
                let put = |meta: &Meta| match sink.put(&key(path), &file, *size, sum, meta) {
                    // Committed a moment ago: the body was still in tmp/ when the delivery
                    // began, and the commit thread has moved it into ready/ since.
                    Err(_) if !file.exists() => {
                        let moved = self.spool.body_path(body).ok_or_else(missing)?;
                        sink.put(&key(path), &moved, *size, sum, meta)
                    }
                    done => done,
                };
                let etag = match put(&meta) {
                    // What stands there is this name's earlier version, sent by this
                    // gateway (a put tried, then replaced by a resumed upload): the
                    // policy keeps other objects, not the file's own older bytes.
                    Err(e) if e.exists && self.sent_before(&pipe.id, path) => put(&Meta {
                        only_new: false,
                        ..meta.clone()
                    })?,
                    done => done?,
                };
                Ok(Sent {
                    bytes: *size,
                    put: Some((key(path), etag)),
                })
            }
            Action::Delete { path } => sink.delete(&key(path)).map(|_| Sent::other()),
            Action::Rename { from, to } => sink.rename(&key(from), &key(to)).map(|_| Sent::other()),
            Action::MkDir { path } => sink.mkdir(&key(path)).map(|_| Sent::other()),
            Action::RmDir { path } => sink.rmdir(&key(path)).map(|_| Sent::other()),
        }
    }

    /// Whether the catalog says an earlier version of `path` was sent to the destination
    /// by this gateway (and the name not forgotten since).
    fn sent_before(&self, pipe: &str, path: &str) -> bool {
        let entry = self
            .spool
            .store()
            .read()
            .and_then(|r| r.entry(pipe, &VPath::from_normalised(path)));
        matches!(entry, Ok(Some(e)) if e.remote)
    }
}
