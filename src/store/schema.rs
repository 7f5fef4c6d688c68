//! Every redb table, the schema version, and the migrations between versions.
//!
//! Records are JSON (serde) in `&[u8]` values: new optional fields get `#[serde(default)]`
//! and need no migration; a change of meaning bumps [`SCHEMA_VERSION`] and adds a step to
//! [`migrate`]. A database written by a newer ftpgate is refused, never guessed at.

use redb::TableDefinition;

use super::{Error, Writer};

/// The schema this build writes. History: 1 = senders, pipes, grants (and a `settings`
/// table that was never used: older databases keep it, empty, and nothing reads it);
/// 2 = catalog, outbox, put index, partial uploads, counters; 3 = the outbox's indexes
/// (ops per key, dependencies, ready queue, per-Pipe ops, parked, in flight), per-Pipe
/// counters, spool bodies and garbage, keep-both suffixes; the put index is gone;
/// 4 = the catalog keyed by directory (`entries`, compact records) with the index of
/// remembered entries that expire (`remembered`); the JSON `catalog` is gone;
/// 5 = the event ring (`events`), per-Sender activity (`activity`), hooks (`hooks`,
/// `hook_state`).
pub const SCHEMA_VERSION: u64 = 5;

/// `schema_version` (decimal) and `written_by` (`ftpgate X.Y.Z`).
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Sender name → JSON [`super::Sender`].
pub const SENDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("senders");
/// Pipe id → JSON [`super::Pipe`].
pub const PIPES: TableDefinition<&str, &[u8]> = TableDefinition::new("pipes");
/// (Sender name, Pipe id) → nothing: the Grants.
pub const GRANTS: TableDefinition<(&str, &str), ()> = TableDefinition::new("grants");

/// (Pipe id, parent directory, name) → [`super::catalog::Entry`] in its compact format:
/// each Pipe's namespace. Keyed by directory, so a listing reads only its children.
pub const ENTRIES: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("entries");
/// (Pipe id, steady ms, path) → nothing: entries that expire, by the time they are
/// remembered from (delivered files; empty directories). Bounded by the retention window
/// and the gateway-wide cap; see [`super::catalog::expire`].
pub const REMEMBERED: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("remembered");
/// Op id → JSON [`super::outbox::Op`], in acknowledgement order.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// (Pipe id, path, op id) → nothing: the queued ops that touch each path, in order.
pub const KEY_OPS: TableDefinition<(&str, &str, u64), ()> = TableDefinition::new("key_ops");
/// (op id, id of a later op that waits for it) → nothing.
pub const WAITERS: TableDefinition<(u64, u64), ()> = TableDefinition::new("waiters");
/// (Pipe id, due ms, op id) → nothing: ops nothing blocks, neither parked nor in flight.
pub const READY: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("ready");
/// (Pipe id, op id) → nothing: every queued op of a Pipe, oldest first.
pub const PIPE_OPS: TableDefinition<(&str, u64), ()> = TableDefinition::new("pipe_ops");
/// (Pipe id, op id) → nothing: parked ops.
pub const PARKED: TableDefinition<(&str, u64), ()> = TableDefinition::new("parked");
/// Op id → nothing: ops the forwarder has claimed (released at start-up).
pub const IN_FLIGHT: TableDefinition<u64, ()> = TableDefinition::new("in_flight");
/// Pipe id → JSON [`super::outbox::Backlog`]: counters kept with every change.
pub const BACKLOG: TableDefinition<&str, &[u8]> = TableDefinition::new("backlog");
/// Spool body id → the op id of the put that owns it.
pub const BODIES: TableDefinition<&str, u64> = TableDefinition::new("bodies");
/// Spool body id → nothing: bodies no record needs any more, to be deleted from disk.
pub const GARBAGE: TableDefinition<&str, ()> = TableDefinition::new("garbage");
/// (Pipe id, path) → the next `-N` suffix to try for a keep-both upload of that path.
pub const KEEP_BOTH: TableDefinition<(&str, &str), u64> = TableDefinition::new("keep_both");
/// (Pipe id, path) → JSON [`super::partials::Partial`]: resumable broken uploads.
pub const PARTIALS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("partials");
/// Event id → JSON [`super::events::Event`]: the newest [`super::events::RING`] events.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Sender name → JSON [`super::activity::Activity`].
pub const ACTIVITY: TableDefinition<&str, &[u8]> = TableDefinition::new("activity");
/// Hook name → JSON [`super::hooks::Hook`].
pub const HOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("hooks");
/// Hook name → JSON [`super::hooks::HookState`]: how far it has got.
pub const HOOK_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("hook_state");
/// Named counters (`next_op`, `next_event`, `steady_ms`: the steady clock, see [`super::Store`]).
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// Version 2's index of coalescable puts, dropped by the migration to version 3.
const PUT_INDEX_V2: TableDefinition<(&str, &str), u64> = TableDefinition::new("put_index");
/// Versions 2 and 3's catalog: (Pipe id, path) → JSON entry; moved to [`ENTRIES`] by the
/// migration to version 4.
pub(super) const CATALOG_V3: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("catalog");

pub const WRITTEN_BY: &str = concat!("ftpgate ", env!("CARGO_PKG_VERSION"));

/// Brings the database to [`SCHEMA_VERSION`] inside `txn`; `found` is what it holds now
/// (0 for a new, empty database).
pub(super) fn migrate(w: &Writer, found: u64) -> Result<(), Error> {
    let txn = &w.txn;
    // One arm per step; each leaves the database at the next version.
    let mut version = found;
    while version < SCHEMA_VERSION {
        match version {
            0 => {
                txn.open_table(SENDERS)?;
                txn.open_table(PIPES)?;
                txn.open_table(GRANTS)?;
            }
            1 => {
                txn.open_table(CATALOG_V3)?;
                txn.open_table(OUTBOX)?;
                txn.open_table(PUT_INDEX_V2)?;
                txn.open_table(PARTIALS)?;
                txn.open_table(COUNTERS)?;
            }
            2 => {
                txn.open_table(KEY_OPS)?;
                txn.open_table(KEEP_BOTH)?;
                txn.open_table(WAITERS)?;
                txn.open_table(READY)?;
                txn.open_table(PIPE_OPS)?;
                txn.open_table(PARKED)?;
                txn.open_table(IN_FLIGHT)?;
                txn.open_table(BACKLOG)?;
                txn.open_table(BODIES)?;
                txn.open_table(GARBAGE)?;
                txn.delete_table(PUT_INDEX_V2)?;
                w.rebuild_outbox_indexes()?;
            }
            3 => {
                txn.open_table(ENTRIES)?;
                txn.open_table(REMEMBERED)?;
                w.move_catalog_v3()?;
                txn.delete_table(CATALOG_V3)?;
            }
            4 => {
                txn.open_table(EVENTS)?;
                txn.open_table(ACTIVITY)?;
                txn.open_table(HOOKS)?;
                txn.open_table(HOOK_STATE)?;
            }
            _ => unreachable!("every version below SCHEMA_VERSION has a step"),
        }
        version += 1;
    }
    let mut meta = txn.open_table(META)?;
    meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())?;
    meta.insert("written_by", WRITTEN_BY)?;
    Ok(())
}
