//! Logging in and out, and the TLS of the control connection: the order of USER and
//! PASS, failures, REIN, AUTH/PBSZ/PROT, and what an admin change does to a session.

use super::{Action, Core, Flow, reply};
use crate::auth::{Login, Refusal};
use crate::ftp::proto::Reply;
use crate::gateway::tls::Policy;
use crate::secret::Secret;
use crate::vfs::VPath;

/// Failed logins before the connection is closed.
pub const MAX_FAILURES: u32 = 3;

impl Core {
    pub(super) fn user(&mut self, name: String) -> Action {
        if self.login.is_some() {
            return reply(503, "Already logged in; send REIN first to log in again.");
        }
        self.user = Some(name);
        // The same answer for every name: nothing tells which exist.
        reply(331, "Password required.")
    }

    pub(super) fn pass(&mut self, password: Secret) -> Action {
        if self.login.is_some() {
            return reply(503, "Already logged in.");
        }
        match self.user.take() {
            Some(user) => Action::CheckPassword { user, password },
            None => reply(503, "Send USER first."),
        }
    }

    /// The password was right and the Sender may log in (the driver has its slot).
    pub fn logged_in(&mut self, login: Login) -> Reply {
        let text = format!(
            "Logged in; uploads go to pipe {} ({}).",
            login.pipe.id, login.pipe.name
        );
        self.login = Some(login);
        self.cwd = VPath::root();
        self.failures = 0;
        Reply::new(230, text)
    }

    /// The login was refused (the same reply whatever the reason); the last allowed
    /// failure closes the connection.
    pub fn login_failed(&mut self) -> (Reply, Flow) {
        self.failures += 1;
        if self.failures >= MAX_FAILURES {
            let text = "Login incorrect; too many failures, closing the connection.";
            return (Reply::new(530, text), Flow::Close);
        }
        (Reply::new(530, "Login incorrect."), Flow::Continue)
    }

    /// After an admin change: the session goes on with the Sender's and Pipe's settings
    /// as they are now.
    pub fn refreshed(&mut self, login: Login) {
        self.login = Some(login);
    }

    /// After an admin change: the Sender or Pipe may no longer be used; the connection
    /// closes after this reply.
    pub fn revoked(&mut self, refusal: &Refusal) -> Reply {
        self.login = None;
        Reply::new(
            421,
            format!("An administrator changed your access ({refusal}); closing the connection."),
        )
    }

    pub(super) fn rein(&mut self) -> Action {
        self.user = None;
        self.login = None;
        self.cwd = VPath::root();
        self.rest = None;
        self.rnfr = None;
        self.epsv_all = false;
        // RFC 4217: REIN keeps the TLS of the control connection as it is.
        Action::LoggedOut(Reply::new(220, "Session reset; log in again."))
    }

    pub(super) fn auth(&mut self, mechanism: &str) -> Action {
        if !self.settings.tls_available {
            return reply(502, "TLS is not available on this gateway.");
        }
        if self.tls {
            return reply(503, "TLS is already in use on this connection.");
        }
        if !matches!(mechanism, "TLS" | "TLS-C" | "SSL") {
            return reply(
                504,
                format!("AUTH {mechanism} is not supported: use AUTH TLS."),
            );
        }
        Action::StartTls
    }

    /// The handshake after `AUTH TLS` succeeded.
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    pub(super) fn prot(&mut self, level: &str) -> Action {
        if !self.tls {
            return reply(503, "PROT needs AUTH TLS first.");
        }
        match level {
            "P" => {
                self.prot_p = true;
                reply(
                    200,
                    "Protection level set to Private: data connections use TLS.",
                )
            }
            "C" if self.settings.tls == Policy::Required => reply(
                534,
                "PROT C is refused: this gateway requires protected data connections (PROT P).",
            ),
            "C" => {
                self.prot_p = false;
                reply(200, "Protection level set to Clear.")
            }
            "S" | "E" => reply(536, format!("PROT {level} is not supported: use PROT P.")),
            _ => reply(
                504,
                format!("PROT {level}: unknown protection level; use P or C."),
            ),
        }
    }

    /// A transfer the TLS policy forbids on a clear data connection.
    pub(super) fn clear_data_refused(&self) -> Option<Action> {
        (self.settings.tls == Policy::Required && !self.prot_p).then(|| {
            reply(
                521,
                "Data connections must be protected on this gateway: send PROT P first.",
            )
        })
    }
}
