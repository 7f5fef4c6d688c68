//! One control connection, the driver around [`Core`]: reads framed lines within their
//! deadlines, parses them, asks the core what each one does, and carries out the
//! [`Action`] with the handlers in [`super::handlers`] (sockets, TLS, the store and the
//! spool off the executor). The core holds the session's state and decisions; the
//! driver holds the connections, the data plan and the timers.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::Login;
pub use crate::ftp::core::Flow;
use crate::ftp::core::{Action, Core, Settings};
use crate::ftp::datachan::{Conn, Plan};
use crate::ftp::proto::{Command, Frame, LineFramer, Reply};
use crate::gateway::server::{Server, Slot};

mod deadline;

use deadline::Deadline;

/// Most commands kept while a transfer runs (beyond that the client is misbehaving).
const MAX_PENDING: usize = 16;

pub struct Session {
    pub(super) srv: Arc<Server>,
    /// FTP's own settings (listeners, data connections, TLS policy).
    pub(super) ftp: Arc<crate::ftp::Config>,
    /// This connection's place in the session limits.
    pub(super) slot: Slot,
    /// When the connection (or, after `REIN`, the new login) started: login must be
    /// complete within the login timeout from here.
    pub(super) login_from: Instant,
    /// When the last complete command line arrived (the idle timeout counts from here).
    pub(super) last_line: Instant,
    /// When the first byte of a line not yet complete arrived.
    pub(super) line_started: Option<Instant>,
    pub(super) ctl: Box<dyn Conn>,
    pub(super) framer: LineFramer,
    /// Lines received during a transfer, handled after it.
    pub(super) pending: VecDeque<Frame>,
    pub(super) peer: SocketAddr,
    /// The session's state and decisions.
    pub(super) core: Core,
    /// The server's count of admin changes when the login was last checked.
    pub(super) access_seen: u64,
    /// While logged in over TLS: this session's TLS token among its Sender's siblings.
    pub(super) tls_sibling: Option<crate::gateway::server::TlsSibling>,
    pub(super) plan: Plan,
    /// The last command was a transfer (whatever its outcome): a `PASV`/`EPSV` now is
    /// the first command of libcurl's next file (see [`Session::passive`]).
    pub(super) after_transfer: bool,
    /// The client sent `TYPE` between `PASV`/`EPSV` and its transfer, as libcurl does
    /// (other clients send it first, or once after login).
    pub(super) type_after_passive: bool,
    /// The client has sent `TYPE` on this connection: libcurl sends it only after its
    /// first `PASV`/`EPSV` (see [`Session::passive`]).
    pub(super) type_seen: bool,
    pub(super) uploads: u64,
    pub(super) bytes: u64,
    /// Embedded in this session's TLS tickets; data connections must bring it back.
    pub(super) token: [u8; 16],
}

enum Input {
    Read(io::Result<usize>),
    TimedOut,
    Shutdown,
    Evicted,
}

impl Session {
    pub fn new(
        srv: Arc<Server>,
        ftp: Arc<crate::ftp::Config>,
        slot: Slot,
        ctl: Box<dyn Conn>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Session {
        let now = Instant::now();
        let settings = Settings {
            tls: ftp.tls,
            tls_available: srv.tls.is_some(),
            active: ftp.active,
            passive_address: ftp.passive_address,
            local: local.ip(),
            peer: peer.ip(),
        };
        Session {
            srv,
            ftp,
            slot,
            login_from: now,
            last_line: now,
            line_started: None,
            ctl,
            framer: LineFramer::new(),
            pending: VecDeque::new(),
            peer,
            core: Core::new(settings),
            access_seen: 0,
            tls_sibling: None,
            plan: Plan::None,
            after_transfer: false,
            type_after_passive: false,
            type_seen: false,
            uploads: 0,
            bytes: 0,
            token: crate::gateway::tls::session_token(),
        }
    }

    /// Serves the connection until QUIT, EOF, a timeout, too many failed logins or
    /// shutdown.
    pub async fn run(mut self) {
        let started = Instant::now();
        log::info!("session start peer={}", self.peer);
        if self
            .reply(Reply::new(
                220,
                "ftpgate ready: an upload-only FTP gateway.",
            ))
            .await
            .is_ok()
        {
            loop {
                let frame = match self.next_frame().await {
                    Ok(Some(f)) => f,
                    Ok(None) | Err(_) => break,
                };
                if !matches!(self.recheck_access().await, Ok(Flow::Continue)) {
                    break;
                }
                let flow = match frame {
                    Frame::TooLong => self
                        .reply(Reply::new(
                            500,
                            "Command line too long (the limit is 2048 bytes).",
                        ))
                        .await
                        .map(|_| Flow::Continue),
                    Frame::Line(line) => match Command::parse(&line) {
                        // Boxed: a command's future lives only while it runs, and an
                        // idle session's task stays small (docs/ARCHITECTURE.md, Bounds).
                        Ok(cmd) => Box::pin(self.dispatch(cmd)).await,
                        Err(e) => self
                            .reply(Reply::new(e.code(), format!("{e}.")))
                            .await
                            .map(|_| Flow::Continue),
                    },
                };
                if !matches!(flow, Ok(Flow::Continue)) {
                    break;
                }
                // Idle from the end of the last command: an upload that took an hour
                // was no idleness.
                self.last_line = Instant::now();
            }
        }
        let _ = self.ctl.close().await;
        log::info!(
            "session end peer={} sender={} pipe={} uploads={} bytes={} seconds={:.1}",
            self.peer,
            self.core.login().map_or("-", |l| l.sender.name.as_str()),
            self.core.login().map_or("-", |l| l.pipe.id.as_str()),
            self.uploads,
            self.bytes,
            started.elapsed().as_secs_f64()
        );
    }

    /// The next command line, within the deadlines (see [`Session::deadline`]). `None`:
    /// the session is over (EOF, a deadline or shutdown; the client has been told).
    async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Some(f));
        }
        // Command lines are short: a small read buffer keeps an idle session small (the
        // framer gathers a line of up to 2 KiB across reads).
        let mut buf = [0u8; 512];
        loop {
            if let Some(f) = self.framer.next_frame() {
                let now = Instant::now();
                self.last_line = now;
                self.line_started = self.framer.mid_line().then_some(now);
                return Ok(Some(f));
            }
            // A line may have begun while a transfer ran (the control connection was read
            // then too): its deadline counts from now at the latest.
            if self.framer.mid_line() && self.line_started.is_none() {
                self.line_started = Some(Instant::now());
            }
            let (which, at) = self.deadline();
            match self.wait_for_input(&mut buf, at).await {
                Input::Read(Ok(0)) => return Ok(None),
                Input::Read(Ok(n)) => {
                    self.framer.push(&buf[..n]);
                    self.line_started.get_or_insert_with(Instant::now);
                }
                Input::Read(Err(e)) => return Err(e),
                other => {
                    self.close_for(other, which).await?;
                    return Ok(None);
                }
            }
        }
    }

    /// Waits for bytes on the control connection, deadline `at`, the gateway's shutdown,
    /// or (while it waits to log in) its eviction, whichever comes first.
    async fn wait_for_input(&mut self, buf: &mut [u8], at: Instant) -> Input {
        let shutdown = self.srv.shutdown.clone();
        // Only a connection still waiting to log in can be evicted.
        let evicted = self.slot.evicted.clone();
        let waiting = self.core.login().is_none();
        let stop = async {
            smol::future::or(
                async {
                    smol::Timer::at(at).await;
                    Input::TimedOut
                },
                async {
                    let _ = shutdown.recv().await;
                    Input::Shutdown
                },
            )
            .await
        };
        let evict = async {
            if waiting {
                let _ = evicted.recv().await;
                Input::Evicted
            } else {
                std::future::pending().await
            }
        };
        smol::future::or(
            async { Input::Read(self.ctl.read(buf).await) },
            smol::future::or(stop, evict),
        )
        .await
    }

    /// Tells the client with `421` why the session ends: deadline `which` ran out, the
    /// gateway shuts down, or its place was needed.
    async fn close_for(&mut self, input: Input, which: Deadline) -> io::Result<()> {
        let text = match input {
            Input::TimedOut => {
                let text = self.deadline_text(which);
                log::info!("session peer={}: {text}", self.peer);
                text
            }
            Input::Shutdown => "The gateway is shutting down; closing the connection.".into(),
            Input::Evicted => {
                "Too many connections from your address are waiting to log in; closing this one."
                    .into()
            }
            Input::Read(_) => return Ok(()),
        };
        self.reply(Reply::new(421, text)).await
    }

    pub(super) async fn reply(&mut self, r: Reply) -> io::Result<()> {
        self.ctl.write_all(&r.encode()).await?;
        self.ctl.flush().await
    }

    /// Reads control lines while a transfer runs: `ABOR` (or the connection closing)
    /// sends on `abort`; other lines are kept for after the transfer. Never returns on
    /// its own after that, so a race with the transfer always ends with the transfer.
    pub(super) async fn watch_control(
        ctl: &mut Box<dyn Conn>,
        framer: &mut LineFramer,
        pending: &mut VecDeque<Frame>,
        abort: &smol::channel::Sender<()>,
        aborted: &std::sync::atomic::AtomicBool,
    ) {
        let mut buf = [0u8; 512];
        loop {
            while let Some(f) = framer.next_frame() {
                let is_abor =
                    matches!(&f, Frame::Line(l) if matches!(Command::parse(l), Ok(Command::Abor)));
                if is_abor || pending.len() >= MAX_PENDING {
                    aborted.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = abort.try_send(());
                    return std::future::pending().await;
                }
                pending.push_back(f);
            }
            match ctl.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = abort.try_send(());
                    return std::future::pending().await;
                }
                Ok(n) => framer.push(&buf[..n]),
            }
        }
    }

    /// The Sender and Pipe of the logged-in session.
    pub(super) fn login(&self) -> &Login {
        self.core
            .login()
            .expect("the core only asks for this work after login")
    }

    /// The namespace operations of this session's Pipe.
    pub(super) fn ops(&self) -> crate::ops::PipeOps<'_> {
        crate::ops::PipeOps {
            srv: &self.srv,
            login: self.login(),
        }
    }

    pub(super) fn data_timeout(&self) -> Duration {
        self.ftp.data_timeout
    }

    /// One command: the core decides, the driver carries it out. A data-connection
    /// command replaces the plan; a transfer uses it up, whatever its outcome.
    async fn dispatch(&mut self, cmd: Command) -> io::Result<Flow> {
        use Command as C;
        if matches!(cmd, C::Type(_)) {
            self.type_after_passive |= matches!(self.plan, Plan::Passive(_));
            self.type_seen = true;
        }
        if matches!(cmd, C::Pasv | C::Epsv(_) | C::Port(_) | C::Eprt(_)) {
            self.plan = Plan::None;
        }
        let transfer = matches!(
            cmd,
            C::Stor(_) | C::Appe(_) | C::Stou(_) | C::List(_) | C::Nlst(_) | C::Mlsd(_)
        );
        let action = self.core.handle(cmd);
        let flow = self.perform(action).await;
        if transfer {
            self.plan = Plan::None;
        }
        self.after_transfer = transfer;
        flow
    }

    async fn perform(&mut self, action: Action) -> io::Result<Flow> {
        let reply = match action {
            Action::Reply(r) => r,
            Action::Close(r) => {
                self.reply(r).await?;
                return Ok(Flow::Close);
            }
            Action::CheckPassword { user, password } => return self.pass(user, password).await,
            Action::StartTls => return self.start_tls().await,
            Action::LoggedOut(r) => {
                self.slot.demote();
                self.tls_sibling = None;
                self.login_from = Instant::now();
                self.plan = Plan::None;
                r
            }
            Action::Passive { announce } => self.passive(announce).await,
            Action::Active { target, reply } => {
                self.plan = Plan::Active(target);
                reply
            }
            Action::Upload(u) => self.upload(u).await?,
            Action::List { style, path, arg } => self.listing(style, path, arg).await?,
            Action::Query { query, path, arg } => self.query(query, path, &arg).await,
            Action::Change(c) => self.change(c).await,
            Action::Status => self.status(),
        };
        self.reply(reply).await?;
        Ok(Flow::Continue)
    }
}
