//! The daemon's side of the control socket: binding it, serving its clients, and what
//! the admin operations need from the running daemon (`admin::socket::Hooks`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use super::{Error, io_err};
use crate::admin::socket::{Hooks, serve_client};
use crate::admin::status::StatusView;
use crate::auth::Authenticator;
use crate::forward::Forwarder;
use crate::gateway::server::Server;
use crate::spool::Spool;
use crate::state::StateDir;
use crate::store::Store;

/// Binds the control socket (mode 0600), replacing a stale one: we own the database, so
/// no other daemon can be answering on it.
pub(super) fn bind_control(state: &StateDir) -> Result<smol::net::unix::UnixListener, Error> {
    let path = state.control_socket();
    match std::fs::remove_file(&path) {
        Ok(()) => log::info!("replaced a stale control socket left by an earlier daemon"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("cannot remove {}", path.display()))(e)),
    }
    let listener = smol::net::unix::UnixListener::bind(&path)
        .map_err(io_err(format!("cannot listen on {}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("cannot restrict {}", path.display())))?;
    Ok(listener)
}

pub(super) async fn control_loop(
    listener: smol::net::unix::UnixListener,
    store: Arc<Store>,
    hooks: Arc<Hooks>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (store, hooks) = (store.clone(), hooks.clone());
                smol::spawn(async move {
                    if let Err(e) = serve_client(stream, store, hooks).await {
                        log::warn!("control socket client: {e}");
                    }
                })
                .detach();
            }
            Err(e) => {
                log::warn!("control socket accept: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What the admin operations need from the running daemon: what to do after a change
/// (forget cached logins, have sessions check their login again, retry offline Pipes,
/// delete released bodies) and the live part of the status view.
pub(super) fn hooks(
    auth: &Arc<Authenticator>,
    forwarder: &Arc<Forwarder>,
    spool: &Arc<Spool>,
    srv: &Arc<Server>,
    started: std::time::Instant,
    cap: u64,
) -> Arc<Hooks> {
    Arc::new(Hooks {
        after_change: Box::new({
            let (auth, fwd, spool) = (auth.clone(), forwarder.clone(), spool.clone());
            let srv = srv.clone();
            move || {
                auth.clear_cache();
                // Open sessions check their login again before their next command.
                srv.admin_changes
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                fwd.retry_now();
                // Bodies a change let go of (a removed Pipe's) go now; blocking, but the
                // hook already runs off the executor.
                if let Err(e) = spool.collect_garbage() {
                    log::warn!("deleting spool bodies of a removed pipe: {e}");
                }
            }
        }),
        live_status: Box::new({
            let (srv, fwd) = (srv.clone(), forwarder.clone());
            move |view: &mut StatusView| live_status(view, &srv, &fwd, started, cap)
        }),
    })
}

/// Adds what only the running daemon knows to a status view.
pub(super) fn live_status(
    view: &mut StatusView,
    srv: &Server,
    fwd: &Forwarder,
    started: std::time::Instant,
    keep_delivered_max: u64,
) {
    use std::sync::atomic::Ordering;
    view.daemon_running = true;
    view.keep_delivered_max = Some(keep_delivered_max);
    view.uptime_secs = Some(started.elapsed().as_secs());
    view.sessions = Some(srv.stats.sessions.load(Ordering::Relaxed));
    view.sftp_sessions = Some(srv.stats.sftp_sessions.load(Ordering::Relaxed));
    view.sessions_waiting = Some(srv.session_counts().1);
    view.uploads_received = Some(srv.stats.uploads.load(Ordering::Relaxed));
    view.bytes_received = Some(srv.stats.bytes.load(Ordering::Relaxed));
    view.spool_bytes = srv.spool.used();
    view.spool_free_bytes = srv.spool.free_space().ok();
    view.trouble = srv.store.trouble().or_else(|| {
        let free = view.spool_free_bytes?;
        (free <= srv.spool.limits().min_free.max(1 << 20)).then(|| {
            format!(
                "the spool's disk is full ({free} bytes free): uploads are refused with 452 until space is freed"
            )
        })
    });
    view.tls_fingerprint = srv.tls.as_ref().map(|t| t.fingerprint());
    view.ssh_fingerprint = srv.ssh_fingerprint.get().cloned();
    let health = fwd.health();
    let skews = fwd.clock_skews();
    let now_ms = crate::clock::now_secs() * 1000;
    for p in &mut view.pipes {
        let h = health.get(&p.id).cloned().unwrap_or_default();
        p.clock_skew_secs = skews.get(&p.id).copied();
        p.last_success = h.last_success;
        p.last_error = h.last_error.clone();
        p.delivered_ops = h.delivered_ops;
        p.delivered_bytes = h.delivered_bytes;
        let window = crate::clock::now_secs()
            .saturating_sub(h.window_start)
            .max(1);
        p.rate_bytes_per_sec = (h.recent_bytes > 0).then(|| h.recent_bytes as f64 / window as f64);
        if p.state != "parked" {
            p.state = match h.offline_until_ms {
                Some(until) if until + 1000 > now_ms => "offline".into(),
                _ => "online".into(),
            };
        }
    }
}
