//! What the core decides: the [`Action`] for the driver, and the values it carries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::ftp::listing::Style;
use crate::ftp::proto::Reply;
use crate::gateway::tls::Policy;
use crate::secret::Secret;
use crate::store::namespace::Overwrite;
use crate::vfs::VPath;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

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

pub use crate::ops::Change;

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
