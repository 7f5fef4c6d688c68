//! Per-source-address ban scores (pure; time is an argument).
//!
//! Each failed login adds a point; points decay with a half-life, so a device that
//! mistypes now and then is never banned while a guesser is. Memory is bounded: when the
//! table is full the lowest scores are forgotten first.
//!
//! A password check is scored *before* it runs ([`Bans::attempt`]) and refunded when it
//! succeeds ([`Bans::succeeded`]), so parallel guesses from one address cannot outrun
//! the threshold: once it is reached no further password is checked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BanPolicy {
    /// Score at which new connections are refused.
    pub threshold: f64,
    pub half_life: Duration,
    /// Most addresses remembered.
    pub capacity: usize,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            threshold: 10.0,
            half_life: Duration::from_secs(600),
            capacity: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: f64,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct Bans {
    policy: BanPolicy,
    scores: HashMap<IpAddr, Score>,
}

impl Bans {
    pub fn new(policy: BanPolicy) -> Bans {
        Bans {
            policy,
            scores: HashMap::new(),
        }
    }

    fn decayed(&self, s: Score, now: Instant) -> f64 {
        let halves = now.saturating_duration_since(s.at).as_secs_f64()
            / self.policy.half_life.as_secs_f64().max(1e-3);
        s.points * 0.5f64.powf(halves)
    }

    /// Before a password is checked: `false` while `ip` is banned; otherwise the attempt
    /// counts as failed from now on (see [`Bans::succeeded`]).
    pub fn attempt(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.is_banned(ip, now) {
            return false;
        }
        self.fail(ip, now);
        true
    }

    /// The password checked after [`Bans::attempt`] was right: its point is returned.
    pub fn succeeded(&mut self, ip: IpAddr, now: Instant) {
        if let Some(s) = self.scores.get(&ip).copied() {
            let points = (self.decayed(s, now) - 1.0).max(0.0);
            if points < 1e-3 {
                self.scores.remove(&ip);
            } else {
                self.scores.insert(ip, Score { points, at: now });
            }
        }
    }

    /// The score of `ip` now.
    pub fn score(&self, ip: IpAddr, now: Instant) -> f64 {
        self.scores.get(&ip).map_or(0.0, |s| self.decayed(*s, now))
    }

    /// Adds a failed login; returns the new score.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) -> f64 {
        if self.scores.len() >= self.policy.capacity && !self.scores.contains_key(&ip) {
            self.forget_lowest(now);
        }
        let points = self.scores.get(&ip).map_or(0.0, |s| self.decayed(*s, now)) + 1.0;
        self.scores.insert(ip, Score { points, at: now });
        points
    }

    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.scores
            .get(&ip)
            .is_some_and(|s| self.decayed(*s, now) >= self.policy.threshold)
    }

    fn forget_lowest(&mut self, now: Instant) {
        let mut all: Vec<(IpAddr, f64)> = self
            .scores
            .iter()
            .map(|(ip, s)| (*ip, self.decayed(*s, now)))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (ip, _) in all.iter().take((self.policy.capacity / 4).max(1)) {
            self.scores.remove(ip);
        }
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_ban_and_decay() {
        let mut b = Bans::new(BanPolicy {
            threshold: 3.0,
            half_life: Duration::from_secs(60),
            capacity: 4,
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        b.fail(ip, t0);
        b.fail(ip, t0);
        assert!(!b.is_banned(ip, t0));
        b.fail(ip, t0);
        assert!(b.is_banned(ip, t0));
        assert!(
            !b.is_banned(ip, t0 + Duration::from_secs(60)),
            "halved after one half-life"
        );
        assert!(!b.is_banned("10.0.0.2".parse().unwrap(), t0));
    }

    #[test]
    fn attempts_are_scored_before_the_check_and_refunded_when_right() {
        let mut b = Bans::new(BanPolicy {
            threshold: 10.0,
            ..BanPolicy::default()
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        // 96 guesses started at once: only the first ten are checked.
        let started = (0..96).filter(|_| b.attempt(ip, t0)).count();
        assert_eq!(started, 10);
        // A device that logs in right every time never gathers points.
        let dev: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..100 {
            assert!(b.attempt(dev, t0));
            b.succeeded(dev, t0);
        }
        assert_eq!(b.score(dev, t0), 0.0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut b = Bans::new(BanPolicy {
            capacity: 100,
            ..BanPolicy::default()
        });
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            b.fail(IpAddr::from(i.to_be_bytes()), t0);
            assert!(b.len() <= 100);
        }
    }
}
