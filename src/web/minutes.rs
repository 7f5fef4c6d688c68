//! Files received and delivered per minute over the last hour, for the status page's
//! chart: sixty counters, moved on by the events loop once a second from the running
//! totals (uploads acknowledged, puts delivered).

use std::collections::VecDeque;
use std::sync::Mutex;

/// Minutes kept.
pub const WINDOW: usize = 60;

/// One minute's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minute {
    /// Minutes since the epoch.
    pub at: u64,
    pub received: u64,
    pub delivered: u64,
}

#[derive(Default)]
struct Inner {
    minutes: VecDeque<Minute>,
    /// The totals seen last, to count what came since.
    last: Option<(u64, u64)>,
}

/// The last hour, minute by minute.
#[derive(Default)]
pub struct Minutes(Mutex<Inner>);

impl Minutes {
    /// Counts what the totals grew by since the last call into the minute of `now_ms`.
    pub fn record(&self, received_total: u64, delivered_total: u64, now_ms: u64) {
        let mut i = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (r0, d0) = i.last.unwrap_or((received_total, delivered_total));
        i.last = Some((received_total, delivered_total));
        let at = now_ms / 60_000;
        if i.minutes.back().is_none_or(|m| m.at != at) {
            i.minutes.push_back(Minute {
                at,
                ..Minute::default()
            });
        }
        while i.minutes.len() > WINDOW
            || i.minutes
                .front()
                .is_some_and(|m| m.at + (WINDOW as u64) <= at)
        {
            i.minutes.pop_front();
        }
        if let Some(m) = i.minutes.back_mut() {
            m.received += received_total.saturating_sub(r0);
            m.delivered += delivered_total.saturating_sub(d0);
        }
    }

    /// The last [`WINDOW`] minutes up to `now_ms`, oldest first, quiet minutes as zeros.
    pub fn last_hour(&self, now_ms: u64) -> Vec<Minute> {
        let i = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms / 60_000;
        (0..WINDOW as u64)
            .rev()
            .map(|back| {
                let at = now.saturating_sub(back);
                i.minutes
                    .iter()
                    .find(|m| m.at == at)
                    .copied()
                    .unwrap_or(Minute {
                        at,
                        ..Minute::default()
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_minute_and_an_hour_is_kept() {
        let m = Minutes::default();
        let t0 = 1_000 * 60_000;
        m.record(100, 50, t0);
        m.record(103, 50, t0 + 1_000);
        m.record(105, 52, t0 + 61_000);
        let hour = m.last_hour(t0 + 61_000);
        assert_eq!(hour.len(), WINDOW);
        assert_eq!((hour[58].received, hour[58].delivered), (3, 0));
        assert_eq!((hour[59].received, hour[59].delivered), (2, 2));
        m.record(110, 52, t0 + 3 * 3_600_000);
        let later = m.last_hour(t0 + 3 * 3_600_000);
        assert_eq!(
            later.iter().map(|x| x.received).sum::<u64>(),
            5,
            "older minutes forgotten"
        );
    }
}
