//! Checking a password (`PASS`, after the core accepted the order of `USER` and `PASS`),
//! and checking a login again after an admin change. Every failure gets the same `530`
//! after the same delay; the log says why.

use std::io;
use std::sync::atomic::Ordering;

use crate::ftp::errors;
use crate::ftp::session::{Flow, Session};
use crate::secret::Secret;

impl Session {
    pub(crate) async fn pass(&mut self, user: String, password: Secret) -> io::Result<Flow> {
        // Scored before the check, so parallel guesses cannot outrun the ban threshold.
        let attempt = match self.srv.login_attempt(self.peer.ip()).await {
            Ok(attempt) => attempt,
            Err(refusal) => {
                log::warn!(
                    "login refused peer={}: too many failed logins from this address",
                    self.peer
                );
                self.reply(errors::refused(refusal)).await?;
                return Ok(Flow::Close);
            }
        };
        let auth = self.srv.auth.clone();
        // Changes from here on are checked before the next command (live authorisation).
        let changes = self.srv.admin_changes.load(Ordering::SeqCst);
        let result = auth
            .login(&user, password.expose(), self.peer.ip(), self.core.tls())
            .await;
        match result {
            Ok(login) => {
                attempt.succeeded();
                self.logged_in(login, changes).await
            }
            Err(refusal) => {
                attempt.refused(&refusal);
                let proto = if self.core.tls() { "ftps" } else { "ftp" };
                let address = self.peer.ip().to_string();
                let reason = refusal.to_string();
                self.srv
                    .events
                    .login_failed(&user, &address, proto, &reason);
                log::warn!(
                    "login failed peer={} user={:?} reason: {refusal}",
                    self.peer,
                    crate::names::sanitize(&user)
                );
                smol::Timer::after(self.srv.config.login_fail_delay).await;
                let (reply, flow) = self.core.login_failed();
                self.reply(reply).await?;
                Ok(flow)
            }
        }
    }

    /// A login that passed: it takes a logged-in place in the session limits (or the
    /// session closes with `421`), and admin changes from `changes` on are checked before
    /// its next command.
    async fn logged_in(&mut self, login: crate::auth::Login, changes: u64) -> io::Result<Flow> {
        if let Err(full) = self.slot.promote() {
            log::warn!(
                "login refused peer={} sender={}: every logged-in session slot is taken",
                self.peer,
                login.sender.name
            );
            self.reply(errors::refused(full)).await?;
            return Ok(Flow::Close);
        }
        self.srv.stats.logins_ok.fetch_add(1, Ordering::Relaxed);
        let proto = if self.core.tls() { "ftps" } else { "ftp" };
        self.srv.events.login_ok(
            &login.sender.name,
            &self.peer.ip().to_string(),
            proto,
            self.core.client(),
        );
        log::info!(
            "login ok peer={} sender={} pipe={}",
            self.peer,
            login.sender.name,
            login.pipe.id
        );
        self.access_seen = changes;
        if self.core.tls() {
            let ip = self.peer.ip();
            self.tls_sibling = Some(self.srv.tls_sibling(self.token, &login.sender.name, ip));
        }
        let reply = self.core.logged_in(login);
        self.reply(reply).await?;
        Ok(Flow::Continue)
    }

    /// After an admin change, checks the login again before the next command: the
    /// session goes on with the Sender's and Pipe's current settings, or is closed with
    /// `421` if they may no longer be used. A store that cannot be read is checked again
    /// at the next command.
    pub(crate) async fn recheck_access(&mut self) -> io::Result<Flow> {
        let changes = self.srv.admin_changes.load(Ordering::SeqCst);
        let Some(login) = self.core.login().filter(|_| changes != self.access_seen) else {
            return Ok(Flow::Continue);
        };
        let (sender, pipe) = (login.sender.name.clone(), login.pipe.id.clone());
        let checked = self
            .srv
            .auth
            .recheck(login, self.peer.ip(), self.core.tls())
            .await;
        match checked {
            Ok(fresh) => {
                self.core.refreshed(fresh);
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
                    "session peer={} sender={sender} pipe={pipe}: access changed ({refusal}); closing the session",
                    self.peer,
                );
                let reply = self.core.revoked(&refusal);
                self.reply(reply).await?;
                Ok(Flow::Close)
            }
        }
    }
}
