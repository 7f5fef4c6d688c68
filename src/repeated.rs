//! An error that repeats is logged once in full, then only as a count (at 2, 4, 8, …
//! repeats, and once when it stops), so a fault that lasts hours writes a few lines, not
//! enough to fill the disk it may be about.

/// The last error logged, and how often it has repeated since.
#[derive(Debug, Default)]
pub struct Repeated {
    last: Option<String>,
    repeats: u64,
}

impl Repeated {
    /// Logs `message` at ERROR unless it is the one logged last; returns whether it did.
    pub fn error(&mut self, message: String) -> bool {
        if self.last.as_deref() == Some(message.as_str()) {
            self.repeats += 1;
            if self.repeats.is_power_of_two() {
                log::error!("(the same error, {} times so far)", self.repeats + 1);
            }
            return false;
        }
        self.clear();
        log::error!("{message}");
        self.last = Some(message);
        true
    }

    /// The error stopped: says so if it had repeated.
    pub fn clear(&mut self) {
        if let Some(last) = self.last.take()
            && self.repeats > 0
        {
            log::warn!("stopped after {} times: {last}", self.repeats + 1);
        }
        self.repeats = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_repeated_a_million_times_is_logged_a_few_times() {
        let mut r = Repeated::default();
        let logged = (0..1_000_000)
            .filter(|_| r.error("disk full".to_string()))
            .count();
        assert_eq!(logged, 1, "in full once (then ~20 counts)");
        assert!(
            r.error("another".to_string()),
            "a new error is logged in full"
        );
        r.clear();
        assert!(
            r.error("another".to_string()),
            "after it stopped, again in full"
        );
    }
}
