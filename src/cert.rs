//! The server certificate for explicit FTPS: an ECDSA P-256 key (fast handshakes on ARM)
//! and a self-signed certificate made with rcgen, written to `state/tls/` with the key at
//! mode 0600. Technicians pin the SHA-256 fingerprint in their devices.

use std::fs;
use std::os::unix::fs::DirBuilderExt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use sha2::{Digest, Sha256};

use crate::state::{StateDir, write_atomically};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid certificate name {0:?}: use a DNS name or an IP address")]
    BadName(String),
    #[error("could not generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("could not write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Validity of generated certificates: under the 398 days clients and scanners accept.
pub const VALID_DAYS: i64 = 397;
/// A generated certificate older than this is renewed when the daemon starts.
pub const RENEW_AFTER: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// What `cert generate` made.
#[derive(Debug, Clone)]
pub struct Generated {
    pub names: Vec<String>,
    pub fingerprint: String,
}

/// `AB:CD:...` SHA-256 over the DER certificate, as browsers and `openssl x509
/// -fingerprint -sha256` show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The names a certificate covers: those asked for, the host name, and `localhost`.
pub fn default_names(asked: &[String]) -> Vec<String> {
    let mut names: Vec<String> = asked.to_vec();
    names.extend(crate::state::host_name());
    names.push("localhost".into());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    names
}

fn check_name(name: &str) -> Result<(), Error> {
    let dns_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if dns_ok || name.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

/// Generates a new key and certificate for `names` into the state directory, replacing
/// what was there.
pub fn generate(state: &StateDir, names: &[String]) -> Result<Generated, Error> {
    for n in names {
        check_name(n)?;
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALID_DAYS);
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().map_or("ftpgate", String::as_str),
    );
    dn.push(DnType::OrganizationName, "ftpgate");
    params.distinguished_name = dn;
    let cert = params.self_signed(&key)?;

    let dir = state.tls_dir();
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| Error::Write { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    write_atomically(&state.key_file(), key.serialize_pem().as_bytes(), 0o600)
        .map_err(io(&state.key_file()))?;
    write_atomically(&state.cert_file(), cert.pem().as_bytes(), 0o644)
        .map_err(io(&state.cert_file()))?;
    Ok(Generated {
        names: names.to_vec(),
        fingerprint: fingerprint(cert.der()),
    })
}
