//! Forgetting remembered entries, so the catalog is bounded by configuration and not by
//! uptime (docs/ARCHITECTURE.md, "Bounds").
//!
//! What a Pipe's namespace shows is every file not yet delivered (never forgotten: that
//! is the backlog) plus, for the Pipe's retention window (`--keep-delivered`), delivered
//! files and directories with nothing under them. A gateway-wide cap on remembered
//! entries forgets the oldest first when traffic outruns the window.
//!
//! Times are on the store's steady clock ([`crate::store::Store::steady_ms`]): the time
//! the gateway has run, which a wall clock jumping by years cannot move. A forgotten name
//! behaves as if never uploaded; its object at the destination stays.
//!
//! [`REMEMBERED`] holds (Pipe, since, path) for every entry with `kept_since`; the sweep
//! reads it from the front, so each call costs what it forgets.

use super::*;

/// How long a Pipe remembers delivered files when it does not say (`--keep-delivered`):
/// a day. A camera that lists or `SIZE`s its folder looks at the last minutes or hours,
/// and a technician checking last night's uploads looks back less than a day.
pub const DEFAULT_KEEP_MS: u64 = 24 * 3600 * 1000;

/// Remembered entries the whole gateway keeps at most, by default. Each costs about 210
/// bytes of live pages and up to 350 bytes of state file (`scripts/bench-state`: 1M
/// uploads through the cap left files of 51 and 68 MiB for 200,000), so 150,000 keeps
/// the file under 64 MiB; it is 17 hours of 40 cameras sending every 10 s.
pub const DEFAULT_CAP: u64 = 150_000;

/// What one call of [`Writer::expire`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Entries forgotten.
    pub forgotten: u64,
    /// It stopped at its limit: call again.
    pub more: bool,
}

/// Whether [`Writer::expire`] has anything to do at steady time `now`: an entry past its
/// Pipe's window, or more than `cap` remembered. Reads the front of each Pipe's index.
pub(crate) fn due(v: &impl View, cap: u64, now: u64) -> Result<bool> {
    if remembered(v)? > cap {
        return Ok(true);
    }
    let t = v.table(REMEMBERED)?;
    for pipe in v.pipes()? {
        let p = pipe.id.as_str();
        let end = now.saturating_sub(pipe.keep_delivered_ms());
        if t.range((p, 0, "")..(p, end, ""))?.next().is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Writer {
    /// Forgets up to `limit` remembered entries: those older than their Pipe's window,
    /// then the oldest of all while more than `cap` are remembered. Entries with an op
    /// still queued on their path are kept and looked at again one window later.
    pub fn expire(&self, cap: u64, limit: usize) -> Result<Expired> {
        let now = self.steady_ms;
        self.txn
            .open_table(crate::store::schema::COUNTERS)?
            .insert("steady_ms", now)?;
        let mut done = Expired::default();
        let mut budget = limit;
        for pipe in self.pipes()? {
            let keep = pipe.keep_delivered_ms();
            let due: Vec<(u64, String)> = {
                let t = self.txn.open_table(REMEMBERED)?;
                let p = pipe.id.as_str();
                let end = now.saturating_sub(keep);
                let rows = t.range((p, 0, "")..(p, end, ""))?;
                rows.take(budget + 1)
                    .map(|r| r.map(|(k, _)| (k.value().1, k.value().2.to_string())))
                    .collect::<std::result::Result<_, _>>()?
            };
            if due.len() > budget {
                done.more = true;
            }
            for (since, path) in due.into_iter().take(budget) {
                done.forgotten += u64::from(self.forget(&pipe.id, since, &path)?);
                budget -= 1;
            }
        }
        while budget > 0 && remembered(self)? > cap {
            let Some((pipe, since, path)) = self.oldest_remembered()? else {
                break;
            };
            done.forgotten += u64::from(self.forget(&pipe, since, &path)?);
            budget -= 1;
        }
        if budget == 0 {
            done.more = true;
        }
        Ok(done)
    }

    /// The oldest remembered entry of any Pipe.
    fn oldest_remembered(&self) -> Result<Option<(String, u64, String)>> {
        let t = self.txn.open_table(REMEMBERED)?;
        let mut best: Option<(String, u64, String)> = None;
        // One look at the front of each Pipe's range: Pipes are few.
        let mut from = String::new();
        loop {
            let Some(row) = t.range((from.as_str(), 0, "")..)?.next() else {
                break;
            };
            let (k, _) = row?;
            let (pipe, since, path) = k.value();
            if best.as_ref().is_none_or(|b| since < b.1) {
                best = Some((pipe.to_string(), since, path.to_string()));
            }
            from = format!("{pipe}\0");
        }
        Ok(best)
    }

    /// Forgets one remembered entry if nothing still needs it; returns whether it did.
    fn forget(&self, pipe: &str, since: u64, path: &str) -> Result<bool> {
        let p = VPath::from_normalised(path);
        let e = match self.entry(pipe, &p)? {
            Some(e) if e.kept_since == Some(since) => e,
            // An index row without its entry cannot be made, but costs nothing to drop.
            _ => {
                self.txn
                    .open_table(REMEMBERED)?
                    .remove((pipe, since, path))?;
                return Ok(false);
            }
        };
        if self.last_op_on(pipe, path)?.is_some() {
            // The destination has yet to hear of it: look again one window later.
            self.put_entry(
                pipe,
                &p,
                &Entry {
                    kept_since: Some(self.steady_ms.max(since + 1)),
                    ..e
                },
            )?;
            return Ok(false);
        }
        if e.kind == Kind::Dir && has_children(&self.txn.open_table(ENTRIES)?, pipe, path)? {
            // Remembered again when its last entry goes.
            self.put_entry(
                pipe,
                &p,
                &Entry {
                    kept_since: None,
                    ..e
                },
            )?;
            return Ok(false);
        }
        self.remove_entry(pipe, &p)?;
        Ok(true)
    }
}
