//! The gateway's wall clock (Unix seconds and milliseconds), in one place. Expiry of
//! partial uploads, retry times, `MDTM` and the status view all read it here.
//!
//! Tests move it with [`shift`]: the shift holds for the calling thread only, so a test
//! that sends partial uploads a day ahead does not change the time other tests, or the
//! daemon's own threads, see.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

thread_local! {
    static SHIFT_MS: Cell<u64> = const { Cell::new(0) };
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    real.saturating_add(SHIFT_MS.with(Cell::get))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Moves this thread's clock `by` into the future (tests of expiry and deadlines).
pub fn shift(by: Duration) {
    SHIFT_MS.with(|s| s.set(s.get().saturating_add(by.as_millis() as u64)));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_shift_moves_this_threads_clock_only() {
        let before = super::now_secs();
        super::shift(Duration::from_secs(86_400));
        assert!(super::now_secs() >= before + 86_400);
        let other = std::thread::spawn(super::now_secs).join().unwrap();
        assert!(
            other < before + 86_400,
            "another thread keeps the real time"
        );
    }
}
