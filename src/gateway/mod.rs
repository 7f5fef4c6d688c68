//! The gateway's protocol-independent core. FTP (`crate::ftp`) and SFTP (`crate::sftp`)
//! translate their protocol into namespace operations (`crate::ops`) and replies; what
//! they share lives here:
//!
//! * [`server`]: the session table every connection holds a place in, login scoring,
//!   counters, shutdown, and the store, spool and authenticator sessions work on;
//! * [`limits`] and [`bans`]: how many sessions, from where, and who is banned for now
//!   (pure);
//! * [`Refused`]: why a connection or a login is turned away, which each protocol says
//!   in its own words;
//! * [`tls`] and [`hostkey`]: the key material the daemon loads (FTPS certificate and
//!   ticket keys, the SSH host key);
//! * [`listing`]: the `ls -l` line both protocols' listings show.

pub mod bans;
#[cfg(feature = "sftp")]
pub mod hostkey;
pub mod limits;
pub mod listing;
pub mod server;
pub mod tls;

/// Why the gateway turns a connection or a login away (FTP answers `421` with the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("Too many failed logins from your address; try again later.")]
    Banned,
    #[error("The gateway is shutting down; try again shortly.")]
    ShuttingDown,
    #[error("Too many sessions from your address; try again later.")]
    TooManyFromAddress,
    #[error("Too many connections from your address are waiting to log in; try again later.")]
    TooManyWaitingFromAddress,
    #[error("Too many connections are waiting to log in; try again later.")]
    TooManyWaiting,
    /// This connection, still waiting to log in, gave its place to a newer one.
    #[error("Too many connections are waiting to log in; closing this one.")]
    MadeRoom,
    #[error("Too many sessions on this gateway; try again later.")]
    Full,
}
