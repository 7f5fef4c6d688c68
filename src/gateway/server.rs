//! What every session shares, whatever its protocol: the session table and its limits,
//! login scoring and bans, counters, the shutdown signal, and the store, spool and
//! authenticator they work on. FTP and SFTP sessions each hold a [`Slot`] here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smol::lock::Semaphore;
use smol::net::TcpListener;

use super::Refused;
use crate::auth::Authenticator;
use crate::gateway::bans::{BanPolicy, Bans};
use crate::gateway::limits::{Caps, Limits};
use crate::spool::Spool;
use crate::store::{self, Reader, Store, Writer};

/// Settings of `ftpgate serve` that concern every session, FTP or SFTP (FTP's own are
/// `crate::ftp::Config`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Idle control connection after login (a partial line does not count as activity).
    pub idle_timeout: Duration,
    /// Time allowed to log in, from the connection's start, and to finish a command line,
    /// from its first byte.
    pub login_timeout: Duration,
    /// Most logged-in sessions.
    pub max_sessions: usize,
    /// Most connections waiting to log in (half of them from one address).
    pub max_unauthenticated: usize,
    pub max_sessions_per_ip: usize,
    /// Delay before answering a failed login.
    pub login_fail_delay: Duration,
    /// How long running transfers may continue after SIGTERM.
    pub shutdown_grace: Duration,
    pub bans: BanPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout: Duration::from_secs(300),
            login_timeout: Duration::from_secs(30),
            max_sessions: 256,
            max_unauthenticated: 64,
            max_sessions_per_ip: 32,
            login_fail_delay: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            bans: BanPolicy::default(),
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
    pub tls: Option<Arc<crate::gateway::tls::Tls>>,
    pub bans: Mutex<Bans>,
    pub stats: Stats,
    /// Logins, failures and bans, recorded as events and activity in batches.
    pub events: crate::events::Recorder,
    /// Files received and delivered per minute, the last hour (the status page's chart).
    pub minutes: crate::web::minutes::Minutes,
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

/// Holds a session's place in the limits (see [`crate::gateway::limits`]); released on drop.
pub struct Slot {
    server: Arc<Server>,
    id: crate::gateway::limits::Id,
    /// Closed when this connection, still waiting to log in, must make room for another.
    pub evicted: smol::channel::Receiver<()>,
}

impl Slot {
    /// The session has logged in: it now holds a logged-in slot, or is refused.
    pub fn promote(&mut self) -> Result<(), Refused> {
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

/// One password check, scored before it runs (see [`crate::gateway::bans`]); say how it went
/// with [`LoginAttempt::succeeded`] or [`LoginAttempt::failed`].
pub struct LoginAttempt {
    server: Arc<Server>,
    ip: IpAddr,
    permit: Option<smol::lock::SemaphoreGuardArc>,
    /// This attempt's point took the address to the ban threshold: if it fails, the
    /// address is banned (said once, though checks of one address run in parallel).
    bans_if_failed: bool,
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
        if self.bans_if_failed {
            log::warn!("{} is banned for now: too many failed logins", self.ip);
            self.server.events.event(crate::store::events::Event {
                address: Some(self.ip.to_string()),
                reason: Some("too many failed logins".into()),
                ..crate::store::events::Event::of(crate::store::events::Kind::AddressBanned)
            });
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
        tls: Option<Arc<crate::gateway::tls::Tls>>,
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
            events: crate::events::Recorder::default(),
            minutes: crate::web::minutes::Minutes::default(),
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
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = crate::net::canonical(ip);
        if self.bans().is_banned(ip, Instant::now()) {
            return Err(Refused::Banned);
        }
        if self.is_shutting_down() {
            return Err(Refused::ShuttingDown);
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
    pub async fn login_attempt(self: &Arc<Self>, ip: IpAddr) -> Result<LoginAttempt, Refused> {
        let ip = crate::net::canonical(ip);
        let semaphore = self
            .verifying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ip)
            .or_insert_with(|| Arc::new(Semaphore::new(VERIFYING_PER_IP)))
            .clone();
        let mut attempt = LoginAttempt {
            server: self.clone(),
            ip,
            permit: Some(semaphore.acquire_arc().await),
            bans_if_failed: false,
        };
        drop(semaphore);
        let mut bans = self.bans();
        let now = Instant::now();
        if !bans.attempt(ip, now) {
            return Err(Refused::Banned);
        }
        attempt.bans_if_failed = bans.is_banned(ip, now);
        drop(bans);
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

/// Waits until no session is left, or `grace` has passed.
pub async fn drain(server: &Server, grace: Duration) {
    let deadline = Instant::now() + grace;
    while server.stats.sessions.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}
