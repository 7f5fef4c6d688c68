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
use crate::store::record::{Out, Read, flags};

const FORMAT: u8 = 1;
const DIR: u8 = 1;
const DELIVERED: u8 = 2;
const REMOTE: u8 = 4;
const BODY: u8 = 8;
const SUM: u8 = 16;
const KEPT: u8 = 32;

pub(crate) fn encode(e: &Entry) -> Vec<u8> {
    let flags = flags(&[
        (e.kind == Kind::Dir, DIR),
        (e.state == Delivery::Delivered, DELIVERED),
        (e.remote, REMOTE),
        (e.body.is_some(), BODY),
        (e.sum.is_some(), SUM),
        (e.kept_since.is_some(), KEPT),
    ]);
    let mut out = Out(Vec::with_capacity(24));
    out.u8(FORMAT);
    out.u8(flags);
    out.varint(e.size);
    out.varint(e.mtime);
    if let Some(t) = e.kept_since {
        out.varint(t);
    }
    if let Some(b) = &e.body {
        out.body(b);
    }
    if let Some(sum) = &e.sum {
        out.checksum(sum);
    }
    out.0
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
    let kept_since = r.when(flags & KEPT != 0, Read::varint)?;
    let body = r.when(flags & BODY != 0, Read::body)?;
    let sum = r.when(flags & SUM != 0, Read::checksum)?;
    r.end()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;

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
