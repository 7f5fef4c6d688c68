//! `ftpgate serve`: the long-running process that owns the state directory.
//!
//! It holds the redb database (redb locks the file, so a second daemon is refused), and
//! answers the control socket so admin commands take effect at once while it runs.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use async_signal::{Signal, Signals};
use smol::stream::StreamExt;

use crate::admin::socket::serve_client;
use crate::auth::{AuthConfig, Authenticator};
use crate::state::StateDir;
use crate::store::{self, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "another ftpgate daemon is already running on {0} (its control socket answers): stop it first, or use another --state"
    )]
    AlreadyRunning(String),
    #[error("{0}")]
    Store(#[from] store::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Opens the store for the daemon; says plainly when another daemon owns it.
fn open_store(state: &StateDir) -> Result<Store, Error> {
    match Store::open(&state.database()) {
        Err(store::Error::InUse(_))
            if std::os::unix::net::UnixStream::connect(state.control_socket()).is_ok() =>
        {
            Err(Error::AlreadyRunning(state.root().display().to_string()))
        }
        other => Ok(other?),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(state: &StateDir) -> Result<(), Error> {
    state.create().map_err(io_err(format!(
        "cannot create state directory {}",
        state.root().display()
    )))?;
    let store = Arc::new(open_store(state)?);

    // We own the database, so any socket file is stale: a killed daemon left it.
    let sock_path = state.control_socket();
    match std::fs::remove_file(&sock_path) {
        Ok(()) => log::info!("replaced a stale control socket left by an earlier daemon"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("cannot remove {}", sock_path.display()))(e)),
    }
    let listener = smol::net::unix::UnixListener::bind(&sock_path)
        .map_err(io_err(format!("cannot listen on {}", sock_path.display())))?;
    std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("cannot restrict {}", sock_path.display())))?;
    let mut signals =
        Signals::new([Signal::Term, Signal::Int]).map_err(io_err("cannot watch signals"))?;

    let auth = Arc::new(Authenticator::new(store.clone(), AuthConfig::default()));
    log::info!(
        "ftpgate {} ready: state {}, control socket {}",
        env!("CARGO_PKG_VERSION"),
        state.root().display(),
        sock_path.display()
    );

    let ex = smol::Executor::new();
    smol::block_on(ex.run(async {
        let accept = async {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let (store, auth) = (store.clone(), auth.clone());
                        ex.spawn(async move {
                            if let Err(e) =
                                serve_client(stream, store, |_| auth.clear_cache()).await
                            {
                                log::warn!("control socket client: {e}");
                            }
                        })
                        .detach();
                    }
                    Err(e) => {
                        log::warn!("control socket accept: {e}");
                        smol::Timer::after(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        };
        let stop = async {
            if let Some(Ok(sig)) = signals.next().await {
                log::info!("received {sig:?}, shutting down");
            }
        };
        smol::future::or(accept, stop).await;
    }));
    let _ = std::fs::remove_file(&sock_path);
    log::info!("ftpgate stopped");
    Ok(())
}
