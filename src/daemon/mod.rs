//! `ftpgate serve`: the long-running process that owns the state directory.
//!
//! Start-up order: claim the state directory (a second daemon is refused), open the
//! database (waiting for a CLI command that holds it), recover the spool, bind every FTP
//! listener (a bad address fails before anything is served), replace a stale control
//! socket, then serve. SIGTERM/SIGINT stop accepting, tell idle sessions to go, let
//! running transfers finish within the grace period, and exit.

mod control;
mod loops;
mod sftp;

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
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// `--cert` and `--key`; without them `state/tls/` is used (generated if missing).
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `--sftp-listen`: SFTP is off when empty.
    pub sftp_listen: Vec<std::net::SocketAddr>,
    /// `--sftp-host-key`; without it `state/ssh_host_ed25519_key` (made if missing).
    pub sftp_host_key: Option<std::path::PathBuf>,
    /// `--keep-delivered-max`: remembered delivered entries the gateway keeps at most.
    pub keep_delivered_max: u64,
}

/// How long the daemon waits for a CLI command that holds the database (it opens the
/// file itself when no daemon answers, for as long as its one change takes).
const CLI_PATIENCE: Duration = Duration::from_secs(30);

/// Claims the state directory (a second daemon is refused here, whatever it finds of
/// the database's own lock) and opens the store, waiting for a CLI command that holds it.
fn open_store(state: &StateDir) -> Result<(std::fs::File, Store), Error> {
    let claim = state
        .claim()
        .map_err(io_err(format!("cannot lock {}", state.root().display())))?
        .ok_or_else(|| Error::AlreadyRunning(state.root().display().to_string()))?;
    let deadline = std::time::Instant::now() + CLI_PATIENCE;
    let mut said = false;
    loop {
        match Store::open(&state.database()) {
            Err(store::Error::InUse(_)) if std::time::Instant::now() < deadline => {
                if !std::mem::replace(&mut said, true) {
                    log::info!("the state file is in use by an ftpgate command; waiting for it");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok((claim, other?)),
        }
    }
}

/// Pipes into a directory made before destinations carried a marker get one now, if their
/// directory is there (see `forward::dir`); from then on a missing marker holds the Pipe
/// as "destination not mounted?". One made while its directory was missing is adopted
/// the same way once the directory is there at a start.
fn adopt_destinations(store: &Store) {
    // A read first: a durable write at every start costs 1.6 MiB of resident memory.
    let pending = store.read().and_then(|r| {
        Ok(store::View::pipes(&r)?
            .iter()
            .any(|p| !p.dest.is_s3() && !p.dest_marked))
    });
    if !matches!(pending, Ok(true)) {
        return;
    }
    let adopted = store.write(|w| {
        let mut adopted = Vec::new();
        for mut p in store::View::pipes(w)? {
            if p.dest.is_s3() || p.dest_marked {
                continue;
            }
            match crate::forward::dir::mark(&mut p) {
                Ok(true) => {
                    w.put_pipe(&p)?;
                    adopted.push(format!("{} ({})", p.id, p.dest));
                }
                Ok(false) => {}
                Err(e) => log::warn!(
                    "pipe {}: cannot write the marker into {}: {e}",
                    p.id,
                    p.dest
                ),
            }
        }
        Ok(adopted)
    });
    match adopted {
        Ok(a) if !a.is_empty() => log::info!(
            "left a destination marker in {}: from now on a missing marker (an unmounted disk) holds deliveries",
            a.join(", ")
        ),
        Ok(_) => {}
        Err(e) => log::warn!("adopting destinations: {e}"),
    }
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

/// Serves Prometheus metrics on `listener`: the status view and the login counters.
fn serve_metrics(
    listener: smol::net::TcpListener,
    store: Arc<Store>,
    srv: Arc<Server>,
    fwd: Arc<Forwarder>,
    started: std::time::Instant,
    cap: u64,
) {
    let view = Arc::new(move || {
        use std::sync::atomic::Ordering;
        let mut v = store
            .read()
            .and_then(|r| crate::admin::status::from_store(&r))
            .unwrap_or_default();
        control::live_status(&mut v, &srv, &fwd, started, cap);
        let c = crate::metrics::Counters {
            logins_ok: srv.stats.logins_ok.load(Ordering::Relaxed),
            logins_failed: srv.stats.logins_failed.load(Ordering::Relaxed),
        };
        (v, c)
    });
    smol::spawn(crate::metrics::serve(listener, view)).detach();
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

/// Compacts the state file when more than half of it is free. Never while serving:
/// compaction holds the database for its whole run.
fn compact_if_sparse(store: &Store) {
    match store.compact_if_sparse() {
        Ok(Some((before, after))) => log::info!(
            "state file compacted from {:.1} to {:.1} MiB (more than half of it was free)",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        ),
        Ok(None) => {}
        Err(e) => log::warn!("state file not compacted: {e}"),
    }
}

/// Opens the spool (recovering what a crash left) and gives it its reserve: the 8 MiB
/// handed to the database the day the disk fills.
fn open_spool(state: &StateDir, store: &Arc<Store>, opts: &Options) -> Result<Arc<Spool>, Error> {
    let spool = Spool::open(state, store.clone(), opts.limits.clone())?;
    {
        let spool = Arc::downgrade(&spool);
        store.on_disk_full(move || {
            if let Some(s) = spool.upgrade() {
                s.release_reserve();
            }
        });
    }
    if let Ok(false) | Err(_) = spool.restore_reserve() {
        log::warn!(
            "the spool's disk has no room for its {} MiB reserve: running without one until there is (a full disk may then keep deliveries from being recorded)",
            crate::spool::reserve::Reserve::BYTES >> 20
        );
    }
    Ok(spool)
}

/// Runs the daemon until SIGTERM or SIGINT.
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
    let listeners = server::bind(&opts.ftp.listen).map_err(io_err("FTP listener"))?;
    let metrics = match opts.metrics {
        Some(addr) => Some(
            server::bind(&[addr])
                .map_err(io_err("metrics listener"))?
                .remove(0),
        ),
        None => None,
    };
    let sftp = sftp::bind(state, &opts)?;
    let sftp_addrs = sftp.as_ref().map(|s| s.addrs.clone()).unwrap_or_default();
    let control = control::bind_control(state)?;
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])
        .map_err(io_err("cannot watch signals"))?;
    let tls = load_tls(state, &opts, &listeners)?;
    let auth = Arc::new(Authenticator::new(store.clone(), AuthConfig::default()));
    let grace = opts.sessions.shutdown_grace;
    let forwarder = Forwarder::new(
        store.clone(),
        spool.clone(),
        forward::Config {
            multipart_dir: Some(state.root().join("multipart")),
            ..forward::Config::default()
        },
    );
    let ftp = Arc::new(opts.ftp);
    let srv = Server::new(
        opts.sessions,
        store.clone(),
        auth.clone(),
        spool.clone(),
        tls.clone(),
    );
    let _ = srv.forwarder.set(forwarder.clone());
    let sftp_thread = sftp.map(|s| s.start(&srv)).transpose()?;
    let started = std::time::Instant::now();
    let hooks = control::hooks(
        &auth,
        &forwarder,
        &spool,
        &srv,
        started,
        opts.keep_delivered_max,
    );

    let addrs = addresses(listeners.iter().map(|l| l.local_addr()));
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

    notify_systemd("READY=1");
    smol::block_on(async {
        for l in listeners {
            smol::spawn(crate::ftp::accept::accept_loop(srv.clone(), ftp.clone(), l)).detach();
        }
        let control_task = smol::spawn(control::control_loop(control, store.clone(), hooks));
        let forward_task = smol::spawn(forwarder.clone().run());
        if let Some(listener) = metrics {
            let (store, srv, fwd) = (store.clone(), srv.clone(), forwarder.clone());
            serve_metrics(listener, store, srv, fwd, started, opts.keep_delivered_max);
        }
        let housekeeping = loops::start(&store, &spool, opts.keep_delivered_max);
        wait_for_stop(&mut signals, tls.as_ref(), grace).await;
        notify_systemd("STOPPING=1");
        srv.begin_shutdown();
        server::drain(&srv, grace).await;
        drop(control_task);
        drop(forward_task);
        drop(housekeeping);
    });
    if let Some(t) = sftp_thread {
        let _ = t.join();
    }
    let _ = std::fs::remove_file(state.control_socket());
    // Threads that outlive the executor (the commit thread, the blocking pool) hold the
    // store, so it is closed here rather than dropped: a clean close spares the next start
    // a check of the whole file.
    if let Err(e) = store.close(Duration::from_secs(5)) {
        log::warn!("the state file was not closed cleanly ({e}): the next start checks it");
    }
    log::info!("ftpgate stopped");
    Ok(())
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
