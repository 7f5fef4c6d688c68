//! Data connections: a passive listener per session on a random port of the configured
//! range, or an active connection back to the client. A passive connection from any
//! address other than the control connection's peer is closed and the real client is
//! still awaited; active targets are checked (`proto::addr::check_active`) before any
//! connection is attempted.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use smol::io::{AsyncRead, AsyncWrite};
use smol::net::{TcpListener, TcpStream};

use crate::net::canonical;

/// A byte stream: a TCP socket now, a TLS stream over one later.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Conn for T {}

/// How the next transfer gets its data connection.
#[derive(Debug, Default)]
pub enum Plan {
    #[default]
    None,
    Passive(TcpListener),
    Active(SocketAddr),
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("use PASV, EPSV, PORT or EPRT before a transfer")]
    NoPlan,
    #[error("no data connection arrived within {0} seconds")]
    AcceptTimeout(u64),
    #[error("could not connect to {0}: {1}")]
    Connect(SocketAddr, io::Error),
    #[error("data connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("TLS is not available for data connections")]
    TlsUnavailable,
    #[error("TLS on the data connection failed: {0}")]
    TlsFailed(io::Error),
    #[error("TLS on the data connection timed out")]
    TlsTimedOut,
    /// The data connection did not resume the control connection's TLS session.
    #[error(
        "data connection refused: it must resume this session's TLS session. Turn on TLS session reuse in the client, or ask for 'ftpgate sender set {sender} --tls-reuse optional'"
    )]
    NotResumed { sender: String },
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).expect("the operating system's random source failed");
    u32::from_le_bytes(b)
}

/// Ports tried on the executor before the search moves off it: a bind is one quick
/// system call, thousands are not.
const BINDS_INLINE: usize = 8;

/// Binds a listener on `ip` at a random free port of `ports`, trying each port of the
/// range once: the first few right here, the rest off the executor (a crowded range can
/// take thousands).
pub async fn listen_passive(ip: IpAddr, ports: &RangeInclusive<u16>) -> io::Result<TcpListener> {
    let (lo, hi) = (*ports.start(), *ports.end());
    let mut order = port_order(lo, hi, random_u32());
    for port in order.by_ref().take(BINDS_INLINE) {
        if let Ok(l) = std::net::TcpListener::bind((ip, port)) {
            return TcpListener::try_from(l);
        }
    }
    let std_listener = smol::unblock(move || {
        for port in order {
            if let Ok(l) = std::net::TcpListener::bind((ip, port)) {
                return Ok(l);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free passive port in {lo}-{hi}"),
        ))
    })
    .await?;
    TcpListener::try_from(std_listener)
}

/// The ports of `lo..=hi` in the order they are tried: each exactly once, from the one at
/// offset `start` (modulo the range) on, wrapping around.
pub fn port_order(lo: u16, hi: u16, start: u32) -> impl Iterator<Item = u16> {
    let span = u32::from(hi.saturating_sub(lo)) + 1;
    let first = start % span;
    (0..span).map(move |i| lo + ((first + i) % span) as u16)
}

/// Accepts the client's data connection, closing any from another address.
pub async fn accept_from(
    listener: &TcpListener,
    peer: IpAddr,
    timeout: Duration,
) -> Result<TcpStream, DataError> {
    let wait = async {
        loop {
            let (stream, from) = listener.accept().await?;
            if canonical(from.ip()) == canonical(peer) {
                stream.set_nodelay(true).ok();
                return Ok(stream);
            }
            log::warn!("refused a data connection from {from}: the session belongs to {peer}");
            drop(stream);
        }
    };
    smol::future::or(wait, async {
        smol::Timer::after(timeout).await;
        Err(DataError::AcceptTimeout(timeout.as_secs()))
    })
    .await
}

/// Connects to an (already checked) active-mode target.
pub async fn connect(target: SocketAddr, timeout: Duration) -> Result<TcpStream, DataError> {
    let attempt = async {
        TcpStream::connect(target)
            .await
            .map_err(|e| DataError::Connect(target, e))
    };
    smol::future::or(attempt, async {
        smol::Timer::after(timeout).await;
        Err(DataError::Connect(
            target,
            io::Error::new(io::ErrorKind::TimedOut, "timed out"),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::port_order;

    #[test]
    fn every_port_of_the_range_is_tried_exactly_once() {
        for (lo, hi) in [
            (50000, 50000),
            (50000, 50099),
            (40000, 47918),
            (40000, 55837),
            (1024, 65535),
        ] {
            for start in [0, 1, 7919, u32::MAX] {
                let mut seen: Vec<u16> = port_order(lo, hi, start).collect();
                assert_eq!(seen.len(), usize::from(hi - lo) + 1, "{lo}-{hi}");
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(
                    seen.len(),
                    usize::from(hi - lo) + 1,
                    "{lo}-{hi}: a port repeats"
                );
                assert_eq!((seen[0], seen[seen.len() - 1]), (lo, hi));
            }
        }
    }
}
