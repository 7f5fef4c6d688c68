//! One SFTP session: the subsystem's byte stream, after SSH has authenticated a Sender
//! into a Pipe. Packets are framed and decoded by [`crate::sftp::proto`]; every request
//! is answered in order, through the same namespace operations as FTP
//! ([`crate::ops::PipeOps`]).
//!
//! Requests are handled in the order they arrive, so pipelined `WRITE`s land in order.
//! Consecutive `WRITE`s to one handle that arrived together are written in one trip to
//! the blocking pool; their replies, and every other reply, are sent together once the
//! received bytes are used up. While the disk is busy nothing more is read, so the SSH
//! channel's window closes and the client waits: memory stays bounded.

mod requests;
mod upload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::Login;
use crate::gateway::server::Server;
use crate::ops::PipeOps;
use crate::sftp::errors::Refusal;
use crate::sftp::proto::{self, Decoded, PacketFramer, Status, response};
use crate::vfs::VPath;

use upload::{Batch, Upload};

/// Bytes read from the channel before they are handled: what has arrived, up to this,
/// so many pipelined WRITEs go to the disk in one trip. An active upload holds this, the
/// framer's copy and a batch of at most as much (see `upload::MAX_BATCH_BYTES`).
const READ_BUF: usize = 256 * 1024;

/// An open handle.
enum Handle {
    Write(Box<Upload>),
    /// A directory being listed: each `READDIR` reads the next page from the catalog
    /// after the last name it returned, so a handle holds a name, not the directory.
    Dir {
        path: VPath,
        after: Option<String>,
    },
}

/// One SFTP session's state.
pub struct Session {
    srv: Arc<Server>,
    login: Login,
    peer: SocketAddr,
    handles: HashMap<u32, Handle>,
    next_handle: u32,
    /// Replies not sent yet.
    out: Vec<u8>,
    /// `WRITE`s received and not written yet.
    batch: Batch,
    /// The client sent `SSH_FXP_INIT`.
    initialised: bool,
    /// Admin changes seen when the login was last checked.
    access_seen: u64,
    uploads: u64,
    bytes: u64,
}

/// Why a session ended, for its log line.
enum End {
    Closed,
    Idle,
    Shutdown,
    Revoked(String),
    Protocol(String),
    Network(std::io::Error),
}

impl Session {
    pub fn new(srv: Arc<Server>, login: Login, peer: SocketAddr, access_seen: u64) -> Session {
        Session {
            srv,
            login,
            peer,
            handles: HashMap::new(),
            next_handle: 1,
            out: Vec::new(),
            batch: Batch::default(),
            initialised: false,
            access_seen,
            uploads: 0,
            bytes: 0,
        }
    }

    fn ops(&self) -> PipeOps<'_> {
        PipeOps {
            srv: &self.srv,
            login: &self.login,
        }
    }

    /// Serves the subsystem until the client closes it, it idles out, the gateway shuts
    /// down or the Sender loses access. Uploads left open become partials. Returns the
    /// subsystem's exit status: 0, or 1 after a protocol error.
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(mut self, mut stream: S) -> u32 {
        let end = self.serve(&mut stream).await;
        let status = u32::from(matches!(end, End::Protocol(_)));
        let _ = stream.shutdown().await;
        self.abandon_open_uploads().await;
        let why = match end {
            End::Closed => "closed by the client".to_string(),
            End::Idle => format!(
                "idle for {} seconds",
                self.srv.config.idle_timeout.as_secs()
            ),
            End::Shutdown => "the gateway is shutting down".into(),
            End::Revoked(why) => format!("access changed ({why})"),
            End::Protocol(why) => format!("protocol error: {why}"),
            End::Network(e) => format!("connection lost: {e}"),
        };
        log::info!(
            "sftp session end peer={} sender={} pipe={} uploads={} bytes={} ({why})",
            self.peer,
            self.login.sender.name,
            self.login.pipe.id,
            self.uploads,
            self.bytes
        );
        status
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send>(&mut self, stream: &mut S) -> End {
        let mut framer = PacketFramer::new();
        let mut buf = vec![0u8; READ_BUF];
        let idle = self.srv.config.idle_timeout;
        // One timer for the session, pushed back after each read (a timer per read cost
        // a wake-up of another thread each time).
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        loop {
            let (n, closed) = match self.read(stream, &mut buf, idle_timer.as_mut()).await {
                Ok(0) => return End::Closed,
                Ok(n) => take_arrived(stream, &mut buf, n).await,
                Err(end) => return end,
            };
            idle_timer
                .as_mut()
                .reset(tokio::time::Instant::now() + idle);
            framer.push(&buf[..n]);
            if let Some(end) = self.recheck_access().await {
                return end;
            }
            loop {
                let packet = match framer.next_packet() {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = self.flush(stream).await;
                        return End::Protocol(e.to_string());
                    }
                };
                if let Err(why) = self.handle(packet).await {
                    let _ = self.flush(stream).await;
                    return End::Protocol(why);
                }
                // Later WRITEs wait in the batch; others have been answered.
                if self.batch_is_full() {
                    self.write_batch().await;
                }
            }
            self.write_batch().await;
            if let Err(e) = self.flush(stream).await {
                return End::Network(e);
            }
            if let Some(end) = closed {
                return end;
            }
        }
    }

    /// Reads what the client sent, until the session's idle timer fires. At shutdown the
    /// session stops once no file is open for writing: uploads under way may finish
    /// within the daemon's shutdown grace, as FTP transfers do.
    async fn read<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        buf: &mut [u8],
        idle: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<usize, End> {
        let shutdown = self.srv.shutdown.clone();
        let uploading = self.handles.values().any(|h| matches!(h, Handle::Write(_)));
        let read = async { stream.read(buf).await.map_err(End::Network) };
        let idle_out = async {
            idle.await;
            Err(End::Idle)
        };
        let stop = async {
            let _ = shutdown.recv().await;
            if uploading {
                std::future::pending::<()>().await;
            }
            Err(End::Shutdown)
        };
        smol::future::or(read, smol::future::or(idle_out, stop)).await
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        stream.write_all(&self.out).await?;
        stream.flush().await?;
        self.out.clear();
        Ok(())
    }

    /// After an admin change, checks the login again: the session goes on with the
    /// Pipe's current settings, or ends if the Sender may no longer use it.
    async fn recheck_access(&mut self) -> Option<End> {
        let changes = self.srv.admin_changes.load(Ordering::SeqCst);
        if changes == self.access_seen {
            return None;
        }
        match self
            .srv
            .auth
            .recheck(&self.login, self.peer.ip(), true)
            .await
        {
            Ok(fresh) => {
                self.login = fresh;
                self.access_seen = changes;
                None
            }
            Err(crate::auth::Refusal::Store(e)) => {
                log::warn!("sftp peer={}: cannot check the login again: {e}", self.peer);
                None
            }
            Err(refusal) => Some(End::Revoked(refusal.to_string())),
        }
    }

    /// Handles one packet; `Err` ends the session (the client is not speaking SFTP).
    async fn handle(&mut self, packet: &[u8]) -> Result<(), String> {
        match proto::decode(packet) {
            Decoded::Init { version } => {
                if self.initialised {
                    return Err("a second SSH_FXP_INIT".into());
                }
                if version < 3 {
                    return Err(format!(
                        "the client speaks SFTP version {version}; 3 is needed"
                    ));
                }
                self.initialised = true;
                self.out.extend_from_slice(&response::version());
                Ok(())
            }
            _ if !self.initialised => Err("a request before SSH_FXP_INIT".into()),
            Decoded::Garbage => Err("a packet too short to carry a request id".into()),
            Decoded::Unsupported { id, kind } => {
                self.write_batch().await;
                let text = format!("request type {kind} is not supported by this gateway");
                self.status(id, (Status::OpUnsupported, text));
                Ok(())
            }
            Decoded::Bad { id, why } => {
                self.write_batch().await;
                self.status(
                    id,
                    (Status::BadMessage, format!("malformed request: {why}")),
                );
                Ok(())
            }
            Decoded::Request { id, request } => {
                self.request(id, request).await;
                Ok(())
            }
        }
    }

    fn status(&mut self, id: u32, (code, message): Refusal) {
        self.out
            .extend_from_slice(&response::status(id, code, &message));
    }

    fn ok(&mut self, id: u32) {
        self.status(id, (Status::Ok, "OK".into()));
    }

    fn new_handle(&mut self, h: Handle) -> Result<Vec<u8>, Refusal> {
        if self.handles.len() >= response::MAX_HANDLES as usize {
            return Err((
                Status::Failure,
                format!(
                    "too many open handles (at most {}): close some first",
                    response::MAX_HANDLES
                ),
            ));
        }
        let n = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1);
        self.handles.insert(n, h);
        Ok(n.to_be_bytes().to_vec())
    }
}

/// The handle number a client sent back, if it is one of ours.
fn handle_number(h: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(h).ok().map(u32::from_be_bytes)
}

/// After a read put `n` bytes into `buf`, takes what has already arrived behind them
/// without waiting. Returns the bytes now in `buf`, and how the session ends if the
/// stream ended or failed meanwhile (handled once those bytes are).
async fn take_arrived<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    mut n: usize,
) -> (usize, Option<End>) {
    while n < buf.len() {
        match smol::future::poll_once(stream.read(&mut buf[n..])).await {
            Some(Ok(0)) => return (n, Some(End::Closed)),
            Some(Ok(more)) => n += more,
            Some(Err(e)) => return (n, Some(End::Network(e))),
            None => break,
        }
    }
    (n, None)
}
