//! Reading the store: [`View`], one set of reads for a snapshot ([`Reader`]) and a write
//! transaction ([`Writer`]), and the JSON encoding of records.

use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};

use super::namespace::Overwrite;
use super::{Error, Pipe, Result, Sender, catalog, outbox, partials, pipes, schema, senders};
use crate::vfs::VPath;

/// A read-only view of the store.
pub struct Reader {
    pub(super) txn: ReadTransaction,
    /// Counted while it lives: the database is not reopened under it.
    pub(super) _live: super::idle::Live,
}

/// A view inside a write transaction: reads see its own writes.
pub struct Writer {
    pub(super) txn: WriteTransaction,
    /// The store's steady clock when the transaction began ([`super::Store::steady_ms`]).
    pub(crate) steady_ms: u64,
}

#[cfg(test)]
impl Writer {
    /// Overwrites the catalog record of (pipe, path) with bytes no version can read.
    pub(crate) fn corrupt_entry(&self, pipe: &str, path: &str) -> Result<()> {
        self.txn.open_table(schema::ENTRIES)?.insert(
            (
                pipe,
                super::catalog::split(path).0,
                super::catalog::split(path).1,
            ),
            &b"\xffnot a record"[..],
        )?;
        Ok(())
    }
}

/// Read access to the store, the same for a snapshot and for a write transaction: every
/// read is written once, here, over [`View::table`].
pub trait View: Sized {
    /// Opens a table for reading.
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_>;

    fn sender(&self, name: &str) -> Result<Option<Sender>> {
        senders::get(self, name)
    }

    /// The Sender named `name`, or [`Error::NoSuchSender`].
    fn existing_sender(&self, name: &str) -> Result<Sender> {
        self.sender(name)?
            .ok_or_else(|| Error::NoSuchSender(name.to_string()))
    }

    fn senders(&self) -> Result<Vec<Sender>> {
        senders::all(self)
    }

    /// What Sender `name` has done (all zero for one that has done nothing yet).
    fn activity(&self, name: &str) -> Result<super::activity::Activity> {
        super::activity::get(self, name)
    }

    /// Every Sender's activity record, by name.
    fn activities(&self) -> Result<Vec<(String, super::activity::Activity)>> {
        super::activity::all(self)
    }

    /// The events `q` asks for, oldest first.
    fn events(&self, q: &super::events::Query) -> Result<Vec<super::events::Event>> {
        super::events::list(self, q)
    }

    /// The id of the newest event (0: none yet).
    fn last_event_id(&self) -> Result<u64> {
        super::events::last_id(self)
    }

    /// The SHA-256 (hex) of the HTTP listener's token, if `ftpgate http-token` made one.
    fn http_token_digest(&self) -> Result<Option<String>> {
        Ok(self
            .table(schema::META)?
            .get("http_token_sha256")?
            .map(|v| v.value().to_string()))
    }

    /// Every hook, by name.
    fn hooks(&self) -> Result<Vec<super::hooks::Hook>> {
        super::hooks::all(self)
    }

    fn hook(&self, name: &str) -> Result<Option<super::hooks::Hook>> {
        super::hooks::get(self, name)
    }

    /// How far hook `name` has got.
    fn hook_state(&self, name: &str) -> Result<super::hooks::HookState> {
        super::hooks::state(self, name)
    }

    /// Pipe ids granted to `name`, in id order.
    fn grants_of(&self, name: &str) -> Result<Vec<String>> {
        senders::grants_of(self, name)
    }

    /// Every (Sender, Pipe) Grant, ordered by Sender then Pipe.
    fn grants(&self) -> Result<Vec<(String, String)>> {
        senders::grants(self)
    }

    fn pipe(&self, id: &str) -> Result<Option<Pipe>> {
        pipes::get(self, id)
    }

    /// The Pipe with `id`, or [`Error::NoSuchPipe`].
    fn existing_pipe(&self, id: &str) -> Result<Pipe> {
        self.pipe(id)?
            .ok_or_else(|| Error::NoSuchPipe(id.to_string()))
    }

    fn pipes(&self) -> Result<Vec<Pipe>> {
        pipes::all(self)
    }

    /// The catalog entry at `path` (the root always exists).
    fn entry(&self, pipe: &str, path: &VPath) -> Result<Option<catalog::Entry>> {
        catalog::entry(self, pipe, path)
    }

    /// Up to `limit` children of `dir` after the name `after`, in name order: a listing
    /// reads a page at a time, so its memory is a page's, not the directory's.
    fn children_page(
        &self,
        pipe: &str,
        dir: &VPath,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, catalog::Entry)>> {
        catalog::list_page(self, pipe, dir, after, limit)
    }

    /// Entries that expire in time (delivered files, empty directories), all Pipes.
    fn remembered(&self) -> Result<u64> {
        catalog::remembered(self)
    }

    /// Whether some remembered entry is due to be forgotten at steady time `now`, or more
    /// than `cap` are remembered.
    fn expiry_due(&self, cap: u64, now: u64) -> Result<bool> {
        catalog::expire::due(self, cap, now)
    }

    /// Where an upload to `path` may go under `policy` (making missing directories with
    /// `create_dirs`), or the refusal.
    fn check_upload(
        &self,
        pipe: &str,
        path: &VPath,
        policy: Overwrite,
        create_dirs: bool,
    ) -> Result<VPath> {
        catalog::check_upload(self, pipe, path, policy, create_dirs)
    }

    fn op(&self, id: u64) -> Result<Option<outbox::Op>> {
        outbox::op(self, id)
    }

    /// Up to `limit` queued ops after op `after`, in acknowledgement order.
    fn ops_page(&self, pipe: Option<&str>, after: u64, limit: usize) -> Result<Vec<outbox::Op>> {
        outbox::page(self, pipe, after, limit)
    }

    /// A Pipe's backlog counters.
    fn backlog(&self, pipe: &str) -> Result<outbox::Backlog> {
        outbox::backlog(self, pipe)
    }

    /// A Pipe's oldest queued op.
    fn oldest_op(&self, pipe: &str) -> Result<Option<outbox::Op>> {
        outbox::oldest(self, pipe)
    }

    /// A Pipe's first parked op.
    fn first_parked(&self, pipe: &str) -> Result<Option<outbox::Op>> {
        outbox::first_parked(self, pipe)
    }

    /// Ids of up to `limit` ops of a Pipe that may start by `now_ms`, earliest due first.
    fn ready(&self, pipe: &str, now_ms: u64, limit: usize) -> Result<Vec<u64>> {
        outbox::ready(self, pipe, now_ms, limit)
    }

    /// When a Pipe's earliest ready op may go (ms since the epoch), seen at `now_ms`.
    fn next_due(&self, pipe: &str, now_ms: u64) -> Result<Option<u64>> {
        outbox::next_due(self, pipe, now_ms)
    }

    /// The newest queued op that touches (pipe, key).
    fn last_op_on(&self, pipe: &str, key: &str) -> Result<Option<u64>> {
        outbox::last_on(self, pipe, key)
    }

    /// Whether a queued put owns this spool body.
    fn body_queued(&self, body: &str) -> Result<bool> {
        Ok(self.table(schema::BODIES)?.get(body)?.is_some())
    }

    /// Spool bodies waiting to be deleted.
    fn garbage(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for row in self.table(schema::GARBAGE)?.iter()? {
            out.push(row?.0.value().to_string());
        }
        Ok(out)
    }

    fn partial(&self, pipe: &str, path: &VPath) -> Result<Option<partials::Partial>> {
        partials::get(self, pipe, path)
    }

    /// Every partial upload as (pipe, path, partial).
    fn partials(&self) -> Result<Vec<(String, String, partials::Partial)>> {
        partials::all(self)
    }
}

impl View for Reader {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_> {
        Ok(self.txn.open_table(def)?)
    }
}

impl View for Writer {
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<impl ReadableTable<K, V> + '_> {
        Ok(self.txn.open_table(def)?)
    }
}

/// Decodes a JSON record, naming the table and key if it is damaged.
pub(super) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        table,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain structs of strings, numbers and lists: serializing cannot fail.
    serde_json::to_vec(value).expect("records serialize to JSON")
}

/// Every record of a `name → JSON` table, in key order.
pub(super) fn all_records<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        out.push(decode(name, k.value(), v.value())?);
    }
    Ok(out)
}

pub(super) fn one_record<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
    key: &str,
) -> Result<Option<T>> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(name, key, v.value())?)),
        None => Ok(None),
    }
}
