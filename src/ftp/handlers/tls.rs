//! The TLS handshake after `AUTH TLS` (RFC 4217) and protected data connections; the
//! order of AUTH, PBSZ and PROT and the TLS policies are decided in the core.

use std::io;
use std::time::Duration;

use crate::ftp::datachan::{Conn, DataError};
use crate::ftp::errors;
use crate::ftp::proto::Reply;
use crate::ftp::session::{Flow, Session};
use crate::gateway::tls::resumed_token;
use crate::store::senders::TlsReuse;

impl Session {
    /// After the core accepted `AUTH TLS`: answer 234, forget any plaintext that came
    /// after it (CVE-2011-0411), then run the handshake on the control connection.
    pub(crate) async fn start_tls(&mut self) -> io::Result<Flow> {
        let Some(tls) = self.srv.tls.clone() else {
            // The core offers TLS only when it is available.
            self.reply(Reply::new(502, "TLS is not available on this gateway."))
                .await?;
            return Ok(Flow::Continue);
        };
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
        if self.core.login().is_none() {
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
                self.core.tls_started();
                Ok(Flow::Continue)
            }
            Some(Err(e)) => {
                match crate::gateway::tls::handshake_advice(&e, false) {
                    Some(advice) => log::warn!("TLS handshake with {} failed: {advice}", self.peer),
                    None => log::info!("TLS handshake with {} failed: {e}", self.peer),
                }
                Ok(Flow::Close)
            }
            None => {
                log::info!("TLS handshake with {} timed out", self.peer);
                Ok(Flow::Close)
            }
        }
    }

    /// Wraps a data connection in TLS when PROT P is on, and checks that it resumed this
    /// session's TLS session (unless the Sender or the gateway relaxed that).
    pub(crate) async fn protect(&self, stream: Box<dyn Conn>) -> Result<Box<dyn Conn>, Reply> {
        if !self.core.prot_p() {
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
            Some(Err(e)) => {
                match crate::gateway::tls::handshake_advice(&e, true) {
                    Some(advice) => {
                        log::warn!("data connection from {} refused: {advice}", self.peer)
                    }
                    None => log::info!("TLS on a data connection from {} failed: {e}", self.peer),
                }
                return Err(errors::data(&DataError::TlsFailed(e)));
            }
            None => return Err(errors::data(&DataError::TlsTimedOut)),
        };
        let resumed = self.resumed(resumed_token(stream.get_ref().1));
        if !resumed {
            self.without_resumption()?;
        }
        Ok(Box::new(stream))
    }

    /// Whether a data connection resumed `token`'s TLS session that may serve this one:
    /// its own control session's, or a sibling's (the same Sender from the same address).
    fn resumed(&self, token: Option<&[u8]>) -> bool {
        match token {
            Some(t) if t == self.token => true,
            Some(t) => self.core.login().is_some_and(|l| {
                let sibling = self.srv.is_sibling(t, &l.sender.name, self.peer.ip());
                if sibling {
                    log::info!(
                        "data connection from {} (sender {}) resumed a sibling session's TLS session",
                        self.peer,
                        l.sender.name
                    );
                }
                sibling
            }),
            None => false,
        }
    }

    /// A data connection that did not resume a session is refused, unless the Sender or
    /// the gateway relaxed the check (`--tls-reuse optional`).
    fn without_resumption(&self) -> Result<(), Reply> {
        let sender = self
            .core
            .login()
            .map(|l| (l.sender.name.clone(), l.sender.tls_reuse));
        let relaxed = self.ftp.tls_reuse == TlsReuse::Optional
            || sender.as_ref().is_some_and(|s| s.1 == TlsReuse::Optional);
        let name = sender.map(|s| s.0).unwrap_or_default();
        if !relaxed {
            log::warn!(
                "refused a data connection from {} (sender {name}): it did not resume the control connection's TLS session; turn on TLS session reuse in the client, or allow it with 'ftpgate sender set {name} --tls-reuse optional'",
                self.peer
            );
            return Err(errors::data(&DataError::NotResumed { sender: name }));
        }
        log::info!(
            "accepted a data connection from {} without TLS session reuse (sender {name} is relaxed)",
            self.peer
        );
        Ok(())
    }
}
