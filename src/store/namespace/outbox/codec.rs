//! The outbox's record format: a queued op in about 90 bytes instead of a 300-byte JSON
//! object (measured by `benches/state.rs`, `queued`).
//!
//! The op's id is its key and is not repeated. Ops written by earlier releases are JSON
//! objects, which start with `{`; they are read as they are and written back in this
//! format when they change, so no migration has to rewrite a backlog.
//!
//! ```text
//! u8      format (1)
//! u8      action: 1 put, 2 delete, 3 rename, 4 mkdir, 5 rmdir
//! u8      flags: 1 in flight, 2 last error, 4 parked
//! str     pipe
//! varint  queued_ms, due_ms, attempts, waits_for
//! str     last error                 (flag 2)
//! str     park reason                (flag 4)
//! put:    str path, body id, varint size, checksum, varint mtime, str sender
//! rename: str from, str to
//! others: str path
//! ```
//!
//! `str` is a varint length and UTF-8 bytes; body ids and checksums as in
//! `store::record`.

use super::{Action, Op};
use crate::store::record::{Out, Read, flags};

const FORMAT: u8 = 1;
const IN_FLIGHT: u8 = 1;
const LAST_ERROR: u8 = 2;
const PARKED: u8 = 4;

pub(crate) fn encode(op: &Op) -> Vec<u8> {
    let tag = match op.action {
        Action::Put { .. } => 1,
        Action::Delete { .. } => 2,
        Action::Rename { .. } => 3,
        Action::MkDir { .. } => 4,
        Action::RmDir { .. } => 5,
    };
    let flags = flags(&[
        (op.in_flight, IN_FLIGHT),
        (op.last_error.is_some(), LAST_ERROR),
        (op.parked.is_some(), PARKED),
    ]);
    let mut out = Out(Vec::with_capacity(96));
    out.u8(FORMAT);
    out.u8(tag);
    out.u8(flags);
    out.str(&op.pipe);
    for v in [
        op.queued_ms,
        op.due_ms,
        u64::from(op.attempts),
        u64::from(op.waits_for),
    ] {
        out.varint(v);
    }
    for text in [&op.last_error, &op.parked].into_iter().flatten() {
        out.str(text);
    }
    match &op.action {
        Action::Put {
            path,
            body,
            size,
            sum,
            mtime,
            sender,
        } => {
            out.str(path);
            out.body(body);
            out.varint(*size);
            out.checksum(sum);
            out.varint(*mtime);
            out.str(sender);
        }
        Action::Rename { from, to } => {
            out.str(from);
            out.str(to);
        }
        Action::Delete { path } | Action::MkDir { path } | Action::RmDir { path } => {
            out.str(path);
        }
    }
    out.0
}

/// Reads op `id` from its record, in this format or as the JSON of earlier releases.
pub(crate) fn decode(id: u64, bytes: &[u8]) -> Result<Op, String> {
    if bytes.first() == Some(&b'{') {
        let op: Op = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        return Ok(Op { id, ..op });
    }
    let mut r = Read(bytes);
    let format = r.u8()?;
    if format != FORMAT {
        return Err(format!("unknown op format {format}"));
    }
    let tag = r.u8()?;
    let flags = r.u8()?;
    let pipe = r.str()?;
    let queued_ms = r.varint()?;
    let due_ms = r.varint()?;
    let small = |v: u64| u32::try_from(v).map_err(|_| format!("count {v} out of range"));
    let attempts = small(r.varint()?)?;
    let waits_for = small(r.varint()?)?;
    let last_error = r.when(flags & LAST_ERROR != 0, Read::str)?;
    let parked = r.when(flags & PARKED != 0, Read::str)?;
    let action = match tag {
        1 => Action::Put {
            path: r.str()?,
            body: r.body()?,
            size: r.varint()?,
            sum: r.checksum()?,
            mtime: r.varint()?,
            sender: r.str()?,
        },
        2 => Action::Delete { path: r.str()? },
        3 => Action::Rename {
            from: r.str()?,
            to: r.str()?,
        },
        4 => Action::MkDir { path: r.str()? },
        5 => Action::RmDir { path: r.str()? },
        t => return Err(format!("unknown op action {t}")),
    };
    r.end()?;
    Ok(Op {
        id,
        pipe,
        action,
        queued_ms,
        due_ms,
        attempts,
        last_error,
        parked,
        in_flight: flags & IN_FLIGHT != 0,
        waits_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;

    fn put() -> Op {
        Op {
            id: 41,
            pipe: "cams".into(),
            action: Action::Put {
                path: "/cam07/2026-12-07/snap-120000.jpg".into(),
                body: "019b7a3c4d5e0123456789abcdef0123".into(),
                size: 262_144,
                sum: Checksum::Crc32c(0xdead_beef),
                mtime: 1_796_601_600,
                sender: "cam07".into(),
            },
            queued_ms: 1_796_601_600_123,
            due_ms: 1_796_601_600_123,
            attempts: 0,
            last_error: None,
            parked: None,
            in_flight: false,
            waits_for: 0,
        }
    }

    #[test]
    fn every_kind_of_op_reads_back_as_written() {
        let parked = Op {
            attempts: 7,
            last_error: Some("connection refused".into()),
            parked: Some("access denied (HTTP 403)".into()),
            in_flight: true,
            waits_for: 3,
            due_ms: 5,
            ..put()
        };
        let md5 = Op {
            action: Action::Put {
                path: "/a".into(),
                body: "old-id".into(),
                size: 0,
                sum: Checksum::Md5([7; 16]),
                mtime: 0,
                sender: String::new(),
            },
            ..put()
        };
        let mut ops = vec![put(), parked, md5];
        for action in [
            Action::Delete { path: "/x".into() },
            Action::Rename {
                from: "/x".into(),
                to: "/y/z".into(),
            },
            Action::MkDir { path: "/d".into() },
            Action::RmDir { path: "/d".into() },
        ] {
            ops.push(Op { action, ..put() });
        }
        for op in ops {
            assert_eq!(decode(op.id, &encode(&op)).unwrap(), op);
        }
    }

    #[test]
    fn a_queued_put_takes_under_a_hundred_bytes() {
        let n = encode(&put()).len();
        assert!(n < 100, "{n} bytes");
    }

    #[test]
    fn ops_of_earlier_releases_are_read_from_their_json() {
        let json = serde_json::to_vec(&put()).unwrap();
        assert_eq!(decode(41, &json).unwrap(), put());
        let v01 =
            br#"{"id":3,"pipe":"p","action":{"op":"delete","path":"/a"},"queued_ms":1,"due_ms":2}"#;
        let op = decode(3, v01).unwrap();
        assert_eq!(op.action, Action::Delete { path: "/a".into() });
        assert_eq!((op.attempts, op.parked, op.waits_for), (0, None, 0));
    }

    #[test]
    fn damaged_records_are_refused_not_misread() {
        let good = encode(&put());
        for cut in 0..good.len() {
            assert!(decode(41, &good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(decode(41, &long).is_err());
        let mut tag = good;
        tag[1] = 9;
        assert!(decode(41, &tag).is_err());
    }
}
