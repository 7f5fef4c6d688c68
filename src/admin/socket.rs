//! The control socket, `state/control.sock` (mode 0600): one JSON [`Request`] line in, one
//! JSON line out (`{"ok": Response}` or `{"err": Error}`).
//!
//! [`dispatch`] is what the CLI calls: through the socket when a daemon answers, else
//! directly against the database. A socket file nobody answers on is stale (left by a
//! killed daemon): the CLI ignores it and the next daemon replaces it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{Error, Request, Response, execute};
use crate::state::StateDir;
use crate::store::{self, Store};

/// Largest request accepted (an `apply` of a big fleet file fits).
const MAX_REQUEST: u64 = 16 << 20;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Ok(Box<Response>),
    Err(Error),
}

/// How long a CLI command waits for the database while another process holds it and
/// no daemon answers: a CLI command beside it, or a daemon starting (it holds the
/// database before its control socket answers, for as long as recovering the spool
/// takes).
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `req` through the daemon if one answers on the control socket, else directly.
pub fn dispatch(state: &StateDir, req: Request) -> Result<Response, Error> {
    state.create().map_err(|e| {
        Error::runtime(format!(
            "cannot create state directory {}: {e}",
            state.root().display()
        ))
    })?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match UnixStream::connect(state.control_socket()) {
            Ok(stream) => return send(stream, &req),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => {
                return Err(Error::runtime(format!(
                    "cannot reach the daemon at {}: {e}",
                    state.control_socket().display()
                )));
            }
        }
        match Store::open(&state.database()) {
            Ok(store) => return run_here(state, &store, req),
            Err(store::Error::InUse(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs `req` against the database, no daemon running.
fn run_here(state: &StateDir, store: &Store, req: Request) -> Result<Response, Error> {
    let mutates = req.mutates();
    let response = execute(store, req)?;
    if mutates {
        // Spool bodies a change let go of (a removed Pipe's) go now.
        crate::spool::purge_garbage(state, store)
            .map_err(|e| Error::runtime(format!("deleting spool bodies: {e}")))?;
    }
    Ok(response)
}

fn send(mut stream: UnixStream, req: &Request) -> Result<Response, Error> {
    let lost = |e: io::Error| Error::runtime(format!("lost contact with the daemon: {e}"));
    let mut line = serde_json::to_vec(req).expect("requests serialize");
    line.push(b'\n');
    stream.write_all(&line).map_err(lost)?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_REQUEST))
        .read_line(&mut answer)
        .map_err(lost)?;
    match serde_json::from_str::<Reply>(&answer) {
        Ok(Reply::Ok(r)) => Ok(*r),
        Ok(Reply::Err(e)) => Err(e),
        Err(e) => Err(Error::runtime(format!(
            "the daemon sent an answer this ftpgate cannot read ({e}): are both the same version?"
        ))),
    }
}

/// What the daemon adds to the operations: reactions to changes, and live status.
pub struct Hooks {
    /// Runs after each operation that may have changed state (clear the credential
    /// cache, wake the forwarder).
    pub after_change: Box<dyn Fn() + Send + Sync>,
    /// Fills in what only the running daemon knows.
    pub live_status: Box<dyn Fn(&mut super::status::StatusView) + Send + Sync>,
}

/// Daemon side: answers one client connection.
pub async fn serve_client(
    mut stream: smol::net::unix::UnixStream,
    store: Arc<Store>,
    hooks: Arc<Hooks>,
) -> io::Result<()> {
    let mut reader = smol::io::BufReader::new(stream.clone().take(MAX_REQUEST));
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(()); // a liveness probe: connected and left
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(req) => {
            let store = store.clone();
            let r = req.clone();
            let result = smol::unblock(move || execute(&store, r)).await;
            if result.is_ok() && req.mutates() {
                let hooks = hooks.clone();
                smol::unblock(move || (hooks.after_change)()).await;
            }
            match result {
                Ok(Response::Status { mut status }) => {
                    // Off the executor: it asks the filesystem for its free space.
                    let status = smol::unblock(move || {
                        (hooks.live_status)(&mut status);
                        status
                    })
                    .await;
                    Reply::Ok(Box::new(Response::Status { status }))
                }
                Ok(resp) => Reply::Ok(Box::new(resp)),
                Err(e) => Reply::Err(e),
            }
        }
        Err(e) => Reply::Err(Error {
            message: format!("malformed request on the control socket: {e}"),
            usage: true,
        }),
    };
    let mut out = serde_json::to_vec(&reply).expect("replies serialize");
    out.push(b'\n');
    stream.write_all(&out).await
}
