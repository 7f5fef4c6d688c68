//! AUTH, PBSZ, PROT, CCC (RFC 4217) and protected data connections.

use std::io;
use std::time::Duration;

use crate::ftp::datachan::{Conn, DataError};
use crate::ftp::errors;
use crate::ftp::proto::Reply;
use crate::ftp::session::{Flow, Session};
use crate::ftp::tls::{Policy, resumed_with};
use crate::names::TlsReuse;

impl Session {
    /// `AUTH TLS`: answer 234, forget any plaintext that came after it (CVE-2011-0411),
    /// then run the handshake on the control connection.
    pub(crate) async fn auth(&mut self, mechanism: &str) -> io::Result<Flow> {
        let Some(tls) = self.srv.tls.clone() else {
            self.reply(Reply::new(502, "TLS is not available on this gateway."))
                .await?;
            return Ok(Flow::Continue);
        };
        if self.tls {
            self.reply(Reply::new(503, "TLS is already in use on this connection."))
                .await?;
            return Ok(Flow::Continue);
        }
        if !matches!(mechanism, "TLS" | "TLS-C" | "SSL") {
            self.reply(Reply::new(
                504,
                format!("AUTH {mechanism} is not supported: use AUTH TLS."),
            ))
            .await?;
            return Ok(Flow::Continue);
        }
        self.reply(Reply::new(
            234,
            "AUTH TLS accepted; start the TLS handshake.",
        ))
        .await?;
        self.framer.discard();
        self.line_started = None;
        self.pending.clear();
        let plain = std::mem::replace(&mut self.ctl, Box::new(smol::io::Cursor::new(Vec::new())));
        let token = self.token;
        let handshake = tls
            .acceptor()
            .accept_with(plain, move |c| c.set_resumption_data(&token));
        // The handshake gets the login timeout, and no more than is left of the time to
        // log in: a connection that never logs in cannot outlive its login deadline.
        let mut until = std::time::Instant::now() + self.srv.config.login_timeout;
        if self.login.is_none() {
            until = until.min(self.login_from + self.srv.config.login_timeout);
        }
        let done = smol::future::or(async { Some(handshake.await) }, async {
            smol::Timer::at(until).await;
            None
        })
        .await;
        match done {
            Some(Ok(stream)) => {
                self.ctl = Box::new(stream);
                self.tls = true;
                Ok(Flow::Continue)
            }
            Some(Err(e)) => {
                log::info!("TLS handshake with {} failed: {e}", self.peer);
                Ok(Flow::Close)
            }
            None => {
                log::info!("TLS handshake with {} timed out", self.peer);
                Ok(Flow::Close)
            }
        }
    }

    pub(crate) fn pbsz(&mut self, _size: &str) -> Reply {
        if !self.tls {
            return Reply::new(503, "PBSZ needs AUTH TLS first.");
        }
        Reply::new(200, "PBSZ=0")
    }

    pub(crate) fn prot(&mut self, level: &str) -> Reply {
        if !self.tls {
            return Reply::new(503, "PROT needs AUTH TLS first.");
        }
        match level {
            "P" => {
                self.prot_p = true;
                Reply::new(
                    200,
                    "Protection level set to Private: data connections use TLS.",
                )
            }
            "C" if self.srv.config.tls == Policy::Required => Reply::new(
                534,
                "PROT C is refused: this gateway requires protected data connections (PROT P).",
            ),
            "C" => {
                self.prot_p = false;
                Reply::new(200, "Protection level set to Clear.")
            }
            "S" | "E" => Reply::new(536, format!("PROT {level} is not supported: use PROT P.")),
            _ => Reply::new(
                504,
                format!("PROT {level}: unknown protection level; use P or C."),
            ),
        }
    }

    /// Refusal of plaintext logins the policy forbids (same reply for every name).
    pub(crate) fn tls_required_for_login(&self) -> Option<Reply> {
        (self.srv.config.tls == Policy::Required && !self.tls)
            .then(|| Reply::new(530, "TLS is required on this gateway: send AUTH TLS first."))
    }

    /// Refusal of a transfer the policy forbids on a clear data connection.
    pub(crate) fn clear_data_refused(&self) -> Option<Reply> {
        (self.srv.config.tls == Policy::Required && !self.prot_p).then(|| {
            Reply::new(
                521,
                "Data connections must be protected on this gateway: send PROT P first.",
            )
        })
    }

    /// Wraps a data connection in TLS when PROT P is on, and checks that it resumed this
    /// session's TLS session (unless the Sender or the gateway relaxed that).
    pub(crate) async fn protect(&self, stream: Box<dyn Conn>) -> Result<Box<dyn Conn>, Reply> {
        if !self.prot_p {
            return Ok(stream);
        }
        let Some(tls) = self.srv.tls.clone() else {
            return Err(errors::data(&DataError::TlsUnavailable));
        };
        let limit = self.data_timeout();
        let handshake = tls.data_acceptor().accept(stream);
        let done = smol::future::or(async { Some(handshake.await) }, async {
            smol::Timer::after(limit.max(Duration::from_secs(1))).await;
            None
        })
        .await;
        let stream = match done {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(errors::data(&DataError::TlsFailed(e))),
            None => return Err(errors::data(&DataError::TlsTimedOut)),
        };
        let resumed = resumed_with(stream.get_ref().1, &self.token);
        if !resumed {
            let sender = self
                .login
                .as_ref()
                .map(|l| (l.sender.name.clone(), l.sender.tls_reuse));
            let relaxed = self.srv.config.tls_reuse == TlsReuse::Optional
                || sender.as_ref().is_some_and(|s| s.1 == TlsReuse::Optional);
            let name = sender.map(|s| s.0).unwrap_or_default();
            if !relaxed {
                log::warn!(
                    "refused a data connection from {} (sender {name}): it did not resume the control connection's TLS session",
                    self.peer
                );
                return Err(errors::data(&DataError::NotResumed { sender: name }));
            }
            log::info!(
                "accepted a data connection from {} without TLS session reuse (sender {name} is relaxed)",
                self.peer
            );
        }
        Ok(Box::new(stream))
    }
}
