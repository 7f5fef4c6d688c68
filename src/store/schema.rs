//! Every redb table, the schema version, and the migrations between versions.
//!
//! Records are JSON (serde) in `&[u8]` values: new optional fields get `#[serde(default)]`
//! and need no migration; a change of meaning bumps [`SCHEMA_VERSION`] and adds a step to
//! [`migrate`]. A database written by a newer ftpgate is refused, never guessed at.

use redb::{TableDefinition, WriteTransaction};

use super::Error;

/// The schema this build writes. History: 1 = senders, pipes, grants, settings;
/// 2 = catalog, outbox, put index, partial uploads, counters.
pub const SCHEMA_VERSION: u64 = 2;

/// `schema_version` (decimal) and `written_by` (`ftpgate X.Y.Z`).
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Sender name → JSON [`super::Sender`].
pub const SENDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("senders");
/// Pipe id → JSON [`super::Pipe`].
pub const PIPES: TableDefinition<&str, &[u8]> = TableDefinition::new("pipes");
/// (Sender name, Pipe id) → nothing: the Grants.
pub const GRANTS: TableDefinition<(&str, &str), ()> = TableDefinition::new("grants");
/// Gateway-wide settings by name.
pub const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

/// (Pipe id, path) → JSON [`super::catalog::Entry`]: each Pipe's namespace.
pub const CATALOG: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("catalog");
/// Op id → JSON [`super::outbox::Op`], in acknowledgement order.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// (Pipe id, path) → id of the queued put that is the last op on that key (coalescing).
pub const PUT_INDEX: TableDefinition<(&str, &str), u64> = TableDefinition::new("put_index");
/// (Pipe id, path) → JSON [`super::partials::Partial`]: resumable broken uploads.
pub const PARTIALS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("partials");
/// Named counters (`next_op`).
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub const WRITTEN_BY: &str = concat!("ftpgate ", env!("CARGO_PKG_VERSION"));

/// Brings the database to [`SCHEMA_VERSION`] inside `txn`; `found` is what it holds now
/// (0 for a new, empty database).
pub(super) fn migrate(txn: &WriteTransaction, found: u64) -> Result<(), Error> {
    // One arm per step; each leaves the database at the next version.
    let mut version = found;
    while version < SCHEMA_VERSION {
        match version {
            0 => {
                txn.open_table(SENDERS)?;
                txn.open_table(PIPES)?;
                txn.open_table(GRANTS)?;
                txn.open_table(SETTINGS)?;
            }
            1 => {
                txn.open_table(CATALOG)?;
                txn.open_table(OUTBOX)?;
                txn.open_table(PUT_INDEX)?;
                txn.open_table(PARTIALS)?;
                txn.open_table(COUNTERS)?;
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
