//! The outbox: the durable, ordered queue of operations for destinations, with the
//! indexes that let the forwarder find the next due ops without reading the queue.
//!
//! Ops are keyed by an increasing id, so id order is acknowledgement order. An op waits
//! for the earlier ops on its keys (see the module docs of [`super`]); once nothing holds
//! it, it sits in `READY` under (Pipe, due time). The forwarder claims ready ops
//! ([`Writer::claim_ready`]), delivers them, and settles a whole batch of outcomes in one
//! transaction ([`Writer::settle`]): completion (the op goes, its waiters may become
//! ready), a retry time, or a park with a reason.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::{
    BACKLOG, BODIES, COUNTERS, GARBAGE, IN_FLIGHT, KEY_OPS, OUTBOX, PARKED, PIPE_OPS, READY,
    WAITERS,
};
use crate::checksum::Checksum;
use crate::store::{Error, Result, View, Writer, decode, encode};

mod codec;
mod delivery;
mod order;
mod queries;

pub(crate) use queries::{backlog, first_parked, last_on, next_due, oldest, op, page, ready};

/// What to do at the destination. Paths are namespace paths (`/a/b`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    Put {
        path: String,
        body: String,
        size: u64,
        /// Its checksum at receipt (`md5`, a bare hex string, in version 0.1's ops).
        #[serde(rename = "sum", alias = "md5")]
        sum: Checksum,
        mtime: u64,
        sender: String,
    },
    Delete {
        path: String,
    },
    /// Server-side copy, then delete.
    Rename {
        from: String,
        to: String,
    },
    /// A directory marker (`key/`).
    MkDir {
        path: String,
    },
    RmDir {
        path: String,
    },
}

impl Action {
    /// The namespace paths this op touches.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Action::Put { path, .. }
            | Action::Delete { path }
            | Action::MkDir { path }
            | Action::RmDir { path } => vec![path],
            Action::Rename { from, to } => vec![from, to],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::Put { .. } => "put",
            Action::Delete { .. } => "delete",
            Action::Rename { .. } => "rename",
            Action::MkDir { .. } => "mkdir",
            Action::RmDir { .. } => "rmdir",
        }
    }

    /// Spool bytes this op holds (a put's body).
    pub fn bytes(&self) -> u64 {
        match self {
            Action::Put { size, .. } => *size,
            _ => 0,
        }
    }

    pub fn body(&self) -> Option<&str> {
        match self {
            Action::Put { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// One queued operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub pipe: String,
    pub action: Action,
    /// When the op was acknowledged (ms since the epoch).
    pub queued_ms: u64,
    /// Not to be tried before this (ms since the epoch).
    pub due_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Set: a permanent failure; the op waits for `spool retry` or a changed Pipe.
    #[serde(default)]
    pub parked: Option<String>,
    /// Claimed by the forwarder: coalescing leaves it alone. Cleared at start-up.
    #[serde(default)]
    pub in_flight: bool,
    /// Earlier ops this one still waits for.
    #[serde(default)]
    pub waits_for: u32,
}

impl Op {
    fn is_ready(&self) -> bool {
        self.waits_for == 0 && self.parked.is_none() && !self.in_flight
    }
}

/// A Pipe's backlog, kept up to date by every change to its ops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    pub ops: u64,
    /// Spool bytes of the queued puts.
    pub bytes: u64,
    pub puts: u64,
    pub parked: u64,
}

/// How a delivery attempt ended, as the forwarder reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination confirmed it.
    Done,
    /// The destination confirmed a put: where it landed (the S3 key, or the path under a
    /// directory) and its ETag, for the `upload.delivered` event.
    Delivered { key: String, etag: Option<String> },
    /// Worth trying again at this time (ms since the epoch).
    Retry { due_ms: u64, error: String },
    /// Cannot succeed until a person changes something.
    Park { reason: String },
    /// Claimed but never started (its Pipe went offline meanwhile): ready again as it
    /// was. Its `attempts` stays counted, which only ever costs a needless delete.
    Unclaim,
}

/// Reads op `id` from its record (see [`codec`]), naming it if it is damaged.
pub(crate) fn read_op(id: u64, bytes: &[u8]) -> Result<Op> {
    codec::decode(id, bytes).map_err(|detail| Error::Corrupt {
        table: "outbox",
        key: id.to_string(),
        detail,
    })
}

impl Writer {
    pub(crate) fn put_op(&self, op: &Op) -> Result<()> {
        self.txn
            .open_table(OUTBOX)?
            .insert(op.id, codec::encode(op).as_slice())?;
        Ok(())
    }

    fn existing_op(&self, id: u64) -> Result<Op> {
        self.op(id)?.ok_or(Error::NoSuchOp(id))
    }

    fn change_backlog(&self, pipe: &str, f: impl FnOnce(&mut Backlog)) -> Result<()> {
        let mut b = backlog(self, pipe)?;
        f(&mut b);
        let mut t = self.txn.open_table(BACKLOG)?;
        if b == Backlog::default() {
            t.remove(pipe)?;
        } else {
            t.insert(pipe, encode(&b).as_slice())?;
        }
        Ok(())
    }

    fn set_ready(&self, op: &Op, ready: bool) -> Result<()> {
        let mut t = self.txn.open_table(READY)?;
        if ready {
            t.insert((op.pipe.as_str(), op.due_ms, op.id), ())?;
        } else {
            t.remove((op.pipe.as_str(), op.due_ms, op.id))?;
        }
        Ok(())
    }

    /// Appends an op behind every earlier op it must follow; returns its id.
    pub fn enqueue(&self, pipe: &str, action: Action, now_ms: u64) -> Result<u64> {
        let mut counters = self.txn.open_table(COUNTERS)?;
        let id = counters.get("next_op")?.map_or(1, |v| v.value());
        counters.insert("next_op", id + 1)?;
        drop(counters);
        let op = Op {
            id,
            pipe: pipe.to_string(),
            action,
            queued_ms: now_ms,
            due_ms: now_ms,
            attempts: 0,
            last_error: None,
            parked: None,
            in_flight: false,
            waits_for: 0,
        };
        self.insert_op(op)?;
        Ok(id)
    }

    /// Records `op` (its id is new and the largest) with its dependencies and indexes.
    fn insert_op(&self, mut op: Op) -> Result<()> {
        let deps = self.earlier_ops_blocking(&op)?;
        let mut waiters = self.txn.open_table(WAITERS)?;
        for d in &deps {
            waiters.insert((*d, op.id), ())?;
        }
        drop(waiters);
        op.waits_for = deps.len() as u32;
        let mut by_key = self.txn.open_table(KEY_OPS)?;
        for k in op.action.keys() {
            by_key.insert((op.pipe.as_str(), k, op.id), ())?;
        }
        drop(by_key);
        self.txn
            .open_table(PIPE_OPS)?
            .insert((op.pipe.as_str(), op.id), ())?;
        if let Some(body) = op.action.body() {
            self.txn.open_table(BODIES)?.insert(body, op.id)?;
        }
        if op.parked.is_some() {
            self.txn
                .open_table(PARKED)?
                .insert((op.pipe.as_str(), op.id), ())?;
        }
        if op.in_flight {
            self.txn.open_table(IN_FLIGHT)?.insert(op.id, ())?;
        }
        self.set_ready(&op, op.is_ready())?;
        let (bytes, put, parked) = (
            op.action.bytes(),
            op.action.body().is_some(),
            op.parked.is_some(),
        );
        self.change_backlog(&op.pipe, |b| {
            b.ops += 1;
            b.bytes += bytes;
            b.puts += u64::from(put);
            b.parked += u64::from(parked);
        })?;
        self.put_op(&op)
    }

    /// Takes an op out of the queue with every index entry, and lets its waiters go.
    /// The caller decides what becomes of a put's body.
    pub(crate) fn remove_op(&self, id: u64) -> Result<Op> {
        let op = self.existing_op(id)?;
        self.txn.open_table(OUTBOX)?.remove(id)?;
        let pipe = op.pipe.as_str();
        let mut by_key = self.txn.open_table(KEY_OPS)?;
        for k in op.action.keys() {
            by_key.remove((pipe, k, id))?;
        }
        drop(by_key);
        self.txn.open_table(PIPE_OPS)?.remove((pipe, id))?;
        self.txn.open_table(PARKED)?.remove((pipe, id))?;
        self.txn.open_table(IN_FLIGHT)?.remove(id)?;
        self.set_ready(&op, false)?;
        if let Some(body) = op.action.body() {
            self.txn.open_table(BODIES)?.remove(body)?;
        }
        let (bytes, put, parked) = (
            op.action.bytes(),
            op.action.body().is_some(),
            op.parked.is_some(),
        );
        self.change_backlog(pipe, |b| {
            b.ops = b.ops.saturating_sub(1);
            b.bytes = b.bytes.saturating_sub(bytes);
            b.puts = b.puts.saturating_sub(u64::from(put));
            b.parked = b.parked.saturating_sub(u64::from(parked));
        })?;
        self.release_waiters(id)?;
        Ok(op)
    }

    /// Replaces the action of a queued put in place (same key, same position), keeping
    /// the counters and the body index right. The old body is the caller's.
    pub(crate) fn rewrite_put(&self, mut op: Op, action: Action) -> Result<()> {
        let (old_bytes, new_bytes) = (op.action.bytes(), action.bytes());
        let mut bodies = self.txn.open_table(BODIES)?;
        if let Some(old) = op.action.body() {
            bodies.remove(old)?;
        }
        if let Some(new) = action.body() {
            bodies.insert(new, op.id)?;
        }
        drop(bodies);
        self.change_backlog(&op.pipe, |b| {
            b.bytes = b.bytes.saturating_sub(old_bytes) + new_bytes;
        })?;
        op.action = action;
        self.put_op(&op)
    }

    /// Marks spool bodies as no longer needed: they are deleted once this commits.
    pub fn discard_bodies(&self, bodies: &[String]) -> Result<()> {
        let mut t = self.txn.open_table(GARBAGE)?;
        for b in bodies {
            t.insert(b.as_str(), ())?;
        }
        Ok(())
    }

    /// Forgets bodies that have been deleted from disk.
    pub fn forget_garbage(&self, bodies: &[String]) -> Result<()> {
        let mut t = self.txn.open_table(GARBAGE)?;
        for b in bodies {
            t.remove(b.as_str())?;
        }
        Ok(())
    }

    /// Removes every op of a Pipe; returns the bodies they held (put in `GARBAGE`).
    pub(crate) fn remove_pipe_ops(&self, pipe: &str) -> Result<Vec<String>> {
        let ids: Vec<u64> = {
            let t = self.txn.open_table(PIPE_OPS)?;
            let r = t.range((pipe, 0)..=(pipe, u64::MAX))?;
            r.map(|row| row.map(|(k, _)| k.value().1))
                .collect::<std::result::Result<_, _>>()?
        };
        let mut bodies = Vec::new();
        // Newest first: nothing is left waiting on an op that is already gone.
        for id in ids.into_iter().rev() {
            let op = self.remove_op(id)?;
            bodies.extend(op.action.body().map(str::to_string));
        }
        self.discard_bodies(&bodies)?;
        Ok(bodies)
    }

    /// Version 2 kept only the ops: rebuilds every index from them, in id order, as if
    /// each were queued again. Ops of Pipes that no longer exist are dropped with their
    /// bodies (version 2 forgot to remove them with the Pipe).
    pub(crate) fn rebuild_outbox_indexes(&self) -> Result<()> {
        let ops: Vec<Op> = {
            let t = self.txn.open_table(OUTBOX)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push(read_op(k.value(), v.value())?);
            }
            out
        };
        self.txn.open_table(OUTBOX)?.retain(|_, _| false)?;
        let mut orphans = Vec::new();
        for mut op in ops {
            if self.pipe(&op.pipe)?.is_none() {
                orphans.extend(op.action.body().map(str::to_string));
                continue;
            }
            op.in_flight = false;
            op.waits_for = 0;
            self.insert_op(op)?;
        }
        if !orphans.is_empty() {
            log::warn!(
                "migration: dropped {} queued upload(s) of removed pipes",
                orphans.len()
            );
        }
        self.discard_bodies(&orphans)
    }
}
