//! The SSH side of the SFTP source: russh on a single-threaded tokio runtime of its own
//! (russh needs tokio; everything else in the daemon runs on smol). It shares the FTP
//! server's context ([`Server`]): the same session limits, bans, password checks,
//! Senders, Pipes and spool.
//!
//! Only what an upload needs is served: password (and public key) login, one `session`
//! channel kind, and on it the `sftp` subsystem. Shells, commands, terminals, agent and
//! X11 forwarding, port forwarding and every other subsystem are refused, each with a
//! log line. Algorithms: curve25519 (and its ML-KEM hybrid) key exchange,
//! ed25519/ECDSA/RSA-SHA2 keys, chacha20-poly1305 and AES-GCM first, AES-CTR with SHA-2
//! HMACs last for older libssh2 clients; no SHA-1, no CBC, no compression.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use russh::keys::Algorithm;
use russh::keys::ssh_key::{EcdsaCurve, HashAlg};
use russh::{MethodKind, MethodSet, Preferred, SshId, cipher, kex, mac};

use super::conn::Conn;
use crate::gateway::hostkey::HostKey;
use crate::gateway::server::{Server, Slot};

/// Key exchange: the ML-KEM hybrid, curve25519, and the extension markers (server
/// signature algorithms, strict key exchange against the Terrapin attack).
const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

/// Host and user key algorithms: no `ssh-rsa` (SHA-1) signatures.
const KEYS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// AEAD ciphers first; AES-CTR last, for libssh2 before 1.11 (Debian 12's curl, many
/// cameras and scanners), which has no AEAD cipher. Never CBC.
const CIPHERS: &[cipher::Name] = &[
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
    cipher::AES_256_CTR,
    cipher::AES_128_CTR,
];

/// Used only with AES-CTR: SHA-2 HMACs, encrypt-then-MAC first; the plain HMAC-SHA2 ones
/// for libssh2 before 1.11. Never SHA-1.
const MACS: &[mac::Name] = &[
    mac::HMAC_SHA512_ETM,
    mac::HMAC_SHA256_ETM,
    mac::HMAC_SHA512,
    mac::HMAC_SHA256,
];

/// Binds every `--sftp-listen` address before anything is served.
pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<std::net::TcpListener>> {
    addrs
        .iter()
        .map(|a| {
            let l = std::net::TcpListener::bind(a).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {a} for SFTP: {e}"))
            })?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .collect()
}

/// Serves SFTP on `listeners` on a thread of its own until the server shuts down and the
/// last SFTP connection has ended (or the shutdown grace has passed).
pub fn start(
    srv: Arc<Server>,
    listeners: Vec<std::net::TcpListener>,
    key: HostKey,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let config = Arc::new(ssh_config(&srv, key));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("ftpgate-sftp".into())
        .spawn(move || runtime.block_on(serve(srv, listeners, config)))
}

fn ssh_config(srv: &Server, key: HostKey) -> russh::server::Config {
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::PublicKey);
    methods.push(MethodKind::Password);
    let preferred = Preferred {
        kex: Cow::Borrowed(KEX),
        key: Cow::Borrowed(KEYS),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Borrowed(CIPHERS),
        mac: Cow::Borrowed(MACS),
        compression: Cow::Borrowed(&[russh::compression::NONE]),
    };
    russh::server::Config {
        server_id: SshId::Standard(Cow::Borrowed("SSH-2.0-ftpgate")),
        methods,
        auth_rejection_time: srv.config.login_fail_delay,
        // OpenSSH clients first try "none" to learn the methods: no delay for that.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key.key],
        max_auth_attempts: 3,
        inactivity_timeout: Some(srv.config.idle_timeout),
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        preferred,
        nodelay: true,
        ..Default::default()
    }
}

async fn serve(
    srv: Arc<Server>,
    listeners: Vec<std::net::TcpListener>,
    config: Arc<russh::server::Config>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    for l in listeners {
        match tokio::net::TcpListener::from_std(l) {
            Ok(l) => {
                tokio::spawn(accept_loop(srv.clone(), l, config.clone(), live.clone()));
            }
            Err(e) => log::error!("sftp: cannot use a listener: {e}"),
        }
    }
    let _ = srv.shutdown.recv().await;
    // Connections end by themselves at shutdown (their sessions see it); give them the
    // grace FTP transfers get to finish.
    let deadline = Instant::now() + srv.config.shutdown_grace;
    while live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn accept_loop(
    srv: Arc<Server>,
    listener: tokio::net::TcpListener,
    config: Arc<russh::server::Config>,
    live: Arc<AtomicUsize>,
) {
    if let Ok(a) = listener.local_addr() {
        log::info!("sftp listening on {a}");
    }
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            let _ = srv.shutdown.recv().await;
            None
        })
        .await;
        let (stream, peer) = match accepted {
            None => return,
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                log::warn!("sftp accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match srv.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(reply) => {
                log::info!("refused sftp connection from {peer}: {reply}");
                continue;
            }
        };
        let (srv, config, live) = (srv.clone(), config.clone(), live.clone());
        live.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            connection(srv, config, stream, peer, slot).await;
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// One SSH connection, from the version exchange to its end. A connection that has not
/// logged in within the login timeout, or whose place is needed by another waiting one,
/// is disconnected.
async fn connection(
    srv: Arc<Server>,
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Slot,
) {
    let evicted = slot.evicted.clone();
    let logged_in = Arc::new(AtomicBool::new(false));
    let login_timeout = srv.config.login_timeout;
    let conn = Conn {
        srv,
        peer,
        slot,
        login: None,
        access_seen: 0,
        channels: HashMap::new(),
        serving: Default::default(),
        logged_in: logged_in.clone(),
    };
    let running = match russh::server::run_stream(config, stream, conn).await {
        Ok(r) => r,
        Err(e) => {
            log::info!("sftp connection from {peer} failed: {e}");
            return;
        }
    };
    let handle = running.handle();
    let watchdog = async {
        let timeout = async {
            tokio::time::sleep(login_timeout).await;
            "did not log in in time"
        };
        let evict = async {
            let _ = evicted.recv().await;
            "its place was needed by another connection waiting to log in"
        };
        let why = smol::future::or(timeout, evict).await;
        if logged_in.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        log::info!("sftp connection from {peer} closed: {why}");
        let _ = handle
            .disconnect(
                russh::Disconnect::ByApplication,
                why.to_string(),
                "en".into(),
            )
            .await;
        std::future::pending::<()>().await;
    };
    let ended = smol::future::or(async { Some(running.await) }, async {
        watchdog.await;
        None
    })
    .await;
    if let Some(Err(e)) = ended {
        log::info!("sftp connection from {peer} ended: {e}");
    }
}
