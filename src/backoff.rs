//! Retry delays (pure): exponential from one second with ±25 % jitter, so a fleet of
//! gateways does not hammer a recovering endpoint in step, and never longer than [`CAP`]
//! (the jitter is applied first, so at the cap tries come 11.25–15 s apart).

use std::time::Duration;

/// Longest wait between tries: a destination that comes back is used within this.
pub const CAP: Duration = Duration::from_secs(15);

/// The delay before try number `attempt + 1` (attempt counts from 1); `jitter` in [0, 1).
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(CAP);
    base.mul_f64(0.75 + jitter.clamp(0.0, 1.0) * 0.5).min(CAP)
}

/// Beyond this much ahead of the clock, a due time cannot have come from a backoff: the
/// wall clock went back (a box without a real-time clock, set right by NTP after a
/// crash, or set back by hand).
pub const FAR_AHEAD_MS: u64 = 4 * CAP.as_millis() as u64;

/// Whether something due at `at_ms` may go at `now_ms` (ms since the epoch): when its time
/// has come, or when its time is further ahead than any backoff sets it, so a clock that
/// went back by a year does not hold the backlog for a year.
pub fn due(at_ms: u64, now_ms: u64) -> bool {
    at_ms <= now_ms || at_ms > now_ms.saturating_add(FAR_AHEAD_MS)
}

/// A jitter value from the OS random source.
pub fn jitter() -> f64 {
    let mut b = [0u8; 2];
    getrandom::getrandom(&mut b).expect("the operating system's random source failed");
    f64::from(u16::from_le_bytes(b)) / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        assert_eq!(delay(1, 0.5), Duration::from_secs(1));
        assert_eq!(delay(2, 0.5), Duration::from_secs(2));
        assert_eq!(delay(4, 0.5), Duration::from_secs(8));
        assert_eq!(delay(10, 0.5), CAP);
        assert_eq!(delay(1000, 0.5), CAP);
        assert_eq!(delay(1, 0.0), Duration::from_millis(750));
        assert!(delay(3, 0.999) < Duration::from_secs(5));
        // "At most 15 s apart" (docs/OPERATING.md) holds whatever the jitter.
        assert!((1..40).all(|a| delay(a, 0.999) <= CAP));
        assert_eq!(delay(10, 0.0), CAP.mul_f64(0.75));
    }
}
