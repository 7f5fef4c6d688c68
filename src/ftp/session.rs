//! One control connection: reads framed lines, parses them, gates them on login, and
//! dispatches to the handlers in [`super::handlers`] (a plain `match`). The session owns
//! its state (login, working directory, transfer parameters, data plan); handlers return
//! the reply, which is sent here.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::Login;
use crate::ftp::datachan::{Conn, Plan};
use crate::ftp::proto::{Command, Frame, LineFramer, Reply, TransferType};
use crate::ftp::server::{Server, Slot};
use crate::vfs::VPath;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Most commands kept while a transfer runs (beyond that the client is misbehaving).
const MAX_PENDING: usize = 16;

pub struct Session {
    pub(super) srv: Arc<Server>,
    /// This connection's place in the session limits.
    pub(super) slot: Slot,
    /// When the connection (or, after `REIN`, the new login) started: login must be
    /// complete within the login timeout from here.
    pub(super) login_from: Instant,
    /// When the last complete command line arrived (the idle timeout counts from here).
    last_line: Instant,
    /// When the first byte of a line not yet complete arrived.
    pub(super) line_started: Option<Instant>,
    pub(super) ctl: Box<dyn Conn>,
    pub(super) framer: LineFramer,
    /// Lines received during a transfer, handled after it.
    pub(super) pending: VecDeque<Frame>,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    pub(super) user: Option<String>,
    pub(super) login: Option<Login>,
    /// The server's count of admin changes when `login` was last checked.
    pub(super) access_seen: u64,
    pub(super) failures: u32,
    pub(super) cwd: VPath,
    pub(super) ttype: TransferType,
    pub(super) rest: Option<u64>,
    pub(super) rnfr: Option<VPath>,
    pub(super) plan: Plan,
    pub(super) epsv_all: bool,
    pub(super) uploads: u64,
    pub(super) bytes: u64,
    /// The control connection is TLS.
    pub(super) tls: bool,
    /// PROT P: data connections are TLS.
    pub(super) prot_p: bool,
    /// Embedded in this session's TLS tickets; data connections must bring it back.
    pub(super) token: [u8; 16],
}

enum Input {
    Read(io::Result<usize>),
    TimedOut,
    Shutdown,
    Evicted,
}

/// Which deadline ran out.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    Login,
    Line,
    Idle,
}

impl Session {
    pub fn new(
        srv: Arc<Server>,
        slot: Slot,
        ctl: Box<dyn Conn>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Session {
        let now = Instant::now();
        Session {
            srv,
            slot,
            login_from: now,
            last_line: now,
            line_started: None,
            ctl,
            framer: LineFramer::new(),
            pending: VecDeque::new(),
            peer,
            local,
            user: None,
            login: None,
            access_seen: 0,
            failures: 0,
            cwd: VPath::root(),
            ttype: TransferType::Ascii,
            rest: None,
            rnfr: None,
            plan: Plan::None,
            epsv_all: false,
            uploads: 0,
            bytes: 0,
            tls: false,
            prot_p: false,
            token: crate::ftp::tls::session_token(),
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
                        Ok(cmd) => self.dispatch(cmd).await,
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
            self.login.as_ref().map_or("-", |l| l.sender.name.as_str()),
            self.login.as_ref().map_or("-", |l| l.pipe.id.as_str()),
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
        let mut buf = [0u8; 2048];
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
            let shutdown = self.srv.shutdown.clone();
            // Only a connection still waiting to log in can be evicted.
            let evicted = self.slot.evicted.clone();
            let waiting = self.login.is_none();
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
            let input = smol::future::or(
                async { Input::Read(self.ctl.read(&mut buf).await) },
                smol::future::or(stop, evict),
            )
            .await;
            match input {
                Input::Read(Ok(0)) => return Ok(None),
                Input::Read(Ok(n)) => {
                    self.framer.push(&buf[..n]);
                    self.line_started.get_or_insert_with(Instant::now);
                }
                Input::Read(Err(e)) => return Err(e),
                Input::TimedOut => {
                    let text = self.deadline_text(which);
                    log::info!("session peer={}: {text}", self.peer);
                    self.reply(Reply::new(421, text)).await?;
                    return Ok(None);
                }
                Input::Shutdown => {
                    self.reply(Reply::new(
                        421,
                        "The gateway is shutting down; closing the connection.",
                    ))
                    .await?;
                    return Ok(None);
                }
                Input::Evicted => {
                    self.reply(Reply::new(
                        421,
                        "Too many connections from your address are waiting to log in; closing this one.",
                    ))
                    .await?;
                    return Ok(None);
                }
            }
        }
    }

    /// The first deadline to come: logging in within the login timeout from the
    /// connection's start; finishing a started line within the login timeout from its
    /// first byte; a complete command within the idle timeout of the last one. Bytes that
    /// do not finish a line move none of them.
    fn deadline(&self) -> (Deadline, Instant) {
        let config = &self.srv.config;
        let mut next = if self.login.is_some() {
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

    fn deadline_text(&self, which: Deadline) -> String {
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

    /// The Pipe id and settings of the logged-in session.
    pub(super) fn login(&self) -> &Login {
        self.login
            .as_ref()
            .expect("dispatch only runs these handlers after login")
    }

    /// Resolves a client path against the working directory.
    pub(super) fn resolve(&self, arg: &str) -> Result<VPath, Reply> {
        self.cwd
            .resolve(arg)
            .map_err(|e| crate::ftp::errors::path(&e))
    }

    pub(super) fn data_timeout(&self) -> Duration {
        self.srv.config.data_timeout
    }

    async fn dispatch(&mut self, cmd: Command) -> io::Result<Flow> {
        use Command as C;
        let open = matches!(
            cmd,
            C::User(_)
                | C::Pass(_)
                | C::Acct
                | C::Quit
                | C::Rein
                | C::Auth(_)
                | C::Pbsz(_)
                | C::Prot(_)
                | C::Ccc
                | C::Feat
                | C::Opts(_)
                | C::Syst
                | C::Noop
                | C::Help
        );
        if self.login.is_none() && !open {
            self.reply(Reply::new(530, "Please log in with USER and PASS first."))
                .await?;
            return Ok(Flow::Continue);
        }
        // A pending rename is only good for the very next command; a restart marker
        // only for the next transfer (data-channel setup may come in between).
        if !matches!(cmd, C::Rnto(_)) {
            self.rnfr = None;
        }
        if !matches!(
            cmd,
            C::Rest(_)
                | C::Stor(_)
                | C::Appe(_)
                | C::Stou(_)
                | C::Pasv
                | C::Epsv(_)
                | C::Port(_)
                | C::Eprt(_)
                | C::Type(_)
                | C::Noop
        ) {
            self.rest = None;
        }
        if matches!(cmd, C::User(_) | C::Pass(_))
            && let Some(refusal) = self.tls_required_for_login()
        {
            self.reply(refusal).await?;
            return Ok(Flow::Continue);
        }
        let reply = match cmd {
            C::User(name) => self.user(name),
            C::Pass(pw) => return self.pass(pw).await,
            C::Acct => Reply::new(202, "No account is needed on this gateway."),
            C::Quit => {
                self.reply(Reply::new(221, "Goodbye.")).await?;
                return Ok(Flow::Close);
            }
            C::Rein => self.rein(),
            C::Auth(m) => return self.auth(&m).await,
            C::Pbsz(size) => self.pbsz(&size),
            C::Prot(level) => self.prot(&level),
            C::Ccc => Reply::new(
                533,
                "CCC is refused: the control connection stays as it is.",
            ),
            C::Feat => self.feat(),
            C::Opts(arg) => self.opts(&arg),
            C::Syst => Reply::new(215, "UNIX Type: L8"),
            C::Noop => Reply::new(200, "OK."),
            C::Help => self.help(),
            C::Stat(None) => self.status(),
            C::Stat(Some(arg)) => self.stat_path(&arg).await,
            C::Size(arg) => self.size(&arg).await,
            C::Mdtm(arg) => self.mdtm(&arg).await,
            C::Mlst(arg) => self.mlst(arg.as_deref()).await,
            C::Pwd => self.pwd(),
            C::Cwd(arg) => self.cwd(&arg).await,
            C::Cdup => self.cwd("..").await,
            C::List(arg) => {
                self.listing(crate::ftp::listing::Style::Long, arg.as_deref())
                    .await?
            }
            C::Nlst(arg) => {
                self.listing(crate::ftp::listing::Style::Names, arg.as_deref())
                    .await?
            }
            C::Mlsd(arg) => {
                self.listing(crate::ftp::listing::Style::Machine, arg.as_deref())
                    .await?
            }
            C::Type(t) => {
                self.ttype = t;
                Reply::new(
                    200,
                    match t {
                        TransferType::Ascii => "Type set to A (bytes are stored exactly as sent).",
                        TransferType::Image => "Type set to I.",
                    },
                )
            }
            C::Mode => Reply::new(200, "Mode set to S."),
            C::Stru => Reply::new(200, "Structure set to F."),
            C::Allo => Reply::new(200, "ALLO noted; space is checked when the upload starts."),
            C::Rest(n) => {
                self.rest = Some(n);
                Reply::new(
                    350,
                    format!("Restarting at {n}. Send STOR or APPE to continue."),
                )
            }
            C::Stor(arg) => {
                self.upload(super::handlers::upload::Kind::Stor, Some(arg))
                    .await?
            }
            C::Appe(arg) => {
                self.upload(super::handlers::upload::Kind::Appe, Some(arg))
                    .await?
            }
            C::Stou(arg) => {
                self.upload(super::handlers::upload::Kind::Stou, arg)
                    .await?
            }
            C::Mkd(arg) => self.mkd(&arg).await,
            C::Rmd(arg) => self.rmd(&arg).await,
            C::Dele(arg) => self.dele(&arg).await,
            C::Rnfr(arg) => self.rnfr(&arg).await,
            C::Rnto(arg) => self.rnto(&arg).await,
            C::Mfmt { mtime, path } => self.mfmt(mtime, &path).await,
            C::Pasv => self.pasv().await,
            C::Epsv(arg) => self.epsv(arg.as_deref()).await,
            C::Port(addr) | C::Eprt(addr) => self.active(addr),
            C::Abor => Reply::new(225, "No transfer to abort."),
            C::Retr => Reply::new(
                550,
                "Downloads are disabled on this gateway: it only accepts uploads.",
            ),
            C::Site => Reply::new(502, "SITE commands are not supported on this gateway."),
            C::Unknown(verb) => Reply::new(502, format!("{verb}: command not implemented.")),
        };
        self.reply(reply).await?;
        Ok(Flow::Continue)
    }
}
