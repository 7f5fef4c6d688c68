//! The catalog's record format: a few bytes per entry, not a JSON object.
//!
//! A remembered, delivered file is about 20 bytes of value (flags, size, mtime, the
//! steady-clock time it is remembered from, its checksum); the spool body id of an
//! undelivered one adds 17. No field names, no sender name repeated per entry.
//!
//! ```text
//! u8      format (1)
//! u8      flags: 1 dir, 2 delivered, 4 remote, 8 body, 16 checksum, 32 kept since
//! varint  size, mtime
//! varint  kept since            (flag 32)
//! body                          (flag 8): u8 n, then n/2 bytes of lowercase hex (bit 7
//!                                set) or n bytes of text
//! u8 tag  checksum              (flag 16): 1 CRC32C (4 bytes BE), 2 MD5 (16 bytes)
//! ```

use super::{Delivery, Entry, Kind};
use crate::checksum::Checksum;

const FORMAT: u8 = 1;
const DIR: u8 = 1;
const DELIVERED: u8 = 2;
const REMOTE: u8 = 4;
const BODY: u8 = 8;
const SUM: u8 = 16;
const KEPT: u8 = 32;
/// In a body's length byte: what follows is packed hex.
const PACKED: u8 = 0x80;

pub(crate) fn encode(e: &Entry) -> Vec<u8> {
    let mut flags = 0;
    for (on, bit) in [
        (e.kind == Kind::Dir, DIR),
        (e.state == Delivery::Delivered, DELIVERED),
        (e.remote, REMOTE),
        (e.body.is_some(), BODY),
        (e.sum.is_some(), SUM),
        (e.kept_since.is_some(), KEPT),
    ] {
        if on {
            flags |= bit;
        }
    }
    let mut out = Vec::with_capacity(24);
    out.extend([FORMAT, flags]);
    varint(&mut out, e.size);
    varint(&mut out, e.mtime);
    if let Some(t) = e.kept_since {
        varint(&mut out, t);
    }
    if let Some(b) = &e.body {
        body(&mut out, b);
    }
    match e.sum {
        Some(Checksum::Crc32c(c)) => {
            out.push(1);
            out.extend(c.to_be_bytes());
        }
        Some(Checksum::Md5(d)) => {
            out.push(2);
            out.extend(d);
        }
        None => {}
    }
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Entry, String> {
    let mut r = Read(bytes);
    let format = r.u8()?;
    if format != FORMAT {
        return Err(format!("unknown entry format {format}"));
    }
    let flags = r.u8()?;
    let size = r.varint()?;
    let mtime = r.varint()?;
    let kept_since = if flags & KEPT != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    let body = if flags & BODY != 0 {
        Some(r.body()?)
    } else {
        None
    };
    let sum = if flags & SUM != 0 {
        Some(match r.u8()? {
            1 => Checksum::Crc32c(u32::from_be_bytes(r.array()?)),
            2 => Checksum::Md5(r.array()?),
            t => return Err(format!("unknown checksum tag {t}")),
        })
    } else {
        None
    };
    if !r.0.is_empty() {
        return Err(format!("{} bytes too many", r.0.len()));
    }
    Ok(Entry {
        kind: if flags & DIR != 0 {
            Kind::Dir
        } else {
            Kind::File
        },
        size,
        mtime,
        state: if flags & DELIVERED != 0 {
            Delivery::Delivered
        } else {
            Delivery::Pending
        },
        body,
        sum,
        remote: flags & REMOTE != 0,
        kept_since,
    })
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Spool body ids are lowercase hex (see `spool::new_id`): two digits to a byte.
fn body(out: &mut Vec<u8>, b: &str) {
    let hex = |c: u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
    let bytes = b.as_bytes();
    if bytes.len().is_multiple_of(2)
        && bytes.len() / 2 < PACKED as usize
        && bytes.iter().all(|&c| hex(c))
    {
        out.push(PACKED | (bytes.len() / 2) as u8);
        for pair in bytes.chunks(2) {
            let digit = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
            out.push(digit(pair[0]) << 4 | digit(pair[1]));
        }
    } else {
        // Longer ids are not made; a short text id is stored as it is.
        let n = bytes.len().min(PACKED as usize - 1);
        out.push(n as u8);
        out.extend(&bytes[..n]);
    }
}

struct Read<'a>(&'a [u8]);

impl Read<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("record cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, String> {
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

    fn body(&mut self) -> Result<String, String> {
        let n = self.u8()?;
        if n & PACKED != 0 {
            let bytes = self.take((n & !PACKED) as usize)?;
            Ok(crate::support::hex(bytes))
        } else {
            let bytes = self.take(n as usize)?;
            String::from_utf8(bytes.to_vec()).map_err(|_| "body id is not text".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Entry {
        Entry {
            kind: Kind::File,
            size: 65_536,
            mtime: 1_767_225_600,
            state: Delivery::Pending,
            body: Some("019b7a3c4d5e0123456789abcdef0123".into()),
            sum: Some(Checksum::Crc32c(0xdead_beef)),
            remote: false,
            kept_since: None,
        }
    }

    #[test]
    fn entries_read_back_as_written() {
        let delivered = Entry {
            state: Delivery::Delivered,
            body: None,
            remote: true,
            kept_since: Some(u64::MAX),
            ..file()
        };
        let dir = Entry {
            kind: Kind::Dir,
            size: 0,
            sum: None,
            body: None,
            ..file()
        };
        let old = Entry {
            sum: Some(Checksum::Md5([7; 16])),
            body: Some("not-hex".into()),
            ..file()
        };
        for e in [file(), delivered, dir, old] {
            assert_eq!(decode(&encode(&e)).unwrap(), e);
        }
    }

    #[test]
    fn a_remembered_delivered_file_takes_about_twenty_bytes() {
        let e = Entry {
            state: Delivery::Delivered,
            body: None,
            remote: true,
            kept_since: Some(3_600_000_000),
            ..file()
        };
        let n = encode(&e).len();
        assert!(n <= 22, "{n} bytes");
        assert!(encode(&file()).len() <= 32);
    }

    #[test]
    fn damaged_records_are_refused_not_misread() {
        let good = encode(&file());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        assert!(decode(b"{\"kind\":\"file\"}").is_err());
    }
}
