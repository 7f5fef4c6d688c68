//! The SSH host key: brought with `--sftp-host-key PATH` (any OpenSSH private key that is
//! not passphrase-protected), else an ed25519 key made at first start under the state
//! directory, mode 0600. Its SHA-256 fingerprint (`SHA256:...`, as `ssh-keygen -l` prints
//! it) goes to the log and `status`, for technicians to check on first connection.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{HashAlg, LineEnding};
use russh::keys::{Algorithm, PrivateKey};

use crate::state::{StateDir, write_atomically};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the SSH host key {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error("the SSH host key {0} is protected by a passphrase; give one without")]
    Encrypted(PathBuf),
    #[error("the SSH host key {path} is {algorithm}; use ed25519, ECDSA or RSA")]
    Unsupported { path: PathBuf, algorithm: String },
    #[error("cannot write the SSH host key {path}: {why}")]
    Write { path: PathBuf, why: String },
}

/// The host key and its fingerprint.
pub struct HostKey {
    pub key: PrivateKey,
    pub fingerprint: String,
}

impl HostKey {
    fn new(key: PrivateKey) -> HostKey {
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        HostKey { key, fingerprint }
    }
}

/// Loads `given`, else the state directory's key, making it first if there is none.
pub fn load_or_create(state: &StateDir, given: Option<&Path>) -> Result<HostKey, Error> {
    if let Some(path) = given {
        return load(path);
    }
    let path = state.ssh_host_key();
    if path.exists() {
        return load(&path);
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::Write {
        path: path.clone(),
        why: format!("no randomness: {e}"),
    })?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let pem = key.to_openssh(LineEnding::LF).map_err(|e| Error::Write {
        path: path.clone(),
        why: e.to_string(),
    })?;
    write_atomically(&path, pem.as_bytes(), 0o600).map_err(|e| Error::Write {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let made = HostKey::new(key);
    log::info!(
        "made a new SSH host key {} ({})",
        path.display(),
        made.fingerprint
    );
    Ok(made)
}

fn load(path: &Path) -> Result<HostKey, Error> {
    let read = |why: String| Error::Read {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
    let key = PrivateKey::from_openssh(text.trim()).map_err(|e| read(e.to_string()))?;
    if key.is_encrypted() {
        return Err(Error::Encrypted(path.to_path_buf()));
    }
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. } => {}
        other => {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                algorithm: other.to_string(),
            });
        }
    }
    Ok(HostKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_made_once_private_and_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.create().unwrap();
        let made = load_or_create(&state, None).unwrap();
        assert!(
            made.fingerprint.starts_with("SHA256:"),
            "{}",
            made.fingerprint
        );
        let mode = std::fs::metadata(state.ssh_host_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(&state, None).unwrap();
        assert_eq!(again.fingerprint, made.fingerprint);
        // A key brought with --sftp-host-key is used as it is.
        let brought = load_or_create(&state, Some(&state.ssh_host_key())).unwrap();
        assert_eq!(brought.fingerprint, made.fingerprint);
    }

    #[test]
    fn an_unreadable_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key").unwrap();
        let e = load_or_create(&state, Some(&junk))
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("cannot read the SSH host key"), "{e}");
        let e = load_or_create(&state, Some(&dir.path().join("none")))
            .err()
            .unwrap();
        assert!(e.to_string().contains("No such file"), "{e}");
    }
}
