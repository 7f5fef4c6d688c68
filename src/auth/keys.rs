//! Sender public keys for SFTP logins: OpenSSH public key lines (`ssh-ed25519 AAAA...
//! comment`), as `sender key add` reads them and the Sender record keeps them. Only
//! ed25519, ECDSA and RSA keys of at least 2048 bits are accepted.

use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};

use crate::names::{Invalid, invalid};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// One parsed key line.
#[derive(Debug, Clone)]
pub struct SshKey {
    pub key: PublicKey,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

impl SshKey {
    /// Parses one OpenSSH public key line.
    pub fn parse(line: &str) -> Result<SshKey, Invalid> {
        let line = line.trim();
        let key = PublicKey::from_openssh(line).map_err(|e| {
            Invalid(format!(
                "not an OpenSSH public key ({e}): give a line like 'ssh-ed25519 AAAA... name', as in id_ed25519.pub"
            ))
        })?;
        match key.algorithm() {
            Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => {}
            Algorithm::Rsa { .. } => {
                let bits = key
                    .key_data()
                    .rsa()
                    .map(|k| k.key_size())
                    .map_or(0, |b| b as usize);
                if bits < MIN_RSA_BITS {
                    return invalid(format!(
                        "RSA key of {bits} bits: at least {MIN_RSA_BITS} are needed"
                    ));
                }
            }
            other => {
                return invalid(format!(
                    "{other} keys are not accepted: use ed25519, ECDSA or RSA"
                ));
            }
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Ok(SshKey { key, fingerprint })
    }

    /// The line kept in the Sender record (algorithm, key, comment).
    pub fn line(&self) -> String {
        self.key.to_openssh().unwrap_or_default()
    }

    pub fn algorithm(&self) -> String {
        self.key.algorithm().to_string()
    }

    pub fn comment(&self) -> String {
        self.key.comment().to_string()
    }
}

/// Whether `offered` is one of `lines` (the key material, whatever the comment); the
/// matching key's fingerprint.
pub fn find(lines: &[String], offered: &PublicKey) -> Option<String> {
    lines
        .iter()
        .filter_map(|l| SshKey::parse(l).ok())
        .find(|k| k.key.key_data() == offered.key_data())
        .map(|k| k.fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpXwGkSr8ZZFWwJ2cG1o4fdvV+7AexlPW0FqGr5mV9p cam7@line2";

    #[test]
    fn an_ed25519_line_parses_with_its_fingerprint_and_comment() {
        let k = SshKey::parse(ED).unwrap();
        assert!(k.fingerprint.starts_with("SHA256:"));
        assert_eq!(k.algorithm(), "ssh-ed25519");
        assert_eq!(k.comment(), "cam7@line2");
        let again = SshKey::parse(&k.line()).unwrap();
        assert_eq!(again.fingerprint, k.fingerprint);
        assert_eq!(find(&[k.line()], &again.key), Some(k.fingerprint.clone()));
        assert_eq!(find(&[], &again.key), None);
    }

    #[test]
    fn junk_and_private_keys_are_refused_with_a_sentence() {
        for bad in [
            "",
            "hello",
            "ssh-ed25519 !!!",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ] {
            let e = SshKey::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not an OpenSSH public key"), "{bad:?}: {e}");
        }
    }
}
