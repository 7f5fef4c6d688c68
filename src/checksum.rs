//! The checksum of a spool body, taken while it is received and checked again, over the
//! bytes actually sent, before a destination may keep it (docs/ARCHITECTURE.md, "At the destination").
//!
//! New bodies get a CRC32C: one instruction per 8 bytes on x86-64 (SSE4.2) and ARMv8
//! (`crc`), so it costs almost nothing on the receive path, and S3 verifies it
//! (`x-amz-checksum-crc32c`). Ops queued by versions before 0.2 carry an MD5 (stored as a
//! bare hex string); they keep it, and are delivered and verified with it.
//!
//! Stored as text: `crc32c:1a2b3c4d` or `md5:<32 hex digits>` (a bare 32-digit hex string
//! is the old form of the latter).

use std::fmt;

use md5::Digest;
use serde::{Deserialize, Serialize};

/// A body's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Checksum {
    Crc32c(u32),
    Md5([u8; 16]),
}

impl Checksum {
    /// A running checksum of the same kind, to check bytes against this one.
    pub fn hasher(&self) -> Hasher {
        match self {
            Checksum::Crc32c(_) => Hasher::crc32c(),
            Checksum::Md5(_) => Hasher::Md5(Box::default()),
        }
    }

    /// The checksum of `bytes`, of the same kind as this one.
    pub fn of_same_kind(&self, bytes: &[u8]) -> Checksum {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish()
    }

    /// The digest's bytes, big-endian for a CRC (as S3 takes it, in base64).
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Checksum::Crc32c(c) => c.to_be_bytes().to_vec(),
            Checksum::Md5(d) => d.to_vec(),
        }
    }

    /// The algorithm's name as people and S3 write it.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Crc32c(_) => "CRC32C",
            Checksum::Md5(_) => "MD5",
        }
    }

    /// The digest in hex, without the algorithm.
    pub fn hex(&self) -> String {
        match self {
            Checksum::Crc32c(c) => format!("{c:08x}"),
            Checksum::Md5(d) => crate::support::hex(d),
        }
    }
}

/// A checksum being computed.
#[derive(Clone)]
pub enum Hasher {
    Crc32c(u32),
    Md5(Box<md5::Md5>),
}

impl Hasher {
    /// What every new body is hashed with.
    pub fn crc32c() -> Hasher {
        Hasher::Crc32c(0)
    }

    /// The checksum a new body of these bytes gets.
    pub fn crc32c_of(bytes: &[u8]) -> Checksum {
        let mut h = Hasher::crc32c();
        h.update(bytes);
        h.finish()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, bytes),
            Hasher::Md5(h) => h.update(bytes),
        }
    }

    /// The checksum of everything so far (the hasher can go on).
    pub fn finish(&self) -> Checksum {
        match self {
            Hasher::Crc32c(c) => Checksum::Crc32c(*c),
            Hasher::Md5(h) => Checksum::Md5(h.as_ref().clone().finalize().into()),
        }
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checksum::Crc32c(_) => write!(f, "crc32c:{}", self.hex()),
            Checksum::Md5(_) => write!(f, "md5:{}", self.hex()),
        }
    }
}

impl From<Checksum> for String {
    fn from(c: Checksum) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Checksum {
    type Error = String;

    fn try_from(s: String) -> Result<Checksum, String> {
        s.parse()
    }
}

impl std::str::FromStr for Checksum {
    type Err = String;

    fn from_str(s: &str) -> Result<Checksum, String> {
        let bad = || format!("not a checksum: {s:?} (want crc32c:8 hex digits or md5:32)");
        let hex_bytes = |h: &str, n: usize| -> Option<Vec<u8>> {
            (h.len() == 2 * n && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
                (0..n)
                    .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
        };
        if let Some(h) = s.strip_prefix("crc32c:") {
            let b = hex_bytes(h, 4).ok_or_else(bad)?;
            return Ok(Checksum::Crc32c(u32::from_be_bytes([
                b[0], b[1], b[2], b[3],
            ])));
        }
        // `md5:` or the bare hex of ops queued before there was a choice.
        let h = s.strip_prefix("md5:").unwrap_or(s);
        let b = hex_bytes(h, 16).ok_or_else(bad)?;
        let mut d = [0u8; 16];
        d.copy_from_slice(&b);
        Ok(Checksum::Md5(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli_as_s3_computes_it() {
        let mut h = Hasher::crc32c();
        h.update(b"123456789");
        // The check value of CRC-32C (RFC 3720, B.4).
        assert_eq!(h.finish(), Checksum::Crc32c(0xe306_9283));
        // Fed in pieces, the same.
        let mut pieces = Hasher::crc32c();
        for b in b"123456789".chunks(2) {
            pieces.update(b);
        }
        assert_eq!(pieces.finish(), h.finish());
        assert_eq!(
            h.finish().bytes(),
            vec![0xe3, 0x06, 0x92, 0x83],
            "big-endian"
        );
    }

    #[test]
    fn stored_forms_round_trip_and_old_md5_ops_still_parse() {
        let crc = Checksum::Crc32c(0x0102_0a0b);
        assert_eq!(crc.to_string(), "crc32c:01020a0b");
        assert_eq!("crc32c:01020a0b".parse::<Checksum>(), Ok(crc));
        let md5 = Checksum::Md5([0; 16]).of_same_kind(b"");
        let old = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(md5.to_string(), format!("md5:{old}"));
        assert_eq!(old.parse::<Checksum>(), Ok(md5), "the form of version 0.1");
        assert_eq!(format!("md5:{old}").parse::<Checksum>(), Ok(md5));
        let json = serde_json::to_string(&crc).unwrap();
        assert_eq!(json, "\"crc32c:01020a0b\"");
        assert_eq!(serde_json::from_str::<Checksum>(&json).unwrap(), crc);
        for bad in [
            "",
            "crc32c:",
            "crc32c:0102",
            "md5:xyz",
            "crc32c:0102030g",
            "é",
        ] {
            assert!(bad.parse::<Checksum>().is_err(), "{bad:?}");
        }
    }
}
