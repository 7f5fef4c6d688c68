//! Starting the SFTP source, when this build has one (the default `sftp` feature) and
//! `--sftp-listen` asks for it. A build without it (for small routers: no SSH library,
//! no second runtime) refuses the flag with a sentence instead.

use std::sync::Arc;

use super::{Error, Options};
use crate::gateway::server::Server;
use crate::state::StateDir;

/// The SFTP listeners and host key, bound before anything is served.
pub(super) struct Bound {
    #[cfg(feature = "sftp")]
    listeners: Vec<std::net::TcpListener>,
    #[cfg(feature = "sftp")]
    key: crate::gateway::hostkey::HostKey,
    /// Never made without the feature.
    #[cfg(not(feature = "sftp"))]
    never: std::convert::Infallible,
    /// The addresses bound, for the ready line.
    pub(super) addrs: Vec<String>,
}

/// Binds `--sftp-listen` and loads (or makes) the host key; `None` when SFTP is off.
#[cfg(feature = "sftp")]
pub(super) fn bind(state: &StateDir, opts: &Options) -> Result<Option<Bound>, Error> {
    if opts.sftp_listen.is_empty() {
        return Ok(None);
    }
    let listeners =
        crate::sftp::server::bind(&opts.sftp_listen).map_err(super::io_err("SFTP listener"))?;
    let addrs = super::addresses(listeners.iter().map(|l| l.local_addr()));
    let key = crate::gateway::hostkey::load_or_create(state, opts.sftp_host_key.as_deref())?;
    Ok(Some(Bound {
        listeners,
        key,
        addrs,
    }))
}

#[cfg(not(feature = "sftp"))]
pub(super) fn bind(_: &StateDir, opts: &Options) -> Result<Option<Bound>, Error> {
    match opts.sftp_listen.is_empty() {
        true => Ok(None),
        false => Err(Error::NoSftp),
    }
}

impl Bound {
    /// Serves SFTP on a thread of its own; the host key's fingerprint goes to `status`.
    #[cfg(feature = "sftp")]
    pub(super) fn start(self, srv: &Arc<Server>) -> Result<std::thread::JoinHandle<()>, Error> {
        log::info!("SSH host key fingerprint {}", self.key.fingerprint);
        let _ = srv.ssh_fingerprint.set(self.key.fingerprint.clone());
        crate::sftp::server::start(srv.clone(), self.listeners, self.key)
            .map_err(super::io_err("cannot start the SFTP thread"))
    }

    #[cfg(not(feature = "sftp"))]
    pub(super) fn start(self, _: &Arc<Server>) -> Result<std::thread::JoinHandle<()>, Error> {
        match self.never {}
    }
}
