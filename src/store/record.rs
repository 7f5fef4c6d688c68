//! The pieces of the store's compact binary records: variable-length numbers, short
//! strings, spool body ids packed from hex, checksums. The catalog's entries and the
//! outbox's ops are written with them (`namespace::catalog::codec`,
//! `namespace::outbox::codec`); the small tables that hold one record per Sender or Pipe
//! stay JSON, where a field name costs nothing that grows.

use crate::checksum::Checksum;

/// In a body's length byte: what follows is packed hex.
const PACKED: u8 = 0x80;

/// A flags byte: the bits whose condition holds.
pub(crate) fn flags(bits: &[(bool, u8)]) -> u8 {
    bits.iter()
        .filter(|(on, _)| *on)
        .fold(0, |f, (_, bit)| f | bit)
}

/// A record being written.
#[derive(Default)]
pub(crate) struct Out(pub Vec<u8>);

impl Out {
    pub fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    /// LEB128: seven bits a byte, low first; a small number takes one byte.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A length, then the bytes.
    pub fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend(s.as_bytes());
    }

    /// A spool body id. Ids are lowercase hex (see `spool::new_id`): two digits to a
    /// byte. Any other text (ids of 0.1, tests) is kept as it is, up to 127 bytes.
    pub fn body(&mut self, b: &str) {
        let hex = |c: u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
        let bytes = b.as_bytes();
        if bytes.len().is_multiple_of(2)
            && bytes.len() / 2 < PACKED as usize
            && bytes.iter().all(|&c| hex(c))
        {
            self.0.push(PACKED | (bytes.len() / 2) as u8);
            for pair in bytes.chunks(2) {
                let digit = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
                self.0.push(digit(pair[0]) << 4 | digit(pair[1]));
            }
        } else {
            // Longer ids are not made; a short text id is stored as it is.
            let n = bytes.len().min(PACKED as usize - 1);
            self.0.push(n as u8);
            self.0.extend(&bytes[..n]);
        }
    }

    /// A tag (1 CRC32C, 2 MD5), then the digest.
    pub fn checksum(&mut self, sum: &Checksum) {
        match sum {
            Checksum::Crc32c(c) => {
                self.0.push(1);
                self.0.extend(c.to_be_bytes());
            }
            Checksum::Md5(d) => {
                self.0.push(2);
                self.0.extend(d);
            }
        }
    }
}

/// A record being read. Every read checks the length: a damaged record is an error, never
/// a panic or a misread.
pub(crate) struct Read<'a>(pub &'a [u8]);

impl Read<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("record cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("number too long".into())
    }

    pub fn str(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "string too long")?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".into())
    }

    pub fn body(&mut self) -> Result<String, String> {
        let n = self.u8()?;
        if n & PACKED != 0 {
            let bytes = self.take((n & !PACKED) as usize)?;
            Ok(crate::support::hex(bytes))
        } else {
            let bytes = self.take(n as usize)?;
            String::from_utf8(bytes.to_vec()).map_err(|_| "body id is not text".into())
        }
    }

    pub fn checksum(&mut self) -> Result<Checksum, String> {
        Ok(match self.u8()? {
            1 => Checksum::Crc32c(u32::from_be_bytes(self.array()?)),
            2 => Checksum::Md5(self.array()?),
            t => return Err(format!("unknown checksum tag {t}")),
        })
    }

    /// A field that is there only when `present` (its flag bit is set).
    pub fn when<T>(
        &mut self,
        present: bool,
        read: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        if present {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails if anything is left: a record longer than its format is damaged.
    pub fn end(&self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(format!("{n} bytes too many")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_strings_bodies_and_sums_read_back() {
        let mut o = Out::default();
        for v in [0, 127, 128, 300, u64::MAX] {
            o.varint(v);
        }
        o.str("/cam07/2026-12-07/é.jpg");
        o.str("");
        o.body("019b7a3c4d5e0123456789abcdef0123");
        o.body("Not-Hex");
        o.checksum(&Checksum::Crc32c(0xdead_beef));
        o.checksum(&Checksum::Md5([9; 16]));
        let mut r = Read(&o.0);
        for v in [0, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert_eq!(r.str().unwrap(), "/cam07/2026-12-07/é.jpg");
        assert_eq!(r.str().unwrap(), "");
        assert_eq!(r.body().unwrap(), "019b7a3c4d5e0123456789abcdef0123");
        assert_eq!(r.body().unwrap(), "Not-Hex");
        assert_eq!(r.checksum().unwrap(), Checksum::Crc32c(0xdead_beef));
        assert_eq!(r.checksum().unwrap(), Checksum::Md5([9; 16]));
        r.end().unwrap();
    }

    #[test]
    fn a_packed_body_id_takes_half_its_length_and_a_byte() {
        let mut o = Out::default();
        o.body("019b7a3c4d5e0123456789abcdef0123");
        assert_eq!(o.0.len(), 17);
    }

    #[test]
    fn damage_is_an_error() {
        assert!(Read(&[0x80; 11]).varint().is_err(), "too long");
        assert!(Read(&[5, b'a']).str().is_err(), "cut short");
        assert!(Read(&[2, 0xff, 0xfe]).str().is_err(), "not UTF-8");
        assert!(Read(&[3]).checksum().is_err(), "unknown tag");
        assert!(Read(&[0]).end().is_err());
    }
}
