//! Broken uploads kept for resumption have their own bound, so one flaky device cannot
//! fill the spool with them and lock every other sender out:
//!
//! * all partials together hold at most `partial_max_bytes`, one Sender's at most a
//!   quarter of that; keeping a new partial expires the oldest of that Sender first, then
//!   the oldest of anyone (a partial being resumed right now is never touched);
//! * when a complete upload needs room under `--spool-max-bytes`, the oldest partials
//!   make room for it before it is refused;
//! * the refusal says what holds the space: work waiting for delivery, or partials.
//!
//! The choices are pure functions over the list of partials (oldest first by expiry);
//! [`Spool`] applies them in one write transaction.

use crate::store::events::{Event, Kind};
use std::collections::HashMap;

use super::{Error, Spool};
use crate::clock::now_secs;
use crate::store::View;
use crate::store::partials::Partial;
use crate::vfs::VPath;

/// A partial as the store lists it: (Pipe, path, record).
pub type Listed = (String, String, Partial);

/// Bounds for partials, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: u64,
    pub per_sender: u64,
}

impl Caps {
    /// A quarter of `--spool-max-bytes` when there is one, else 4 GiB; a Sender gets a
    /// quarter of that.
    pub fn from_limits(max_bytes: u64, partial_max_bytes: u64) -> Caps {
        let total = if partial_max_bytes > 0 {
            partial_max_bytes
        } else if max_bytes > 0 {
            max_bytes / 4
        } else {
            4 << 30
        };
        Caps {
            total,
            per_sender: (total / 4).max(1),
        }
    }
}

/// Which partials (indexes into `listed`) to expire so that a new one of `size` bytes from
/// `sender` at (pipe, path) fits `caps`, or `None` if it cannot. The partial it replaces
/// (the same Pipe and path) does not count.
pub fn to_keep(
    listed: &[Listed],
    busy: impl Fn(&str) -> bool,
    at: (&str, &str),
    sender: &str,
    size: u64,
    caps: Caps,
) -> Option<Vec<usize>> {
    if size > caps.per_sender {
        return None;
    }
    let mut order: Vec<usize> = (0..listed.len())
        .filter(|&i| (listed[i].0.as_str(), listed[i].1.as_str()) != at)
        .collect();
    order.sort_by_key(|&i| listed[i].2.expires);
    let mut sender_bytes: u64 = order
        .iter()
        .filter(|&&i| listed[i].2.sender == sender)
        .map(|&i| listed[i].2.size)
        .sum();
    let mut total: u64 = order.iter().map(|&i| listed[i].2.size).sum();
    let mut out = Vec::new();
    for &i in &order {
        if sender_bytes + size <= caps.per_sender {
            break;
        }
        let p = &listed[i].2;
        if p.sender == sender && !busy(&p.body) {
            out.push(i);
            sender_bytes -= p.size;
            total -= p.size;
        }
    }
    if sender_bytes + size > caps.per_sender {
        return None;
    }
    for &i in &order {
        if total + size <= caps.total {
            break;
        }
        let p = &listed[i].2;
        if !out.contains(&i) && !busy(&p.body) {
            out.push(i);
            total -= p.size;
        }
    }
    (total + size <= caps.total).then_some(out)
}

/// The oldest partials (indexes) whose bytes free at least `need`, as many as there are.
pub fn to_free(listed: &[Listed], busy: impl Fn(&str) -> bool, need: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..listed.len())
        .filter(|&i| !busy(&listed[i].2.body))
        .collect();
    order.sort_by_key(|&i| listed[i].2.expires);
    let mut freed = 0;
    order
        .into_iter()
        .take_while(|&i| {
            let more = freed < need;
            freed += listed[i].2.size;
            more
        })
        .collect()
}

impl Spool {
    fn partial_caps(&self) -> Caps {
        Caps::from_limits(self.limits.max_bytes, self.limits.partial_max_bytes)
    }

    fn is_busy(&self, id: &str) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// Records `p` as the partial of (pipe, path), expiring older partials to keep within
    /// the bounds, all in one transaction (blocking). `Ok(false)`: it cannot be kept (it
    /// alone is over the bound); nothing changed. The bodies of expired partials (and of a
    /// partial `p` replaces) are deleted after the commit.
    pub(super) fn record_partial(
        &self,
        pipe: &str,
        path: &VPath,
        p: &Partial,
        why: &str,
    ) -> Result<bool, Error> {
        let caps = self.partial_caps();
        let outcome = self.store.write(|w| {
            let listed = w.partials()?;
            let Some(expire) = to_keep(
                &listed,
                |id| id != p.body && self.is_busy(id),
                (pipe, path.as_str()),
                &p.sender,
                p.size,
                caps,
            ) else {
                return Ok(None);
            };
            let mut gone = Vec::new();
            for i in expire {
                let (pp, path, old) = &listed[i];
                w.take_partial(pp, &VPath::from_normalised(path))?;
                gone.push(old.body.clone());
            }
            if let Some(old) = w.put_partial(pipe, path, p)? {
                gone.push(old);
            }
            w.record_event(
                Event {
                    sender: Some(p.sender.clone()),
                    pipe: Some(pipe.to_string()),
                    path: Some(path.to_string()),
                    size: Some(p.size),
                    reason: Some(why.to_string()),
                    ..Event::of(Kind::UploadBroken)
                },
                crate::clock::now_ms(),
            )?;
            Ok(Some(gone))
        })?;
        match outcome {
            Some(gone) => {
                if !gone.is_empty() {
                    log::info!(
                        "expired {} older broken upload(s) to keep the one of {path}",
                        gone.len()
                    );
                }
                self.remove_bodies(&gone);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Makes room for `more` bytes under `--spool-max-bytes` by expiring the oldest
    /// partials (blocking); the error says what holds the space when there is none.
    pub fn make_room(&self, more: u64) -> Result<(), Error> {
        if self.check_quota(more).is_ok() {
            return Ok(());
        }
        let max = self.limits.max_bytes;
        let need = (self.used() + more).saturating_sub(max);
        let gone = self.store.write(|w| {
            let listed = w.partials()?;
            let mut gone = Vec::new();
            for i in to_free(&listed, |id| self.is_busy(id), need) {
                let (pipe, path, p) = &listed[i];
                w.take_partial(pipe, &VPath::from_normalised(path))?;
                gone.push(p.body.clone());
            }
            Ok(gone)
        })?;
        if !gone.is_empty() {
            log::info!(
                "expired {} broken upload(s) kept for resumption to make room for a complete one",
                gone.len()
            );
            self.remove_bodies(&gone);
        }
        if self.check_quota(more).is_ok() {
            return Ok(());
        }
        let partials: u64 = self
            .store
            .read()?
            .partials()?
            .iter()
            .map(|(_, _, p)| p.size)
            .sum();
        let used = self.used();
        Err(Error::Full(format!(
            "the gateway's spool is full ({} of {max} bytes: {} waiting for delivery, {partials} in broken uploads being resumed): try again later",
            used,
            used.saturating_sub(partials)
        )))
    }

    /// Deletes expired partials. Blocking; the daemon runs it now and then. A partial
    /// resumed (or replaced) since the list was read is left alone: the decision is made
    /// again inside the transaction that removes the record.
    pub fn expire_partials(&self) -> Result<usize, Error> {
        let now = now_secs();
        let expired: Vec<_> = self
            .store
            .read()?
            .partials()?
            .into_iter()
            .filter(|(_, _, p)| p.expires <= now)
            .collect();
        let mut n = 0;
        for (pipe, path, p) in &expired {
            if self.claim(&p.body).is_err() {
                continue; // being resumed right now
            }
            let path = VPath::from_normalised(path);
            let taken = self.store.write(|w| match w.partial(pipe, &path)? {
                Some(cur) if cur.body == p.body && cur.expires <= now => {
                    w.take_partial(pipe, &path).map(|_| true)
                }
                _ => Ok(false),
            });
            if matches!(taken, Ok(true)) {
                self.remove_bodies(std::slice::from_ref(&p.body));
                n += 1;
            }
            self.release(&p.body);
            taken?;
        }
        Ok(n)
    }
}

/// Bytes of partials per Sender, for status.
pub fn per_sender(listed: &[Listed]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (_, _, p) in listed {
        *out.entry(p.sender.clone()).or_default() += p.size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(sender: &str, size: u64, expires: u64, body: &str) -> Listed {
        (
            "pipe".into(),
            format!("/{body}"),
            Partial {
                body: body.into(),
                size,
                expires,
                sender: sender.into(),
            },
        )
    }

    const CAPS: Caps = Caps {
        total: 1000,
        per_sender: 250,
    };

    #[test]
    fn a_flaky_sender_expires_its_own_oldest_first() {
        let listed = vec![
            p("flaky", 100, 1, "a"),
            p("other", 100, 2, "b"),
            p("flaky", 100, 3, "c"),
        ];
        let out = to_keep(&listed, |_| false, ("pipe", "/new"), "flaky", 100, CAPS).unwrap();
        assert_eq!(
            out,
            vec![0],
            "its own oldest, not the other sender's older one"
        );
        assert_eq!(
            to_keep(&listed, |_| false, ("pipe", "/new"), "flaky", 300, CAPS),
            None,
            "alone over a sender's bound"
        );
        // A partial being resumed is never expired: then the new one is not kept.
        assert_eq!(
            to_keep(
                &listed,
                |b| b == "a" || b == "c",
                ("pipe", "/new"),
                "flaky",
                100,
                CAPS
            ),
            None
        );
        // The partial being replaced does not count.
        let out = to_keep(&listed, |_| false, ("pipe", "/a"), "flaky", 150, CAPS).unwrap();
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn the_total_bound_expires_anyones_oldest() {
        let listed: Vec<Listed> = (0..10)
            .map(|i| p(&format!("s{i}"), 100, i, &format!("b{i}")))
            .collect();
        let out = to_keep(&listed, |_| false, ("pipe", "/new"), "s0", 200, CAPS).unwrap();
        // s0's own first (100 + 200 > 250), then the oldest of anyone until 1000 holds.
        assert_eq!(out, vec![0, 1]);
    }

    #[test]
    fn room_for_a_complete_upload_comes_from_the_oldest() {
        let listed = vec![p("a", 100, 5, "x"), p("b", 300, 1, "y"), p("c", 50, 3, "z")];
        assert_eq!(to_free(&listed, |_| false, 320), vec![1, 2]);
        assert_eq!(to_free(&listed, |b| b == "y", 100), vec![2, 0]);
        assert!(to_free(&listed, |_| false, 0).is_empty());
    }
}
