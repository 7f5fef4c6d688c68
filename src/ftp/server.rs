//! The FTP server: configuration, the context shared by sessions, listeners, session
//! limits, and graceful shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol::lock::Semaphore;
use smol::net::{TcpListener, TcpStream};

use crate::auth::Authenticator;
use crate::ftp::bans::{BanPolicy, Bans};
use crate::ftp::limits::{Caps, Limits};
use crate::ftp::proto::Reply;
use crate::spool::Spool;
use crate::store::{self, Reader, Store, Writer};

/// Settings of `ftpgate serve` that concern FTP.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub passive_ports: RangeInclusive<u16>,
    /// Address announced in `PASV` replies (for NAT); default: the control connection's
    /// local address.
    pub passive_address: Option<Ipv4Addr>,
    pub active: bool,
    /// Idle control connection after login (a partial line does not count as activity).
    pub idle_timeout: Duration,
    /// Time allowed to log in, from the connection's start, and to finish a command line,
    /// from its first byte.
    pub login_timeout: Duration,
    /// Data connection accept/connect, and silence during a transfer.
    pub data_timeout: Duration,
    /// Most logged-in sessions.
    pub max_sessions: usize,
    /// Most connections waiting to log in (half of them from one address).
    pub max_unauthenticated: usize,
    pub max_sessions_per_ip: usize,
    /// Delay before answering a failed `PASS`.
    pub login_fail_delay: Duration,
    /// How long running transfers may continue after SIGTERM.
    pub shutdown_grace: Duration,
    pub bans: BanPolicy,
    pub tls: crate::ftp::tls::Policy,
    /// Gateway-wide default for data connections resuming the control TLS session.
    pub tls_reuse: crate::store::senders::TlsReuse,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 21))],
            passive_ports: 50000..=50999,
            passive_address: None,
            active: true,
            idle_timeout: Duration::from_secs(300),
            login_timeout: Duration::from_secs(30),
            data_timeout: Duration::from_secs(60),
            max_sessions: 256,
            max_unauthenticated: 64,
            max_sessions_per_ip: 32,
            login_fail_delay: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            bans: BanPolicy::default(),
            tls: crate::ftp::tls::Policy::Off,
            tls_reuse: crate::store::senders::TlsReuse::Required,
        }
    }
}

/// Counters for the log and for status.
#[derive(Debug, Default)]
pub struct Stats {
    pub sessions: AtomicUsize,
    pub uploads: AtomicU64,
    pub bytes: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_failed: AtomicU64,
    /// SFTP subsystems running (each inside one of `sessions`).
    pub sftp_sessions: AtomicUsize,
}

/// What every session shares.
pub struct Server {
    pub config: Config,
    pub store: Arc<Store>,
    pub auth: Arc<Authenticator>,
    pub spool: Arc<Spool>,
    /// None when TLS is off.
    pub tls: Option<Arc<crate::ftp::tls::Tls>>,
    pub bans: Mutex<Bans>,
    pub stats: Stats,
    /// Each connection's place; its token closes the session when dropped (eviction).
    limits: Mutex<Limits<smol::channel::Sender<()>>>,
    /// Password checks running per address (at most [`VERIFYING_PER_IP`] each).
    verifying: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
    /// Each logged-in FTPS control session's TLS token, with its Sender and address: a
    /// data connection may resume a sibling's session (see [`Server::is_sibling`]).
    tls_sessions: Mutex<HashMap<[u8; 16], (String, IpAddr)>>,
    /// Counts admin changes (Senders, Grants, Pipes): a session that has seen fewer checks
    /// its login again before its next command.
    pub admin_changes: AtomicU64,
    /// The SSH host key's fingerprint, when SFTP is on.
    pub ssh_fingerprint: std::sync::OnceLock<String>,
    /// Woken after each upload and namespace change.
    pub forwarder: std::sync::OnceLock<Arc<crate::forward::Forwarder>>,
    /// Closed when the server shuts down: sessions stop between commands.
    pub shutdown: smol::channel::Receiver<()>,
    shutdown_tx: Mutex<Option<smol::channel::Sender<()>>>,
}

/// Most password checks running at once for one address; more wait their turn.
const VERIFYING_PER_IP: usize = 2;

/// Holds a session's place in the limits (see [`crate::ftp::limits`]); released on drop.
pub struct Slot {
    server: Arc<Server>,
    id: crate::ftp::limits::Id,
    /// Closed when this connection, still waiting to log in, must make room for another.
    pub evicted: smol::channel::Receiver<()>,
}

impl Slot {
    /// The session has logged in: it now holds a logged-in slot, or is refused.
    pub fn promote(&mut self) -> Result<(), Reply> {
        self.server.limits().promote(self.id)
    }

    /// The session logged out (`REIN`).
    pub fn demote(&mut self) {
        self.server.limits().demote(self.id);
    }
}

/// A logged-in FTPS control session's place among the siblings; gone when dropped.
pub struct TlsSibling {
    server: Arc<Server>,
    token: [u8; 16],
}

impl Drop for TlsSibling {
    fn drop(&mut self) {
        self.server
            .tls_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.token);
    }
}

impl Server {
    /// Records that the control session with TLS `token` is logged in as `sender` from
    /// `ip`, until the returned value is dropped.
    pub fn tls_sibling(self: &Arc<Self>, token: [u8; 16], sender: &str, ip: IpAddr) -> TlsSibling {
        self.tls_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, (sender.to_string(), ip));
        TlsSibling {
            server: self.clone(),
            token,
        }
    }

    /// Whether `token` belongs to a live control session of `sender` from `ip`. Clients
    /// such as rclone, FileZilla and WinSCP keep one TLS session cache for all their
    /// parallel sessions, so a data connection often resumes a sibling's session; that
    /// is as safe as resuming its own (same account, same address), and anything else is
    /// still refused.
    pub fn is_sibling(&self, token: &[u8], sender: &str, ip: IpAddr) -> bool {
        let Ok(token) = <[u8; 16]>::try_from(token) else {
            return false;
        };
        self.tls_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token)
            .is_some_and(|(s, i)| s == sender && *i == ip)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.server.stats.sessions.fetch_sub(1, Ordering::Relaxed);
        self.server.limits().release(self.id);
    }
}

/// One password check, scored before it runs (see [`crate::ftp::bans`]); say how it went
/// with [`LoginAttempt::succeeded`] or [`LoginAttempt::failed`].
pub struct LoginAttempt {
    server: Arc<Server>,
    ip: IpAddr,
    permit: Option<smol::lock::SemaphoreGuardArc>,
}

impl LoginAttempt {
    pub fn succeeded(self) {
        self.server.bans().succeeded(self.ip, Instant::now());
    }

    /// The check could not be made (the store failed): it does not count against anyone.
    pub fn void(self) {
        self.server.bans().succeeded(self.ip, Instant::now());
    }

    /// A login was refused: a failure against the address, unless the store could not
    /// be read (then the check was not made).
    pub fn refused(self, why: &crate::auth::Refusal) {
        match why {
            crate::auth::Refusal::Store(_) => self.void(),
            _ => self.failed(),
        }
    }

    pub fn failed(self) {
        self.server
            .stats
            .logins_failed
            .fetch_add(1, Ordering::Relaxed);
        if self.server.bans().score(self.ip, Instant::now()) >= self.server.config.bans.threshold {
            log::warn!("{} is banned for now: too many failed logins", self.ip);
        }
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut verifying = self
            .server
            .verifying
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Forget the address once nobody holds or waits for its semaphore.
        if verifying
            .get(&self.ip)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            verifying.remove(&self.ip);
        }
    }
}

impl Server {
    pub fn new(
        config: Config,
        store: Arc<Store>,
        auth: Arc<Authenticator>,
        spool: Arc<Spool>,
        tls: Option<Arc<crate::ftp::tls::Tls>>,
    ) -> Arc<Server> {
        let (tx, rx) = smol::channel::bounded(1);
        let caps = Caps {
            max_sessions: config.max_sessions,
            max_unauthenticated: config.max_unauthenticated,
            max_per_ip: config.max_sessions_per_ip,
        };
        Arc::new(Server {
            bans: Mutex::new(Bans::new(config.bans.clone())),
            config,
            store,
            auth,
            spool,
            tls,
            stats: Stats::default(),
            limits: Mutex::new(Limits::new(caps)),
            verifying: Mutex::new(HashMap::new()),
            tls_sessions: Mutex::new(HashMap::new()),
            admin_changes: AtomicU64::new(0),
            ssh_fingerprint: std::sync::OnceLock::new(),
            forwarder: std::sync::OnceLock::new(),
            shutdown: rx,
            shutdown_tx: Mutex::new(Some(tx)),
        })
    }

    /// Tells every session to finish.
    pub fn begin_shutdown(&self) {
        self.shutdown_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_closed()
    }

    /// Admits a connection, or says why not (the reply is sent before closing).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Reply> {
        let ip = crate::ftp::proto::addr::canonical(ip);
        if self.bans().is_banned(ip, Instant::now()) {
            return Err(Reply::new(
                421,
                "Too many failed logins from your address; try again later.",
            ));
        }
        if self.is_shutting_down() {
            return Err(Reply::new(
                421,
                "The gateway is shutting down; try again shortly.",
            ));
        }
        let (evict, evicted) = smol::channel::bounded(1);
        let (id, made_room) = self.limits().admit(ip, evict)?;
        if made_room.is_some() {
            log::info!(
                "too many connections waiting to log in: closing the oldest from the busiest address for {ip}"
            );
        }
        drop(made_room);
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            server: self.clone(),
            id,
            evicted,
        })
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, Limits<smol::channel::Sender<()>>> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bans(&self) -> std::sync::MutexGuard<'_, Bans> {
        self.bans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (logged-in sessions, connections waiting to log in).
    pub fn session_counts(&self) -> (usize, usize) {
        self.limits().counts()
    }

    /// Waits for a turn to check a password from `ip` (a few at a time per address),
    /// then scores it in advance; refused while the address is banned.
    pub async fn login_attempt(self: &Arc<Self>, ip: IpAddr) -> Result<LoginAttempt, Reply> {
        let ip = crate::ftp::proto::addr::canonical(ip);
        let semaphore = self
            .verifying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ip)
            .or_insert_with(|| Arc::new(Semaphore::new(VERIFYING_PER_IP)))
            .clone();
        let attempt = LoginAttempt {
            server: self.clone(),
            ip,
            permit: Some(semaphore.acquire_arc().await),
        };
        drop(semaphore);
        if !self.bans().attempt(ip, Instant::now()) {
            return Err(Reply::new(
                421,
                "Too many failed logins from your address; try again later.",
            ));
        }
        Ok(attempt)
    }

    /// Tells the forwarder there is new work.
    pub fn wake_forwarder(&self) {
        if let Some(f) = self.forwarder.get() {
            f.wake();
        }
    }

    /// Runs `f` on a read snapshot, off the executor.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> store::Result<T> + Send + 'static,
    ) -> store::Result<T> {
        let store = self.store.clone();
        smol::unblock(move || f(&store.read()?)).await
    }

    /// Runs `f` in one write transaction, off the executor.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Writer) -> store::Result<T> + Send + 'static,
    ) -> store::Result<T> {
        let store = self.store.clone();
        smol::unblock(move || store.write(f)).await
    }
}

/// Binds every listen address (before anything is served, so a bad address fails fast).
pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    addrs
        .iter()
        .map(|a| {
            std::net::TcpListener::bind(a)
                .and_then(TcpListener::try_from)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))
        })
        .collect()
}

/// Accepts connections on `listener` until shutdown; each session runs as its own task.
pub async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            let _ = server.shutdown.recv().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok((stream, peer))) => {
                let server = server.clone();
                smol::spawn(async move { start_session(server, stream, peer).await }).detach();
            }
            Some(Err(e)) => {
                log::warn!("accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn start_session(server: Arc<Server>, stream: TcpStream, peer: SocketAddr) {
    use smol::io::AsyncWriteExt;
    let slot = match server.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(reply) => {
            let mut s = stream;
            let _ = s.write_all(&reply.encode()).await;
            log::info!("refused connection from {peer}: {}", reply.lines[0]);
            return;
        }
    };
    stream.set_nodelay(true).ok();
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    crate::ftp::session::Session::new(server, slot, Box::new(stream), peer, local)
        .run()
        .await;
}

/// Waits until no session is left, or `grace` has passed.
pub async fn drain(server: &Server, grace: Duration) {
    let deadline = Instant::now() + grace;
    while server.stats.sessions.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}
