//! The event ring: every transfer and state change as an [`Event`] with a stable id (one
//! more than the event before), kept in the `events` table, the newest [`RING`] of them.
//! An event is written in the transaction of the change it reports (an upload's in its
//! group commit, a delivery's in the forwarder's settle), so it costs no sync of its own;
//! events with no commit of their own are batched by `crate::events`. The JSON shape is
//! documented in docs/EVENTS.md.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::{COUNTERS, EVENTS};
use super::{Result, View, Writer, decode, encode};
use crate::names::{Invalid, invalid};

/// Events kept: a few thousand, whatever the uptime (each is a few hundred bytes).
pub const RING: u64 = 4096;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// An upload was acknowledged (`226`, or SFTP's close): durable from here.
    #[serde(rename = "upload.received")]
    UploadReceived,
    /// The destination confirmed an upload.
    #[serde(rename = "upload.delivered")]
    UploadDelivered,
    /// An upload cannot be delivered until a person changes something.
    #[serde(rename = "upload.parked")]
    UploadParked,
    #[serde(rename = "upload.broken")]
    UploadBroken,
    #[serde(rename = "file.renamed")]
    FileRenamed,
    #[serde(rename = "file.deleted")]
    FileDeleted,
    #[serde(rename = "login.failed")]
    LoginFailed,
    #[serde(rename = "address.banned")]
    AddressBanned,
    #[serde(rename = "sender.silent")]
    SenderSilent,
    #[serde(rename = "sender.back")]
    SenderBack,
    #[serde(rename = "pipe.offline")]
    PipeOffline,
    #[serde(rename = "pipe.online")]
    PipeOnline,
    #[serde(rename = "spool.high")]
    SpoolHigh,
    #[serde(rename = "spool.ok")]
    SpoolOk,
    #[serde(rename = "state.large")]
    StateLarge,
    /// Sent by `ftpgate hook test` only; never in the ring.
    #[serde(rename = "hook.test")]
    HookTest,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::UploadReceived,
        Kind::UploadDelivered,
        Kind::UploadParked,
        Kind::UploadBroken,
        Kind::FileRenamed,
        Kind::FileDeleted,
        Kind::LoginFailed,
        Kind::AddressBanned,
        Kind::SenderSilent,
        Kind::SenderBack,
        Kind::PipeOffline,
        Kind::PipeOnline,
        Kind::SpoolHigh,
        Kind::SpoolOk,
        Kind::StateLarge,
        Kind::HookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UploadReceived => "upload.received",
            Kind::UploadDelivered => "upload.delivered",
            Kind::UploadParked => "upload.parked",
            Kind::UploadBroken => "upload.broken",
            Kind::FileRenamed => "file.renamed",
            Kind::FileDeleted => "file.deleted",
            Kind::LoginFailed => "login.failed",
            Kind::AddressBanned => "address.banned",
            Kind::SenderSilent => "sender.silent",
            Kind::SenderBack => "sender.back",
            Kind::PipeOffline => "pipe.offline",
            Kind::PipeOnline => "pipe.online",
            Kind::SpoolHigh => "spool.high",
            Kind::SpoolOk => "spool.ok",
            Kind::StateLarge => "state.large",
            Kind::HookTest => "hook.test",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = Invalid;
    fn from_str(s: &str) -> std::result::Result<Kind, Invalid> {
        match Kind::ALL.iter().find(|k| k.as_str() == s) {
            Some(k) => Ok(*k),
            None => invalid(format!(
                "unknown event kind {s:?}: use one of {}",
                Kind::ALL.map(Kind::as_str).join(", ")
            )),
        }
    }
}

/// One event. Fields that do not apply to its kind are absent from the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Assigned when recorded: one more than the event before.
    #[serde(default)]
    pub id: u64,
    /// RFC 3339, UTC, with milliseconds.
    #[serde(default)]
    pub time: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<String>,
    /// The file's path in its Pipe (for a rename: where it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A rename's new path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The body's CRC32C as taken on receipt (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    /// Where a delivery landed: the S3 key, or the path under a directory destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The sentence a person reads: why an upload is parked, broke, or a login failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The client's IP address (logins, bans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `ftp`, `ftps` or `sftp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// Seconds: how long a Sender has been silent, a Pipe offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Bytes: what the spool holds (`spool.*`), the state file's size (`state.large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Event {
    /// An event of `kind` with nothing else set yet.
    pub fn of(kind: Kind) -> Event {
        Event {
            id: 0,
            time: String::new(),
            kind,
            sender: None,
            pipe: None,
            path: None,
            to: None,
            size: None,
            crc32c: None,
            key: None,
            etag: None,
            reason: None,
            address: None,
            proto: None,
            seconds: None,
            bytes: None,
        }
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Only events after this id, oldest first (following); `None`: the newest.
    pub after: Option<u64>,
    pub sender: Option<String>,
    pub pipe: Option<String>,
    /// Any of these kinds; empty: all.
    pub kinds: Vec<Kind>,
    pub limit: usize,
}

impl Query {
    fn matches(&self, e: &Event) -> bool {
        (self.sender.is_none() || e.sender == self.sender)
            && (self.pipe.is_none() || e.pipe == self.pipe)
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
    }
}

/// The events `q` asks for, oldest first.
pub(super) fn list(v: &impl View, q: &Query) -> Result<Vec<Event>> {
    let t = v.table(EVENTS)?;
    let mut out = Vec::new();
    let limit = q.limit.max(1);
    // Keeps one event if it matches; true once there are enough.
    let mut keep = |id: u64, bytes: &[u8]| -> Result<bool> {
        let e: Event = decode("events", &id.to_string(), bytes)?;
        if q.matches(&e) {
            out.push(e);
        }
        Ok(out.len() == limit)
    };
    match q.after {
        Some(after) => {
            for row in t.range(after.saturating_add(1)..)? {
                let (k, val) = row?;
                if keep(k.value(), val.value())? {
                    break;
                }
            }
        }
        None => {
            for row in t.iter()?.rev() {
                let (k, val) = row?;
                if keep(k.value(), val.value())? {
                    break;
                }
            }
        }
    }
    if q.after.is_none() {
        out.reverse();
    }
    Ok(out)
}

/// The id of the newest event (0: none yet).
pub(super) fn last_id(v: &impl View) -> Result<u64> {
    Ok(v.table(COUNTERS)?
        .get("next_event")?
        .map_or(1, |n| n.value())
        .saturating_sub(1))
}

impl Writer {
    /// Records `e` (its id and time set here) and drops the oldest beyond [`RING`].
    pub fn record_event(&self, e: Event, now_ms: u64) -> Result<u64> {
        self.record_events(std::iter::once((e, now_ms)))
    }

    /// Records events (each with its time), numbered in order; returns the last id. The
    /// counter is read and written once for all of them (a group commit's uploads).
    pub fn record_events(&self, events: impl IntoIterator<Item = (Event, u64)>) -> Result<u64> {
        let mut counters = self.txn.open_table(COUNTERS)?;
        let first = counters.get("next_event")?.map_or(1, |n| n.value());
        let mut t = self.txn.open_table(EVENTS)?;
        let mut next = first;
        for (mut e, at) in events {
            e.id = next;
            e.time = crate::calendar::format_rfc3339_ms(at);
            t.insert(next, encode(&e).as_slice())?;
            if next > RING {
                t.remove(next - RING)?;
            }
            next += 1;
        }
        if next != first {
            counters.insert("next_event", next)?;
        }
        Ok(next - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::activity::Received;
    use redb::ReadableTableMetadata;

    fn upload(w: &Writer, i: u64) -> Result<()> {
        let path = format!("/cam/{i}.jpg");
        w.note_upload(
            &Received {
                sender: "cam1",
                pipe: "line1",
                path: &path,
                size: i,
                crc32c: "00000000".into(),
                proto: None,
            },
            1_796_597_400_000 + i,
            20_000,
        )
    }

    /// Ten thousand transfers later the ring holds the newest [`RING`] events, numbered
    /// on from the first, and the state file has stopped growing.
    #[test]
    fn the_ring_stays_bounded_after_ten_thousand_transfers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let mut used_at_half = 0;
        for batch in 0..100u64 {
            store
                .write(|w| (0..100).try_for_each(|i| upload(w, batch * 100 + i + 1)))
                .unwrap();
            if batch == 49 {
                used_at_half = store.used_bytes().unwrap();
            }
        }
        let r = store.read().unwrap();
        let t = r.table(EVENTS).unwrap();
        assert_eq!(t.len().unwrap(), RING);
        assert_eq!(t.first().unwrap().unwrap().0.value(), 10_000 - RING + 1);
        assert_eq!(r.last_event_id().unwrap(), 10_000);
        let used = store.used_bytes().unwrap();
        assert!(
            used <= used_at_half + (used_at_half / 10),
            "the state grew from {used_at_half} to {used} bytes"
        );

        let newest = r
            .events(&Query {
                limit: 3,
                ..Query::default()
            })
            .unwrap();
        let ids: Vec<u64> = newest.iter().map(|e| e.id).collect();
        assert_eq!(ids, [9_998, 9_999, 10_000], "the newest, oldest first");
        assert_eq!(newest[2].path.as_deref(), Some("/cam/10000.jpg"));
        assert_eq!(newest[2].time, "2026-12-06T22:50:10.000Z");
        let after = r
            .events(&Query {
                after: Some(9_000),
                kinds: vec![Kind::UploadReceived],
                sender: Some("cam1".into()),
                limit: 2,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(
            after.iter().map(|e| e.id).collect::<Vec<_>>(),
            [9_001, 9_002]
        );
        let none = r
            .events(&Query {
                pipe: Some("other".into()),
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn kinds_read_back_from_their_names() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert!("upload.lost".parse::<Kind>().is_err());
    }
}
