//! The control connection's deadlines: logging in, finishing a line once started, and
//! the idle time between commands; and the sentence a client gets when one runs out.

use std::time::Instant;

use super::Session;

/// Which deadline ran out.
#[derive(Debug, Clone, Copy)]
pub(super) enum Deadline {
    Login,
    Line,
    Idle,
}

impl Session {
    /// The first deadline to come: logging in within the login timeout from the
    /// connection's start; finishing a started line within the login timeout from its
    /// first byte; a complete command within the idle timeout of the last one. Bytes that
    /// do not finish a line move none of them.
    pub(super) fn deadline(&self) -> (Deadline, Instant) {
        let config = &self.srv.config;
        let mut next = if self.core.login().is_some() {
            (Deadline::Idle, self.last_line + config.idle_timeout)
        } else {
            (Deadline::Login, self.login_from + config.login_timeout)
        };
        if let Some(started) = self.line_started {
            let line = started + config.login_timeout;
            if line < next.1 {
                next = (Deadline::Line, line);
            }
        }
        next
    }

    pub(super) fn deadline_text(&self, which: Deadline) -> String {
        let config = &self.srv.config;
        match which {
            Deadline::Login => format!(
                "Not logged in within {} seconds; closing the connection.",
                config.login_timeout.as_secs()
            ),
            Deadline::Line => format!(
                "A command line must end within {} seconds of its start; closing the connection.",
                config.login_timeout.as_secs()
            ),
            Deadline::Idle => format!(
                "Idle for {} seconds; closing the connection.",
                config.idle_timeout.as_secs()
            ),
        }
    }
}
