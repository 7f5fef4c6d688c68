//! `ftpgate serve`: the long-running process that owns the state directory.
//!
//! Start-up order: claim the state directory (a second daemon is refused), open the
//! database (waiting for a CLI command that holds it), recover the spool, bind every FTP
//! listener (a bad address fails before anything is served), replace a stale control
//! socket, then serve. SIGTERM/SIGINT stop accepting, tell idle sessions to go, let
//! running transfers finish within the grace period, and exit.

mod control;
mod http;
mod loops;
mod open;
mod sftp;
mod watch;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

use crate::auth::{AuthConfig, Authenticator};
use crate::forward::{self, Forwarder};
use crate::gateway::server::{self, Server};
use crate::spool::{self, Spool};
use crate::state::StateDir;
use crate::store::{self, Store};
use open::{adopt_destinations, compact_if_sparse, open_spool, open_store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "another ftpgate daemon is already running on {0}: stop it first, or use another --state"
    )]
    AlreadyRunning(String),
    #[error("{0}")]
    Store(#[from] store::Error),
    #[error("spool: {0}")]
    Spool(#[from] spool::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] crate::gateway::tls::Error),
    #[cfg(feature = "sftp")]
    #[error("SFTP: {0}")]
    HostKey(#[from] crate::gateway::hostkey::Error),
    #[cfg(not(feature = "sftp"))]
    #[error(
        "this ftpgate was built without SFTP (the sftp feature): serve without --sftp-listen, or use a full build"
    )]
    NoSftp,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// What `serve` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub ftp: crate::ftp::Config,
    /// What every session, FTP or SFTP, is held to.
    pub sessions: server::Config,
    pub limits: spool::Limits,
    /// Where to serve the status page and Prometheus metrics (`--http`, `--metrics`).
    pub http: Option<std::net::SocketAddr>,
    /// `--cert` and `--key`; without them `state/tls/` is used (generated if missing).
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `--sftp-listen`: SFTP is off when empty.
    pub sftp_listen: Vec<std::net::SocketAddr>,
    /// `--sftp-host-key`; without it `state/ssh_host_ed25519_key` (made if missing).
    pub sftp_host_key: Option<std::path::PathBuf>,
    /// `--keep-delivered-max`: remembered delivered entries the gateway keeps at most.
    pub keep_delivered_max: u64,
    /// `--offline-grace`: how long a Pipe fails before `pipe.offline`.
    pub offline_grace: Duration,
}

/// The FTPS certificate and ticket keys, unless TLS is off: `--cert`/`--key`, else
/// `STATE/tls/` (made for the host name and the listen addresses if missing).
fn load_tls(
    state: &StateDir,
    opts: &Options,
    listeners: &[smol::net::TcpListener],
) -> Result<Option<Arc<crate::gateway::tls::Tls>>, Error> {
    Ok(match opts.ftp.tls {
        crate::gateway::tls::Policy::Off => None,
        _ => {
            let mut names = crate::cert::default_names(&[]);
            for l in listeners {
                if let Ok(a) = l.local_addr()
                    && !a.ip().is_unspecified()
                {
                    names.push(a.ip().to_string());
                }
            }
            let (cert, key) = opts.cert.clone().unzip();
            let t = crate::gateway::tls::Tls::load(
                state,
                crate::gateway::tls::Source::new(state, cert, key, names),
            )?;
            log::info!("TLS certificate SHA-256 fingerprint {}", t.fingerprint());
            Some(Arc::new(t))
        }
    })
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the TLS certificate.
async fn wait_for_stop(
    signals: &mut Signals,
    tls: Option<&Arc<crate::gateway::tls::Tls>>,
    grace: Duration,
) {
    while let Some(Ok(sig)) = signals.next().await {
        if sig == Signal::Hup {
            // Reading the files is blocking: off the executor.
            let reloaded = match tls.cloned() {
                Some(t) => Some(smol::unblock(move || t.reload()).await),
                None => None,
            };
            match reloaded {
                Some(Ok(fp)) => {
                    log::info!("SIGHUP: reloaded the TLS certificate, SHA-256 fingerprint {fp}")
                }
                Some(Err(e)) => log::error!("SIGHUP: kept the old TLS certificate: {e}"),
                None => log::info!("SIGHUP: TLS is off, nothing to reload"),
            }
            continue;
        }
        log::info!(
            "received {sig:?}: no new sessions; running transfers have {}s to finish",
            grace.as_secs()
        );
        break;
    }
}

/// Everything the daemon listens on, bound before anything is served: a port in use
/// fails the start with a sentence, not the first connection.
struct Bound {
    ftp: Vec<smol::net::TcpListener>,
    http: Option<smol::net::TcpListener>,
    sftp: Option<sftp::Bound>,
    control: smol::net::unix::UnixListener,
    signals: Signals,
}

fn bind(state: &StateDir, opts: &Options) -> Result<Bound, Error> {
    let ftp = server::bind(&opts.ftp.listen).map_err(io_err("FTP listener"))?;
    let http = match opts.http {
        Some(addr) => Some(
            server::bind(&[addr])
                .map_err(io_err("HTTP listener (--http)"))?
                .remove(0),
        ),
        None => None,
    };
    Ok(Bound {
        ftp,
        http,
        sftp: sftp::bind(state, opts)?,
        control: control::bind_control(state)?,
        signals: Signals::new([Signal::Term, Signal::Int, Signal::Hup])
            .map_err(io_err("cannot watch signals"))?,
    })
}

/// The parts every session shares: the password checks, the forwarder and the session
/// table that knows them both.
fn assemble(
    state: &StateDir,
    opts: &Options,
    store: &Arc<Store>,
    spool: &Arc<Spool>,
    tls: &Option<Arc<crate::gateway::tls::Tls>>,
) -> (Arc<Server>, Arc<Authenticator>, Arc<Forwarder>) {
    let auth = Arc::new(Authenticator::new(store.clone(), AuthConfig::default()));
    let config = forward::Config {
        multipart_dir: Some(state.root().join("multipart")),
        ..forward::Config::default()
    };
    let forwarder = Forwarder::new(store.clone(), spool.clone(), config);
    let srv = Server::new(
        opts.sessions.clone(),
        store.clone(),
        auth.clone(),
        spool.clone(),
        tls.clone(),
    );
    let _ = srv.forwarder.set(forwarder.clone());
    (srv, auth, forwarder)
}

/// Runs the daemon until SIGTERM or SIGINT: the state opened (and recovered), every
/// listener bound, the parts assembled, served, then shut down in order.
pub fn run(state: &StateDir, opts: Options) -> Result<(), Error> {
    state.create().map_err(io_err(format!(
        "cannot create state directory {}",
        state.root().display()
    )))?;
    // Held until the daemon exits.
    let (_claim, store) = open_store(state)?;
    compact_if_sparse(&store);
    adopt_destinations(&store);
    let store = Arc::new(store);
    let spool = open_spool(state, &store, &opts)?;
    let mut bound = bind(state, &opts)?;
    let tls = load_tls(state, &opts, &bound.ftp)?;
    let (srv, auth, forwarder) = assemble(state, &opts, &store, &spool, &tls);
    let ftp = Arc::new(opts.ftp.clone());
    let sftp_addrs = bound.sftp.as_ref().map(|s| s.addrs.clone());
    let sftp_thread = bound.sftp.take().map(|s| s.start(&srv)).transpose()?;
    let started = std::time::Instant::now();
    let hooks = control::hooks(
        &auth,
        &forwarder,
        &spool,
        &srv,
        started,
        opts.keep_delivered_max,
    );
    log_ready(state, &bound.ftp, sftp_addrs.unwrap_or_default(), &spool);
    let hook_threads = crate::hooks::Hooks::start(store.clone())
        .map_err(io_err("cannot start the hooks' thread"))?;

    notify_systemd("READY=1");
    smol::block_on(async {
        for l in std::mem::take(&mut bound.ftp) {
            smol::spawn(crate::ftp::accept::accept_loop(srv.clone(), ftp.clone(), l)).detach();
        }
        let control_task = smol::spawn(control::control_loop(bound.control, store.clone(), hooks));
        let forward_task = smol::spawn(forwarder.clone().run());
        if let Some(listener) = bound.http.take() {
            let site = http::DaemonSite {
                store: store.clone(),
                srv: srv.clone(),
                fwd: forwarder.clone(),
                started,
                cap: opts.keep_delivered_max,
            };
            smol::spawn(crate::web::serve(listener, Arc::new(site))).detach();
        }
        let housekeeping = loops::start(&store, &spool, opts.keep_delivered_max);
        let events_task = smol::spawn(watch::run(watch::Watch {
            server: srv.clone(),
            forwarder: forwarder.clone(),
            spool: spool.clone(),
            store: store.clone(),
            offline_grace: opts.offline_grace,
        }));
        let grace = opts.sessions.shutdown_grace;
        wait_for_stop(&mut bound.signals, tls.as_ref(), grace).await;
        notify_systemd("STOPPING=1");
        srv.begin_shutdown();
        server::drain(&srv, grace).await;
        drop((control_task, forward_task, housekeeping, events_task));
        // What sessions recorded while draining (their failed logins, say).
        let srv_events = srv.clone();
        let store_events = store.clone();
        if let Err(e) = smol::unblock(move || srv_events.events.flush(&store_events)).await {
            log::warn!("recording the last events: {e}");
        }
    });
    drop(hook_threads);
    shut_down(state, &store, sftp_thread);
    Ok(())
}

/// The ready line: what listens where, and what the spool holds.
fn log_ready(
    state: &StateDir,
    ftp: &[smol::net::TcpListener],
    sftp_addrs: Vec<String>,
    spool: &Spool,
) {
    let addrs = addresses(ftp.iter().map(|l| l.local_addr()));
    let sftp = match sftp_addrs.is_empty() {
        true => String::new(),
        false => format!(" sftp={}", sftp_addrs.join(",")),
    };
    log::info!(
        "ftpgate {} ready: ftp={}{sftp} state={} control={} spool_bytes={}",
        env!("CARGO_PKG_VERSION"),
        addrs.join(","),
        state.root().display(),
        state.control_socket().display(),
        spool.used()
    );
}

/// After the sessions have drained: the SFTP thread ends, the control socket goes, and
/// the store is closed rather than dropped. Threads that outlive the executor (the
/// commit thread, the blocking pool) hold it, and a clean close spares the next start a
/// check of the whole file.
fn shut_down(state: &StateDir, store: &Store, sftp_thread: Option<std::thread::JoinHandle<()>>) {
    if let Some(t) = sftp_thread {
        let _ = t.join();
    }
    let _ = std::fs::remove_file(state.control_socket());
    if let Err(e) = store.close(Duration::from_secs(5)) {
        log::warn!("the state file was not closed cleanly ({e}): the next start checks it");
    }
    log::info!("ftpgate stopped");
}

/// The addresses listeners are bound to, for the ready line.
fn addresses(bound: impl Iterator<Item = io::Result<std::net::SocketAddr>>) -> Vec<String> {
    bound
        .filter_map(Result::ok)
        .map(|a| a.to_string())
        .collect()
}

/// Tells systemd (`Type=notify`) about our state: one datagram to `$NOTIFY_SOCKET`, a path
/// or an abstract name (`@...`). Does nothing outside systemd.
fn notify_systemd(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        let target = target.to_string_lossy();
        if let Some(name) = target.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), target.as_ref())?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        log::warn!("could not notify systemd ({state}): {e}");
    }
}
