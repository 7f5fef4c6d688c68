//! USER, PASS, REIN (RFC 959 §4.1.1). Every failure gets the same `530` after the same
//! delay; the log says why. Three failures close the connection.

use std::io;
use std::sync::atomic::Ordering;

use crate::ftp::datachan::Plan;
use crate::ftp::proto::Reply;
use crate::ftp::session::{Flow, Session};
use crate::vfs::VPath;

const MAX_FAILURES: u32 = 3;

impl Session {
    pub(crate) fn user(&mut self, name: String) -> Reply {
        if self.login.is_some() {
            return Reply::new(503, "Already logged in; send REIN first to log in again.");
        }
        self.user = Some(name);
        // The same answer for every name: nothing tells which exist.
        Reply::new(331, "Password required.")
    }

    pub(crate) async fn pass(&mut self, password: crate::secret::Secret) -> io::Result<Flow> {
        if self.login.is_some() {
            self.reply(Reply::new(503, "Already logged in.")).await?;
            return Ok(Flow::Continue);
        }
        let Some(user) = self.user.take() else {
            self.reply(Reply::new(503, "Send USER first.")).await?;
            return Ok(Flow::Continue);
        };
        // Scored before the check, so parallel guesses cannot outrun the ban threshold.
        let attempt = match self.srv.login_attempt(self.peer.ip()).await {
            Ok(attempt) => attempt,
            Err(refusal) => {
                log::warn!(
                    "login refused peer={}: too many failed logins from this address",
                    self.peer
                );
                self.reply(refusal).await?;
                return Ok(Flow::Close);
            }
        };
        let auth = self.srv.auth.clone();
        // Changes from here on are checked before the next command (live authorisation).
        let changes = self.srv.admin_changes.load(Ordering::SeqCst);
        let result = auth
            .login(&user, password.expose(), self.peer.ip(), self.tls)
            .await;
        match result {
            Ok(login) => {
                attempt.succeeded();
                if let Err(full) = self.slot.promote() {
                    log::warn!(
                        "login refused peer={} sender={}: every logged-in session slot is taken",
                        self.peer,
                        login.sender.name
                    );
                    self.reply(full).await?;
                    return Ok(Flow::Close);
                }
                self.srv.stats.logins_ok.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "login ok peer={} sender={} pipe={}",
                    self.peer,
                    login.sender.name,
                    login.pipe.id
                );
                let text = format!(
                    "Logged in; uploads go to pipe {} ({}).",
                    login.pipe.id, login.pipe.name
                );
                self.login = Some(login);
                self.access_seen = changes;
                self.cwd = VPath::root();
                self.failures = 0;
                self.reply(Reply::new(230, text)).await?;
                Ok(Flow::Continue)
            }
            Err(refusal) => {
                self.failures += 1;
                if matches!(refusal, crate::auth::Refusal::Store(_)) {
                    attempt.void();
                } else {
                    attempt.failed();
                }
                log::warn!(
                    "login failed peer={} user={:?} reason: {refusal}",
                    self.peer,
                    crate::ftp::proto::reply::sanitize(&user)
                );
                smol::Timer::after(self.srv.config.login_fail_delay).await;
                if self.failures >= MAX_FAILURES {
                    self.reply(Reply::new(
                        530,
                        "Login incorrect; too many failures, closing the connection.",
                    ))
                    .await?;
                    return Ok(Flow::Close);
                }
                self.reply(Reply::new(530, "Login incorrect.")).await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// After an admin change, checks the login again before the next command: the
    /// session goes on with the Sender's and Pipe's current settings, or is closed with
    /// `421` if they may no longer be used. A store that cannot be read is checked again
    /// at the next command.
    pub(crate) async fn recheck_access(&mut self) -> io::Result<Flow> {
        let changes = self.srv.admin_changes.load(Ordering::SeqCst);
        let Some(login) = self.login.as_ref().filter(|_| changes != self.access_seen) else {
            return Ok(Flow::Continue);
        };
        match self.srv.auth.recheck(login, self.peer.ip(), self.tls).await {
            Ok(fresh) => {
                self.login = Some(fresh);
                self.access_seen = changes;
                Ok(Flow::Continue)
            }
            Err(crate::auth::Refusal::Store(e)) => {
                log::warn!(
                    "session peer={}: cannot check the login again: {e}",
                    self.peer
                );
                Ok(Flow::Continue)
            }
            Err(refusal) => {
                log::info!(
                    "session peer={} sender={} pipe={}: access changed ({refusal}); closing the session",
                    self.peer,
                    login.sender.name,
                    login.pipe.id
                );
                self.reply(Reply::new(
                    421,
                    format!(
                        "An administrator changed your access ({refusal}); closing the connection."
                    ),
                ))
                .await?;
                Ok(Flow::Close)
            }
        }
    }

    pub(crate) fn rein(&mut self) -> Reply {
        self.user = None;
        self.login = None;
        self.slot.demote();
        self.login_from = std::time::Instant::now();
        self.cwd = VPath::root();
        self.rest = None;
        self.rnfr = None;
        self.plan = Plan::None;
        self.epsv_all = false;
        // RFC 4217: REIN keeps the TLS of the control connection as it is.
        Reply::new(220, "Session reset; log in again.")
    }
}
