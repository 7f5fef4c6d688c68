//! Accepting FTP control connections: each one is admitted into the gateway's session
//! table (or told why not, in a `421`) and runs as a task of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smol::net::{TcpListener, TcpStream};

use crate::gateway::server::Server;

/// Accepts connections on `listener` until shutdown; each session runs as its own task.
pub async fn accept_loop(server: Arc<Server>, ftp: Arc<crate::ftp::Config>, listener: TcpListener) {
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            let _ = server.shutdown.recv().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok((stream, peer))) => {
                let (server, ftp) = (server.clone(), ftp.clone());
                smol::spawn(async move { start_session(server, ftp, stream, peer).await }).detach();
            }
            Some(Err(e)) => {
                log::warn!("accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn start_session(
    server: Arc<Server>,
    ftp: Arc<crate::ftp::Config>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    use smol::io::AsyncWriteExt;
    let slot = match server.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(reply) => {
            let mut s = stream;
            let _ = s
                .write_all(&crate::ftp::errors::refused(reply).encode())
                .await;
            log::info!("refused connection from {peer}: {reply}");
            return;
        }
    };
    stream.set_nodelay(true).ok();
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    crate::ftp::session::Session::new(server, ftp, slot, Box::new(stream), peer, local)
        .run()
        .await;
}
