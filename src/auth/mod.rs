//! Passwords and logins.
//!
//! * Hashes are argon2id at the OWASP minimum (19 MiB, t=2, p=1) with a per-Sender salt.
//! * [`Authenticator::login`] resolves `name` or `name@pipe_id` plus a password to a
//!   (Sender, Pipe) or to a [`Refusal`]. Callers give the client one `530` whatever the
//!   reason and log the reason itself.
//! * Verifications run off the executor, at most `max_parallel` at a time, so a flood of
//!   `PASS` commands queues instead of exhausting memory (each costs 19 MiB).
//! * A verified-credential cache spares devices that log in for every file the argon2
//!   cost. Its keys are HMACs under a per-process random key, so the memory never holds a
//!   password or an offline-checkable digest of one. An entry holds only while the
//!   Sender's hash is unchanged, and admin changes clear the cache. Logins with the same
//!   credentials at once (cameras restarted together) wait for one check, not one each.
//! * Unknown Senders are verified against a dummy hash, so the time taken does not tell
//!   which names exist.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smol::lock::Semaphore;

use crate::names::random_token;

pub mod keys;
mod password;
mod verify;

use verify::{Cached, Checking};

use crate::store::{Pipe, Sender, Store, View};
pub use password::{check_hash, generate_password, hash_password, verify_password};

/// `USER` argument split into Sender name and optional Pipe id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginName<'a> {
    pub sender: &'a str,
    pub pipe: Option<&'a str>,
}

impl<'a> LoginName<'a> {
    /// `name` or `name@pipe_id`. Splits at the last `@`; validation happens on lookup.
    pub fn parse(user: &'a str) -> LoginName<'a> {
        match user.rsplit_once('@') {
            Some((sender, pipe)) => LoginName {
                sender,
                pipe: Some(pipe),
            },
            None => LoginName {
                sender: user,
                pipe: None,
            },
        }
    }
}

/// Why a login was refused. The client only ever sees `530`; this goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownSender,
    WrongPassword,
    SenderDisabled,
    SourceNotAllowed(IpAddr),
    TlsRequired,
    UnknownPipe(String),
    NotGranted(String),
    PipeDisabled(String),
    /// No Pipe given and the Sender has several.
    Ambiguous(Vec<String>),
    /// No Pipe given and the Sender has none.
    NoPipe,
    /// The Sender's password changed since this session logged in.
    PasswordChanged,
    /// The public key is not one of the Sender's.
    WrongKey,
    /// The key this session logged in with was removed from the Sender.
    KeyRemoved,
    /// The store could not be read.
    Store(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownSender => f.write_str("unknown sender"),
            Refusal::WrongPassword => f.write_str("wrong password"),
            Refusal::SenderDisabled => f.write_str("sender is disabled"),
            Refusal::SourceNotAllowed(ip) => write!(
                f,
                "source address {ip} is not in the sender's allowed networks"
            ),
            Refusal::TlsRequired => f.write_str("sender requires TLS and the connection is plain"),
            Refusal::UnknownPipe(p) => write!(f, "no pipe {p:?}"),
            Refusal::NotGranted(p) => write!(f, "sender has no grant for pipe {p:?}"),
            Refusal::PipeDisabled(p) => write!(f, "pipe {p:?} is disabled"),
            Refusal::Ambiguous(ps) => write!(
                f,
                "sender has several pipes ({}) and the login names none (use name@pipe_id)",
                ps.join(", ")
            ),
            Refusal::NoPipe => f.write_str("sender has no pipe granted"),
            Refusal::PasswordChanged => f.write_str("the sender's password was changed"),
            Refusal::WrongKey => f.write_str("the public key is not one of the sender's"),
            Refusal::KeyRemoved => f.write_str("the sender's key was removed"),
            Refusal::Store(e) => write!(f, "store error: {e}"),
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    pub sender: Sender,
    pub pipe: Pipe,
    /// The fingerprint of the public key an SFTP session logged in with (else it used the
    /// password).
    pub key: Option<String>,
}

/// Tuning for [`Authenticator`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// argon2 verifications running at once (each holds 19 MiB).
    pub max_parallel: usize,
    /// How long a verified credential is trusted without argon2.
    pub cache_ttl: Duration,
    /// Most cache entries kept; expired ones go first, then all.
    pub cache_capacity: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_parallel: 2,
            cache_ttl: Duration::from_secs(15 * 60),
            cache_capacity: 1024,
        }
    }
}

/// Everything a lookup needs, read in one snapshot.
struct Lookup {
    sender: Option<Sender>,
    granted: Vec<String>,
    pipe: Option<Pipe>,
}

/// Resolves logins against the store; shared by every session of a daemon.
pub struct Authenticator {
    store: Arc<Store>,
    config: AuthConfig,
    permits: Semaphore,
    hmac_key: [u8; 32],
    dummy_hash: crate::secret::Secret,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// Verifications running, by cache key: a login whose credentials are being checked
    /// already waits for that check (and its cache entry) instead of running its own.
    checking: Mutex<Checking>,
    argon2_runs: AtomicU64,
}

impl Authenticator {
    /// Blocking (hashes the dummy password once): call before serving.
    pub fn new(store: Arc<Store>, config: AuthConfig) -> Authenticator {
        let mut hmac_key = [0u8; 32];
        getrandom::getrandom(&mut hmac_key).expect("the operating system's random source failed");
        let dummy_hash =
            hash_password(&random_token(20)).expect("a generated password is not empty");
        Authenticator {
            store,
            permits: Semaphore::new(config.max_parallel.max(1)),
            config,
            hmac_key,
            dummy_hash,
            cache: Mutex::new(HashMap::new()),
            checking: Mutex::new(HashMap::new()),
            argon2_runs: AtomicU64::new(0),
        }
    }

    /// How many argon2 verifications ran (cache misses and unknown names).
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
    }

    /// Resolves a login. Every refusal takes the time of one verification, whether or not
    /// the Sender exists; `tls` tells whether the control connection is protected.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        peer: IpAddr,
        tls: bool,
    ) -> Result<Login, Refusal> {
        let name = LoginName::parse(user);
        let lookup = self.lookup(name).await?;
        let hash = lookup.sender.as_ref().map(|s| s.password_hash.expose());
        if !self.verify(name.sender, hash, password).await {
            return Err(match lookup.sender {
                None => Refusal::UnknownSender,
                Some(_) => Refusal::WrongPassword,
            });
        }
        authorise(name, lookup, peer, tls)
    }

    /// Resolves an SFTP login with a public key (`offered`, its wire form) whose
    /// ownership SSH has verified. Over SSH the connection is encrypted, so Senders that
    /// require TLS may use it.
    pub async fn login_key(
        &self,
        user: &str,
        offered: &[u8],
        peer: IpAddr,
    ) -> Result<Login, Refusal> {
        let name = LoginName::parse(user);
        let lookup = self.lookup(name).await?;
        let sender = lookup.sender.as_ref().ok_or(Refusal::UnknownSender)?;
        let fingerprint = keys::find(&sender.ssh_keys, offered).ok_or(Refusal::WrongKey)?;
        let mut login = authorise(name, lookup, peer, true)?;
        login.key = Some(fingerprint);
        Ok(login)
    }

    /// Checks a session's login again after an admin change: the same rules as at login,
    /// against the Sender, Grants and Pipe as they are now, and the same password. The
    /// returned login carries the current settings (overwrite policy, TLS reuse...).
    pub async fn recheck(&self, login: &Login, peer: IpAddr, tls: bool) -> Result<Login, Refusal> {
        let name = LoginName {
            sender: &login.sender.name,
            pipe: Some(&login.pipe.id),
        };
        let lookup = self.lookup(name).await?;
        match (&login.key, lookup.sender.as_ref()) {
            (Some(fp), Some(s)) => {
                let still = s
                    .ssh_keys
                    .iter()
                    .filter_map(|l| keys::SshKey::parse(l).ok())
                    .any(|k| &k.fingerprint == fp);
                if !still {
                    return Err(Refusal::KeyRemoved);
                }
            }
            (None, Some(s)) if s.password_hash != login.sender.password_hash => {
                return Err(Refusal::PasswordChanged);
            }
            _ => {}
        }
        let mut fresh = authorise(name, lookup, peer, tls)?;
        fresh.key = login.key.clone();
        Ok(fresh)
    }

    /// Reads what a login needs in one snapshot (off the executor).
    async fn lookup(&self, name: LoginName<'_>) -> Result<Lookup, Refusal> {
        let store = self.store.clone();
        let (sender_name, pipe_id) = (name.sender.to_string(), name.pipe.map(str::to_string));
        smol::unblock(move || -> crate::store::Result<Lookup> {
            let r = store.read()?;
            let sender = r.sender(&sender_name)?;
            let granted = if sender.is_some() {
                r.grants_of(&sender_name)?
            } else {
                Vec::new()
            };
            let pipe_id = pipe_id.or_else(|| (granted.len() == 1).then(|| granted[0].clone()));
            let pipe = match pipe_id {
                Some(id) => r.pipe(&id)?,
                None => None,
            };
            Ok(Lookup {
                sender,
                granted,
                pipe,
            })
        })
        .await
        .map_err(|e| Refusal::Store(e.to_string()))
    }
}

/// The rules a Sender whose password is right must pass, at login and after every admin
/// change: enabled, from an allowed network, over TLS if it requires it, granted an
/// enabled Pipe.
fn authorise(name: LoginName, lookup: Lookup, peer: IpAddr, tls: bool) -> Result<Login, Refusal> {
    let sender = lookup.sender.ok_or(Refusal::UnknownSender)?;
    if !sender.enabled {
        return Err(Refusal::SenderDisabled);
    }
    if !sender.allows(peer) {
        return Err(Refusal::SourceNotAllowed(peer));
    }
    if sender.require_tls && !tls {
        return Err(Refusal::TlsRequired);
    }
    let pipe = match (name.pipe, lookup.pipe) {
        (Some(id), None) => return Err(Refusal::UnknownPipe(id.to_string())),
        (Some(id), Some(_)) if !lookup.granted.iter().any(|g| g == id) => {
            return Err(Refusal::NotGranted(id.to_string()));
        }
        (_, Some(pipe)) => pipe,
        (None, None) if lookup.granted.is_empty() => return Err(Refusal::NoPipe),
        (None, None) if lookup.granted.len() > 1 => {
            return Err(Refusal::Ambiguous(lookup.granted));
        }
        // One grant whose Pipe record vanished between reads: treat as unknown.
        (None, None) => return Err(Refusal::UnknownPipe(lookup.granted.join(","))),
    };
    if !pipe.enabled {
        return Err(Refusal::PipeDisabled(pipe.id));
    }
    Ok(Login {
        sender,
        pipe,
        key: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names() {
        assert_eq!(
            LoginName::parse("cam1"),
            LoginName {
                sender: "cam1",
                pipe: None
            }
        );
        assert_eq!(
            LoginName::parse("cam1@ab12"),
            LoginName {
                sender: "cam1",
                pipe: Some("ab12")
            }
        );
        assert_eq!(
            LoginName::parse("a@b@c"),
            LoginName {
                sender: "a@b",
                pipe: Some("c")
            }
        );
    }
}
