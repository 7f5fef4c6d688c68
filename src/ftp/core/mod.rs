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

use crate::auth::Login;
use crate::ftp::listing::Style;
use crate::ftp::proto::{Command, Reply, TransferType};
use crate::gateway::tls::Policy;
use crate::vfs::VPath;

mod access;
mod action;
mod replies;
mod transfer;

pub use action::{
    Action, Change, Flow, Query, Resume, Settings, Upload, UploadKind, passive_reply,
};

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
    /// What the client called itself (`CLNT`), for the Sender's last login.
    client: Option<String>,
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
            client: None,
        }
    }

    /// The client's name, if it sent `CLNT`.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
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

    /// Decides what one command does: one arm per command (most hand over to a
    /// handler in `ftp::handlers`), so the table of commands stays in one place.
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
            C::Clnt(name) => {
                // Kept short: it is shown, never trusted.
                self.client = Some(name.trim().chars().take(128).collect());
                Action::Reply(Reply::new(200, "Noted."))
            }
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
            C::Mkd(a) => self.change(&a, Change::Mkdir),
            C::Rmd(a) => self.change(&a, Change::Rmdir),
            C::Dele(a) => self.change(&a, Change::Delete),
            C::Mfmt { mtime, path } => self.change(&path, |path| Change::SetMtime { path, mtime }),
            C::Pasv => self.pasv(),
            C::Epsv(arg) => self.epsv(arg.as_deref()),
            C::Port(target) | C::Eprt(target) => self.active(target),
            other => Action::Reply(replies::fixed(&other)),
        }
    }

    fn resolve(&self, arg: &str) -> Result<VPath, Action> {
        self.cwd
            .resolve(arg)
            .map_err(|e| Action::Reply(crate::ftp::errors::path(&e)))
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
            | C::Clnt(_)
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
