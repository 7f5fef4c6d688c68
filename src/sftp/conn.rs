//! One SSH connection as russh sees it ([`Conn`]): login attempts scored like FTP's,
//! session channels, the `sftp` subsystem started on them, and every other request
//! refused with a log line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::server::{Auth, ChannelOpenHandle, Msg, Session as SshSession};
use russh::{Channel, ChannelId};

use crate::auth::Login;
use crate::gateway::server::{Server, Slot};

/// Session channels one connection may open (clients open one).
const MAX_CHANNELS: usize = 4;

/// russh's view of one connection.
pub(super) struct Conn {
    pub(super) srv: Arc<Server>,
    pub(super) peer: SocketAddr,
    /// The connection's place in the session limits, for as long as it lasts.
    pub(super) slot: Slot,
    pub(super) login: Option<Login>,
    pub(super) access_seen: u64,
    pub(super) channels: HashMap<ChannelId, Channel<Msg>>,
    /// Channels running the SFTP subsystem: closed by it, after its exit status.
    pub(super) serving: std::collections::HashSet<ChannelId>,
    pub(super) logged_in: Arc<AtomicBool>,
}

impl Conn {
    /// One login attempt, scored like FTP's: refused while the address is banned, counted
    /// as a failure unless the store could not be read; on success the connection takes
    /// a logged-in place in the limits.
    async fn attempt(
        &mut self,
        user: &str,
        how: &str,
        check: impl std::future::Future<Output = Result<Login, crate::auth::Refusal>>,
    ) -> Result<Auth, russh::Error> {
        let attempt = match self.srv.login_attempt(self.peer.ip()).await {
            Ok(a) => a,
            Err(_) => {
                log::warn!(
                    "sftp login refused peer={}: too many failed logins from this address",
                    self.peer
                );
                return Ok(Auth::reject());
            }
        };
        let changes = self.srv.admin_changes.load(Ordering::SeqCst);
        match check.await {
            Ok(login) => {
                attempt.succeeded();
                if let Err(full) = self.slot.promote() {
                    log::warn!(
                        "sftp login refused peer={} sender={}: {}",
                        self.peer,
                        login.sender.name,
                        full
                    );
                    return Ok(Auth::reject());
                }
                self.srv.stats.logins_ok.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "login ok proto=sftp peer={} sender={} pipe={} with={how}",
                    self.peer,
                    login.sender.name,
                    login.pipe.id
                );
                self.login = Some(login);
                self.access_seen = changes;
                self.logged_in.store(true, Ordering::SeqCst);
                Ok(Auth::Accept)
            }
            Err(refusal) => {
                attempt.refused(&refusal);
                self.srv.events.login_failed(
                    user,
                    &self.peer.ip().to_string(),
                    "sftp",
                    &refusal.to_string(),
                );
                log::warn!(
                    "sftp login failed peer={} user={:?} with={how} reason: {refusal}",
                    self.peer,
                    crate::names::sanitize(user)
                );
                Ok(Auth::reject())
            }
        }
    }

    fn refuse(
        &self,
        what: &str,
        channel: ChannelId,
        session: &mut SshSession,
    ) -> Result<(), russh::Error> {
        log::warn!(
            "sftp peer={} sender={}: refused {what}: this gateway serves the sftp subsystem only",
            self.peer,
            self.login.as_ref().map_or("-", |l| l.sender.name.as_str())
        );
        session.channel_failure(channel)
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    /// The login is recorded here, where the client's version string is known.
    async fn auth_succeeded(&mut self, session: &mut SshSession) -> Result<(), Self::Error> {
        if let Some(login) = &self.login {
            let client = String::from_utf8_lossy(session.remote_sshid()).into_owned();
            self.srv.events.login_ok(
                &login.sender.name,
                &self.peer.ip().to_string(),
                "sftp",
                Some(&client),
            );
        }
        Ok(())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let (auth, ip) = (self.srv.auth.clone(), self.peer.ip());
        self.attempt(user, "password", auth.login(user, password, ip, true))
            .await
    }

    /// A key offered before it is used: accepted only if it is one of the Sender's, so
    /// the client can go on to sign with it. Clients offer every key they hold, so an
    /// unknown one here does not count as a failed login.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let known = self
            .srv
            .auth
            .login_key(user, &wire_form(offer.public_key), self.peer.ip())
            .await;
        Ok(match known {
            Ok(_) => Auth::Accept,
            Err(_) => Auth::reject(),
        })
    }

    /// The client proved it holds the key.
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let (auth, ip, public) = (
            self.srv.auth.clone(),
            self.peer.ip(),
            wire_form(key.public_key),
        );
        let check = async move { auth.login_key(user, &public, ip).await };
        self.attempt(user, "key", check).await
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        if self.login.is_none() || self.channels.len() >= MAX_CHANNELS {
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        let (Some(login), true) = (self.login.clone(), name == "sftp") else {
            return self.refuse(&format!("subsystem {name:?}"), channel, session);
        };
        let Some(ch) = self.channels.remove(&channel) else {
            return session.channel_failure(channel);
        };
        session.channel_success(channel)?;
        self.serving.insert(channel);
        let sftp = crate::sftp::session::Session::new(
            self.srv.clone(),
            login,
            self.peer,
            self.access_seen,
        );
        let (srv, handle) = (self.srv.clone(), session.handle());
        tokio::spawn(async move {
            srv.stats.sftp_sessions.fetch_add(1, Ordering::Relaxed);
            let status = sftp.run(ch.into_stream()).await;
            srv.stats.sftp_sessions.fetch_sub(1, Ordering::Relaxed);
            // Like sshd: the subsystem's exit status (scp checks it), then the close.
            let _ = handle.exit_status_request(channel, status).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        match self.serving.contains(&channel) {
            // The subsystem sees the end of its input, answers, and closes the channel.
            true => Ok(()),
            false => session.close(channel),
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        self.refuse("a shell", channel, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        self.refuse("a command", channel, session)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        self.refuse("a terminal", channel, session)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        self.refuse("X11 forwarding", channel, session)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        // OpenSSH clients send LANG; refusing is quiet and harmless.
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut SshSession,
    ) -> Result<bool, Self::Error> {
        log::warn!(
            "sftp peer={}: refused agent forwarding on {channel}",
            self.peer
        );
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut SshSession,
    ) -> Result<bool, Self::Error> {
        log::warn!(
            "sftp peer={}: refused port forwarding from {address}:{port}",
            self.peer
        );
        Ok(false)
    }
}

/// A key a client offered, in the wire form Senders' keys are compared in
/// (`auth::keys`); empty (matching no key) if it cannot be written.
fn wire_form(key: &russh::keys::PublicKey) -> Vec<u8> {
    key.to_bytes().unwrap_or_default()
}
