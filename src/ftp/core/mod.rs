//! The session's state and every decision it makes, with no I/O (sans-IO, in the manner
//! of rustls's and quinn-proto's state machines).
//!
//! [`Core::handle`] takes one parsed command and returns an [`Action`]: a reply to send,
//! or work for the driver ([`super::session`]), which owns the sockets, TLS, timers and
//! blocking calls. When that work is done the driver tells the core what came of it
//! ([`Core::logged_in`], [`Core::login_failed`], [`Core::tls_started`], [`Core::entered`],
//! [`Core::rename_from`], [`Core::refreshed`], [`Core::revoked`]), and the core answers
//! with the reply. So the login gate, the lifetimes of `REST` and `RNFR`, the order of
//! `AUTH`/`PBSZ`/`PROT`, the TLS policies and the upload rules are all tested here without
//! a socket (`tests.rs`).

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::auth::{Login, Refusal};
use crate::ftp::listing::Style;
use crate::ftp::proto::addr::{canonical, check_active};
use crate::ftp::proto::{Command, Reply, TransferType};
use crate::ftp::tls::Policy;
use crate::names::Overwrite;
use crate::secret::Secret;
use crate::vfs::VPath;

mod replies;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Failed logins before the connection is closed.
pub const MAX_FAILURES: u32 = 3;

/// What a session's decisions depend on, fixed for its connection.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--tls`; `tls_available`: a certificate is loaded.
    pub tls: Policy,
    pub tls_available: bool,
    /// `--active on|off`.
    pub active: bool,
    /// `--passive-address`, announced in `PASV` replies instead of `local`.
    pub passive_address: Option<Ipv4Addr>,
    /// The control connection's local and remote addresses.
    pub local: IpAddr,
    pub peer: IpAddr,
}

/// How an upload continues what is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// A new body.
    No,
    /// `REST n` then `STOR`: from byte `n` of the partial or of the queued file.
    At(u64),
    /// `APPE`: at the end of the partial or of the queued file.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Stor,
    Appe,
    Stou,
}

/// An upload the core allows; the driver checks it against the store and the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub kind: UploadKind,
    pub path: VPath,
    pub policy: Overwrite,
    pub resume: Resume,
}

/// A change to the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Mkd(VPath),
    Rmd(VPath),
    Dele(VPath),
    Rename { from: VPath, to: VPath },
    Mfmt { path: VPath, mtime: u64 },
}

/// A question about one path, answered from the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Size,
    Mdtm,
    Mlst,
    /// `STAT path`: a listing over the control connection.
    Stat,
    /// `CWD`: the driver checks that it is a directory, then calls [`Core::entered`].
    Cwd,
    /// `RNFR`: the driver checks that it exists, then calls [`Core::rename_from`].
    Rnfr,
}

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// Score the attempt, check the password off the executor, then call
    /// [`Core::logged_in`] or [`Core::login_failed`].
    CheckPassword {
        user: String,
        password: Secret,
    },
    /// Send `234`, drop what the client sent after `AUTH`, run the handshake, then call
    /// [`Core::tls_started`] (or close on failure).
    StartTls,
    /// The login was reset (`REIN`): give back the logged-in slot, restart the login
    /// deadline, drop the data plan, then send the reply.
    LoggedOut(Reply),
    /// Bind a passive listener; reply with [`passive_reply`].
    Passive {
        announce: Option<Ipv4Addr>,
    },
    /// Connect to this address for the next transfer; the reply says it was accepted.
    Active {
        target: SocketAddr,
        reply: Reply,
    },
    Upload(Upload),
    List {
        style: Style,
        path: VPath,
        arg: Option<String>,
    },
    Query {
        query: Query,
        path: VPath,
        arg: String,
    },
    Change(Change),
    /// `STAT`: the driver knows the counters.
    Status,
}

/// The reply to a bound passive listener: `227` with `announce`, else `229`.
pub fn passive_reply(announce: Option<Ipv4Addr>, port: u16) -> Reply {
    use crate::ftp::proto::addr::{epsv_text, pasv_text};
    match announce {
        Some(ip) => Reply::new(227, pasv_text(ip, port)),
        None => Reply::new(229, epsv_text(port)),
    }
}

/// One control connection's state.
pub struct Core {
    settings: Settings,
    user: Option<String>,
    login: Option<Login>,
    failures: u32,
    cwd: VPath,
    ttype: TransferType,
    rest: Option<u64>,
    rnfr: Option<VPath>,
    epsv_all: bool,
    /// The control connection is TLS.
    tls: bool,
    /// `PROT P`: data connections are TLS.
    prot_p: bool,
}

impl Core {
    pub fn new(settings: Settings) -> Core {
        Core {
            settings,
            user: None,
            login: None,
            failures: 0,
            cwd: VPath::root(),
            ttype: TransferType::Ascii,
            rest: None,
            rnfr: None,
            epsv_all: false,
            tls: false,
            prot_p: false,
        }
    }

    pub fn login(&self) -> Option<&Login> {
        self.login.as_ref()
    }

    pub fn tls(&self) -> bool {
        self.tls
    }

    pub fn prot_p(&self) -> bool {
        self.prot_p
    }

    pub fn cwd(&self) -> &VPath {
        &self.cwd
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Decides what one command does.
    pub fn handle(&mut self, cmd: Command) -> Action {
        use Command as C;
        if self.login.is_none() && !is_open(&cmd) {
            return reply(530, "Please log in with USER and PASS first.");
        }
        // A pending rename is only good for the very next command; a restart marker
        // only for the next transfer (data-channel setup may come in between).
        if !matches!(cmd, C::Rnto(_)) {
            self.rnfr = None;
        }
        if !keeps_rest(&cmd) {
            self.rest = None;
        }
        if matches!(cmd, C::User(_) | C::Pass(_))
            && self.settings.tls == Policy::Required
            && !self.tls
        {
            return reply(530, "TLS is required on this gateway: send AUTH TLS first.");
        }
        match cmd {
            C::User(name) => self.user(name),
            C::Pass(password) => self.pass(password),
            C::Quit => Action::Close(Reply::new(221, "Goodbye.")),
            C::Rein => self.rein(),
            C::Auth(m) => self.auth(&m),
            C::Pbsz(_) if !self.tls => reply(503, "PBSZ needs AUTH TLS first."),
            C::Pbsz(_) => reply(200, "PBSZ=0"),
            C::Prot(level) => self.prot(&level),
            C::Feat => Action::Reply(replies::feat(self.settings.tls_available)),
            C::Opts(arg) => Action::Reply(replies::opts(&arg)),
            C::Help => Action::Reply(replies::help()),
            C::Stat(None) => Action::Status,
            C::Pwd => Action::Reply(replies::pwd(&self.cwd)),
            C::Type(t) => {
                self.ttype = t;
                Action::Reply(replies::type_set(t))
            }
            C::Rest(n) => {
                self.rest = Some(n);
                reply(
                    350,
                    format!("Restarting at {n}. Send STOR or APPE to continue."),
                )
            }
            C::Stor(a) => self.upload(UploadKind::Stor, Some(a)),
            C::Appe(a) => self.upload(UploadKind::Appe, Some(a)),
            C::Stou(a) => self.upload(UploadKind::Stou, a),
            C::List(a) => self.list(Style::Long, a),
            C::Nlst(a) => self.list(Style::Names, a),
            C::Mlsd(a) => self.list(Style::Machine, a),
            C::Stat(Some(a)) => self.query(Query::Stat, a),
            C::Size(a) => self.query(Query::Size, a),
            C::Mdtm(a) => self.query(Query::Mdtm, a),
            C::Mlst(a) => self.query(Query::Mlst, a.unwrap_or_else(|| ".".into())),
            C::Cwd(a) => self.query(Query::Cwd, a),
            C::Cdup => self.query(Query::Cwd, "..".into()),
            C::Rnfr(a) => self.query(Query::Rnfr, a),
            C::Rnto(a) => self.rnto(&a),
            C::Mkd(a) => self.change(&a, Change::Mkd),
            C::Rmd(a) => self.change(&a, Change::Rmd),
            C::Dele(a) => self.change(&a, Change::Dele),
            C::Mfmt { mtime, path } => self.change(&path, |path| Change::Mfmt { path, mtime }),
            C::Pasv => self.pasv(),
            C::Epsv(arg) => self.epsv(arg.as_deref()),
            C::Port(target) | C::Eprt(target) => self.active(target),
            other => Action::Reply(replies::fixed(&other)),
        }
    }

    fn user(&mut self, name: String) -> Action {
        if self.login.is_some() {
            return reply(503, "Already logged in; send REIN first to log in again.");
        }
        self.user = Some(name);
        // The same answer for every name: nothing tells which exist.
        reply(331, "Password required.")
    }

    fn pass(&mut self, password: Secret) -> Action {
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

    fn rein(&mut self) -> Action {
        self.user = None;
        self.login = None;
        self.cwd = VPath::root();
        self.rest = None;
        self.rnfr = None;
        self.epsv_all = false;
        // RFC 4217: REIN keeps the TLS of the control connection as it is.
        Action::LoggedOut(Reply::new(220, "Session reset; log in again."))
    }

    fn auth(&mut self, mechanism: &str) -> Action {
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

    fn prot(&mut self, level: &str) -> Action {
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
    fn clear_data_refused(&self) -> Option<Action> {
        (self.settings.tls == Policy::Required && !self.prot_p).then(|| {
            reply(
                521,
                "Data connections must be protected on this gateway: send PROT P first.",
            )
        })
    }

    fn resolve(&self, arg: &str) -> Result<VPath, Action> {
        self.cwd
            .resolve(arg)
            .map_err(|e| Action::Reply(crate::ftp::errors::path(&e)))
    }

    fn upload(&mut self, kind: UploadKind, arg: Option<String>) -> Action {
        let rest = self.rest.take();
        if let Some(refused) = self.clear_data_refused() {
            return refused;
        }
        let configured = self
            .login
            .as_ref()
            .map_or(Overwrite::Replace, |l| l.pipe.overwrite);
        let target = match (kind, arg) {
            (UploadKind::Stou, None) => Ok((
                self.cwd
                    .child(&format!("ftpgate-{}.dat", crate::names::random_token(10))),
                Overwrite::KeepBoth,
            )),
            (UploadKind::Stou, Some(a)) => self.resolve(&a).map(|p| (p, Overwrite::KeepBoth)),
            // Appending continues the same file; only `refuse` forbids touching it.
            (UploadKind::Appe, Some(a)) => self.resolve(&a).map(|p| {
                let policy = match configured {
                    Overwrite::Refuse => Overwrite::Refuse,
                    _ => Overwrite::Replace,
                };
                (p, policy)
            }),
            (_, Some(a)) => self.resolve(&a).map(|p| (p, configured)),
            (_, None) => Err(reply(501, "A file name is needed.")),
        };
        let (path, policy) = match target {
            Ok(t) => t,
            Err(refused) => return refused,
        };
        let resume = match (kind, rest) {
            (UploadKind::Appe, _) => Resume::End,
            (_, Some(n)) if n > 0 => Resume::At(n),
            _ => Resume::No,
        };
        Action::Upload(Upload {
            kind,
            path,
            policy,
            resume,
        })
    }

    fn list(&mut self, style: Style, arg: Option<String>) -> Action {
        if let Some(refused) = self.clear_data_refused() {
            return refused;
        }
        match self.resolve(arg.as_deref().unwrap_or(".")) {
            Ok(path) => Action::List { style, path, arg },
            Err(refused) => refused,
        }
    }

    fn query(&mut self, query: Query, arg: String) -> Action {
        match self.resolve(&arg) {
            Ok(path) => Action::Query { query, path, arg },
            Err(refused) => refused,
        }
    }

    /// `CWD`: the path is a directory.
    pub fn entered(&mut self, path: VPath) -> Reply {
        let text = format!("Directory changed to {path}.");
        self.cwd = path;
        Reply::new(250, text)
    }

    /// `RNFR`: the path exists; the next command may rename it.
    pub fn rename_from(&mut self, path: VPath) -> Reply {
        let text = format!("{path} exists; send RNTO with the new name.");
        self.rnfr = Some(path);
        Reply::new(350, text)
    }

    fn rnto(&mut self, arg: &str) -> Action {
        let Some(from) = self.rnfr.take() else {
            return reply(503, "Send RNFR first.");
        };
        match self.resolve(arg) {
            Ok(to) => Action::Change(Change::Rename { from, to }),
            Err(refused) => refused,
        }
    }

    fn change(&mut self, arg: &str, make: impl FnOnce(VPath) -> Change) -> Action {
        match self.resolve(arg) {
            Ok(path) => Action::Change(make(path)),
            Err(refused) => refused,
        }
    }

    fn pasv(&mut self) -> Action {
        if self.epsv_all {
            return reply(503, "EPSV ALL was sent: only EPSV may be used now.");
        }
        match (
            self.settings.passive_address,
            canonical(self.settings.local),
        ) {
            (Some(ip), _) | (None, IpAddr::V4(ip)) => Action::Passive { announce: Some(ip) },
            (None, IpAddr::V6(_)) => reply(522, "PASV works only over IPv4; use EPSV (1)."),
        }
    }

    fn epsv(&mut self, arg: Option<&str>) -> Action {
        match arg.map(|a| a.trim().to_ascii_uppercase()) {
            Some(a) if a == "ALL" => {
                self.epsv_all = true;
                reply(200, "EPSV ALL accepted: only EPSV from now on.")
            }
            Some(a) if a != "1" && a != "2" => {
                reply(522, "Network protocol not supported, use (1,2).")
            }
            _ => Action::Passive { announce: None },
        }
    }

    /// `PORT` and `EPRT`: checked before anything connects.
    fn active(&mut self, target: SocketAddr) -> Action {
        if !self.settings.active {
            return reply(
                502,
                "Active mode is disabled on this gateway; use PASV or EPSV.",
            );
        }
        if self.epsv_all {
            return reply(503, "EPSV ALL was sent: only EPSV may be used now.");
        }
        if let Err(why) = check_active(target, self.settings.peer) {
            log::warn!(
                "refused active-mode target {target} from {}: {why}",
                self.settings.peer
            );
            return reply(501, format!("Refused: {why}."));
        }
        Action::Active {
            target,
            reply: Reply::new(200, "Active mode target accepted."),
        }
    }
}

fn reply(code: u16, text: impl Into<String>) -> Action {
    Action::Reply(Reply::new(code, text))
}

/// Commands allowed before login.
fn is_open(cmd: &Command) -> bool {
    use Command as C;
    matches!(
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
    )
}

/// Commands after which a restart marker (`REST`) still holds.
fn keeps_rest(cmd: &Command) -> bool {
    use Command as C;
    matches!(
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
    )
}
