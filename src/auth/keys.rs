//! Sender public keys for SFTP logins: OpenSSH public key lines (`ssh-ed25519 AAAA...
//! comment`), as `sender key add` reads them and the Sender record keeps them. Only
//! ed25519, ECDSA and RSA keys of at least 2048 bits are accepted.
//!
//! Read here from the key's wire form (RFC 4253 §6.6, RFC 5656 §3.1) rather than by the
//! SSH library, so that Senders' keys are checked and kept the same way in a build
//! without SFTP (no SSH library at all), and a fleet file means the same to both.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::Digest;

use crate::names::{Invalid, invalid};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// One parsed key line.
#[derive(Debug, Clone)]
pub struct SshKey {
    algorithm: String,
    /// The key in its wire form, as a client offers it.
    blob: Vec<u8>,
    comment: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Reads the key data after its type in `wire`, by the type's layout (RFC 4253, 5656,
/// 8709); whether it is well formed. Refuses types we do not accept, and RSA below
/// [`MIN_RSA_BITS`].
fn key_body(
    algorithm: &str,
    wire: &mut Wire,
    not_a_key: impl Fn(&str) -> Invalid,
) -> Result<bool, Invalid> {
    Ok(match algorithm {
        "ssh-ed25519" => wire.string().is_some_and(|k| k.len() == 32),
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => wire
            .string()
            .filter(|curve| algorithm.strip_prefix("ecdsa-sha2-").map(str::as_bytes) == Some(curve))
            .and_then(|_| wire.string())
            .is_some(),
        "ssh-rsa" => {
            let n = wire.string().and_then(|_| wire.string());
            let bits = n.map_or(0, mpint_bits);
            if n.is_some() && bits < MIN_RSA_BITS {
                return invalid(format!(
                    "RSA key of {bits} bits: at least {MIN_RSA_BITS} are needed"
                ));
            }
            n.is_some()
        }
        "ssh-dss" | "sk-ssh-ed25519@openssh.com" | "sk-ecdsa-sha2-nistp256@openssh.com" => {
            let name = algorithm.split('@').next().unwrap_or(algorithm);
            return invalid(format!(
                "{name} keys are not accepted: use ed25519, ECDSA or RSA"
            ));
        }
        _ => return Err(not_a_key("unknown key type")),
    })
}

impl SshKey {
    /// Parses one OpenSSH public key line.
    pub fn parse(line: &str) -> Result<SshKey, Invalid> {
        let not_a_key = |why: &str| {
            Invalid(format!(
                "not an OpenSSH public key ({why}): give a line like 'ssh-ed25519 AAAA... name', as in id_ed25519.pub"
            ))
        };
        let mut fields = line.split_whitespace();
        let (Some(algorithm), Some(data)) = (fields.next(), fields.next()) else {
            return Err(not_a_key("expected the key type, then the key"));
        };
        let comment = fields.collect::<Vec<_>>().join(" ");
        let blob = STANDARD
            .decode(data)
            .map_err(|_| not_a_key("the key is not base64"))?;
        let mut wire = Wire(&blob);
        let inner = wire
            .string()
            .ok_or_else(|| not_a_key("the key is cut short"))?;
        if inner != algorithm.as_bytes() {
            return Err(not_a_key("its type does not match the key"));
        }
        let well_formed = key_body(algorithm, &mut wire, not_a_key)?;
        if !well_formed || !wire.0.is_empty() {
            return Err(not_a_key("the key's data is malformed"));
        }
        let fingerprint = format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob))
        );
        Ok(SshKey {
            algorithm: algorithm.to_string(),
            blob,
            comment,
            fingerprint,
        })
    }

    /// The line kept in the Sender record (type, key, comment).
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.algorithm, STANDARD.encode(&self.blob));
        if !self.comment.is_empty() {
            line.push(' ');
            line.push_str(&self.comment);
        }
        line
    }

    pub fn algorithm(&self) -> String {
        self.algorithm.clone()
    }

    pub fn comment(&self) -> String {
        self.comment.clone()
    }

    /// The key in its wire form.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }
}

/// Reads SSH wire strings (a 32-bit length, then the bytes) off the front.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let end = len.checked_add(4)?;
        let s = self.0.get(4..end)?;
        self.0 = &self.0[end..];
        Some(s)
    }
}

/// Significant bits of a positive SSH `mpint` (big-endian, maybe led by a zero byte).
fn mpint_bits(n: &[u8]) -> usize {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    n.first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
}

/// Whether the key a client offered (`offered`, its wire form) is one of `lines`,
/// whatever the comment; the matching key's fingerprint.
pub fn find(lines: &[String], offered: &[u8]) -> Option<String> {
    lines
        .iter()
        .filter_map(|l| SshKey::parse(l).ok())
        .find(|k| k.blob == offered)
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
        assert_eq!(k.line(), ED);
        assert_eq!(find(&[k.line()], again.blob()), Some(k.fingerprint.clone()));
        assert_eq!(find(&[], again.blob()), None);
    }

    #[test]
    fn junk_and_private_keys_are_refused_with_a_sentence() {
        for bad in [
            "",
            "hello",
            "ssh-ed25519 !!!",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            // The type on the line is not the key's.
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGpXwGkSr8ZZFWwJ2cG1o4fdvV+7AexlPW0FqGr5mV9p",
            // Cut short.
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpXwGkSr8ZZFWwJ2cG1o4fdvV",
        ] {
            let e = SshKey::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not an OpenSSH public key"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn an_ecdsa_key_must_name_its_own_curve() {
        let key = |curve: &str| {
            let mut blob = Vec::new();
            for part in [
                &b"ecdsa-sha2-nistp256"[..],
                curve.as_bytes(),
                &[4u8; 65][..],
            ] {
                blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
                blob.extend_from_slice(part);
            }
            format!("ecdsa-sha2-nistp256 {}", STANDARD.encode(blob))
        };
        assert!(SshKey::parse(&key("nistp256")).is_ok());
        for wrong in ["", "nistp384", "256"] {
            let e = SshKey::parse(&key(wrong)).unwrap_err().to_string();
            assert!(e.contains("malformed"), "{wrong:?}: {e}");
        }
    }

    #[test]
    fn mpint_bits_ignore_the_sign_byte() {
        assert_eq!(mpint_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(mpint_bits(&[0x01, 0x00]), 9);
        assert_eq!(mpint_bits(&[]), 0);
    }
}
