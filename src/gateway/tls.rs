//! Explicit FTPS (RFC 4217) setup: the rustls server configuration and the certificate.
//!
//! * ring provider, TLS 1.2 and 1.3 only; ring's suites are all AEAD (ECDHE with
//!   AES-GCM or ChaCha20-Poly1305).
//! * Certificates come from `--cert`/`--key`, else `state/tls/` (generated with rcgen on
//!   first start: ECDSA P-256, names from the host name and the listen addresses).
//! * Resumption: stateless tickets (valid for hours, usable again and again, as clients
//!   offer the control connection's session for every data connection) plus a session
//!   cache for TLS 1.2 clients without tickets. Each control connection embeds a random
//!   per-session token in its tickets ([`ServerConnection::set_resumption_data`]); a data
//!   connection counts as "resumed" only if it brings back that token, so another client
//!   cannot inject data even from the same address.
//! * SIGHUP reloads the certificate; sessions already open keep theirs. The ticket keys
//!   and the session cache live as long as the daemon, so a session opened before a
//!   reload still resumes on its data connections after it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures_rustls::TlsAcceptor;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::server::{ServerConnection, ServerSessionMemoryCache};
use futures_rustls::rustls::{self, ServerConfig};

use crate::state::StateDir;

/// Global TLS policy (`--tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    Off,
    #[default]
    Optional,
    Required,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "off" => Ok(Policy::Off),
            "optional" => Ok(Policy::Optional),
            "required" => Ok(Policy::Required),
            _ => Err(format!(
                "invalid TLS policy {s:?}: use off, optional or required"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}")]
    Pem { path: String, what: &'static str },
    #[error("the certificate and key do not fit together or are not supported: {0}")]
    Config(#[from] rustls::Error),
    #[error("{0}")]
    Generate(#[from] crate::cert::Error),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub struct Source {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Generate into these paths when they do not exist (the state directory's files).
    pub generate_names: Option<Vec<String>>,
}

impl Source {
    /// `--cert`/`--key` if given, else the state directory's pair, generated if missing.
    pub fn new(
        state: &StateDir,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        names: Vec<String>,
    ) -> Source {
        match (cert, key) {
            (Some(cert), Some(key)) => Source {
                cert,
                key,
                generate_names: None,
            },
            _ => Source {
                cert: state.cert_file(),
                key: state.key_file(),
                generate_names: Some(names),
            },
        }
    }
}

/// The live TLS setup: a config that SIGHUP can replace.
pub struct Tls {
    source: Source,
    resumption: Resumption,
    current: RwLock<Configs>,
}

/// What lets a client resume a session: made once, kept across reloads.
#[derive(Clone)]
struct Resumption {
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
    cache: Arc<dyn rustls::server::StoresServerSessions>,
}

impl Resumption {
    fn new() -> Result<Resumption, Error> {
        Ok(Resumption {
            ticketer: rustls::crypto::ring::Ticketer::new()?,
            cache: ServerSessionMemoryCache::new(4096),
        })
    }
}

/// The control-connection config, the data-connection config, and the fingerprint.
struct Configs {
    control: Arc<ServerConfig>,
    /// Same certificate, ticketer and cache, but no TLS 1.3 tickets: a client that only
    /// sends (an upload) never reads them, and closing a socket with unread data resets
    /// it, which can cut off the end of the upload.
    data: Arc<ServerConfig>,
    fingerprint: String,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

fn build(cert_path: &Path, key_path: &Path, resumption: &Resumption) -> Result<Configs, Error> {
    let pem = read(cert_path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(Error::Pem {
            path: cert_path.display().to_string(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|_| Error::Pem {
        path: key_path.display().to_string(),
        what: "private key",
    })?;
    let fingerprint = crate::cert::fingerprint(&certs[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // Our suite order (strongest first), not the client's.
    config.ignore_client_order = true;
    config.ticketer = resumption.ticketer.clone();
    config.session_storage = resumption.cache.clone();
    config.send_tls13_tickets = 4;
    let mut data = config.clone();
    data.send_tls13_tickets = 0;
    Ok(Configs {
        control: Arc::new(config),
        data: Arc::new(data),
        fingerprint,
    })
}

impl Tls {
    /// Loads (or first generates) the certificate.
    pub fn load(state: &StateDir, source: Source) -> Result<Tls, Error> {
        if let Some(names) = &source.generate_names {
            let age = std::fs::metadata(&source.cert)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let stale = age.is_some_and(|a| a > crate::cert::RENEW_AFTER);
            if age.is_none() || stale {
                let made = crate::cert::generate(state, names)?;
                let why = if stale {
                    "renewed the expiring"
                } else {
                    "generated a"
                };
                log::info!(
                    "{why} TLS certificate for {} in {} (devices that pin it need the new fingerprint)",
                    made.names.join(", "),
                    state.tls_dir().display()
                );
            }
        }
        let resumption = Resumption::new()?;
        let current = build(&source.cert, &source.key, &resumption)?;
        Ok(Tls {
            source,
            resumption,
            current: RwLock::new(current),
        })
    }

    /// Reads the certificate again (SIGHUP). On error the old one stays. Tickets and
    /// cached sessions stay valid.
    pub fn reload(&self) -> Result<String, Error> {
        let fresh = build(&self.source.cert, &self.source.key, &self.resumption)?;
        let fp = fresh.fingerprint.clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(fp)
    }

    /// SHA-256 fingerprint of the certificate in use.
    pub fn fingerprint(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .fingerprint
            .clone()
    }

    /// For `AUTH TLS` on a control connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .control
                .clone(),
        )
    }

    /// For PROT P data connections.
    pub fn data_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .data
                .clone(),
        )
    }
}

/// What a failed handshake means for a technician, when it is something they can act on:
/// a client too old for TLS 1.2 (or without an AEAD suite), or clear data sent on a data
/// connection after `PROT P`. `None` for a client that just went away or misbehaved.
pub fn handshake_advice(e: &std::io::Error, data_connection: bool) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    match tls {
        rustls::Error::PeerIncompatible(why) => Some(format!(
            "the client cannot speak TLS 1.2 or 1.3 with an AEAD cipher suite ({why:?}), the oldest this gateway speaks: update the device's firmware, or let it use plain FTP on a segregated network (see docs/OPERATING.md, FTPS)"
        )),
        rustls::Error::InvalidMessage(_) if data_connection => Some(
            "the client sent clear data on a data connection after PROT P: turn on TLS for data connections in the client".into(),
        ),
        _ => None,
    }
}

/// A fresh per-session token for resumption binding.
pub fn session_token() -> [u8; 16] {
    let mut t = [0u8; 16];
    getrandom::getrandom(&mut t).expect("the operating system's random source failed");
    t
}

/// The token of the control session whose TLS session a data connection resumed, if it
/// resumed one of ours.
pub fn resumed_token(conn: &ServerConnection) -> Option<&[u8]> {
    conn.received_resumption_data()
}
