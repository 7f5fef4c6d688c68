//! Opening the state file: redb's page cache bounded, a repair after a crash reported
//! as it goes, an older schema migrated and a newer one refused.

use std::path::Path;
use std::sync::atomic::Ordering;

use redb::{Database, ReadableDatabase, ReadableTable};

#[cfg(test)]
use super::power_cut;
use super::schema::{self, META, SCHEMA_VERSION};
use super::{Error, Result, Store, Writer};

/// Memory redb may use to cache pages. More does not help a long outage's drain:
/// `OUTBOX_BACKLOG=10000,1000000 cargo bench --bench outbox` gave 47 → 68 µs per op
/// with 4 MiB and 39 → 83 µs with 12 MiB (the deep pages come from the OS page cache
/// either way).
pub(super) const CACHE_BYTES: usize = 4 << 20;

/// Says why a start-up takes longer after a crash or power cut that left the state file
/// in need of repair: redb then walks the file to check it and rebuild its allocator
/// state. Commits are made without redb's quick repair, which would save that walk at
/// the price of a second fsync and an allocator snapshot in every commit:
/// `cargo bench --bench commit` measured 0.33–0.58 against 0.54–0.90 ms per commit in a
/// 68 MiB file and 0.56–0.80 against 0.73–1.39 ms in 610 MiB. The daemon killed with
/// 125,000 uploads queued (a 59 MiB state file) started again in 0.32 s
/// (`FILES=100000 scripts/bench-backlog`). A device waits for a commit with every
/// upload; a repair happens once per crash.
///
/// `said`: the progress last logged (0: nothing yet).
fn repair_progress(session: &mut redb::RepairSession, said: &std::sync::atomic::AtomicU8) {
    let done = (session.progress() * 100.0) as u8;
    let last = said.load(Ordering::Relaxed);
    if last == 0 || done >= last.saturating_add(25) {
        said.store(done.max(1), Ordering::Relaxed);
        log::warn!(
            "the state file was not closed cleanly (a crash or power cut): checking it, {done}% done"
        );
    }
}

impl Store {
    #[cfg(test)]
    pub(super) fn open_disk(path: &Path, disk: &power_cut::Disk) -> Result<Database> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(disk.backend())?;
        Self::prepare(path, db)
    }

    pub(super) fn open_db(path: &Path) -> Result<Database> {
        // redb's default cache may grow to 1 GiB: with a million queued ops the daemon's
        // memory would grow with the backlog. The hot pages (the fronts of the indexes,
        // the newest ops) fit in a few MiB; the rest is read through the OS page cache.
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        let said = std::sync::atomic::AtomicU8::new(0);
        builder.set_repair_callback(move |session| repair_progress(session, &said));
        let db = match builder.create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::InUse(path.to_path_buf()));
            }
            Err(e) => return Err(e.into()),
        };
        // It holds password hashes and S3 secrets.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        Self::prepare(path, db)
    }

    /// Migrates an older schema, refuses a newer one.
    pub(super) fn prepare(path: &Path, db: Database) -> Result<Database> {
        let (found, written_by) = {
            let txn = db.begin_read()?;
            match txn.open_table(META) {
                Ok(meta) => (
                    meta.get("schema_version")?
                        .and_then(|v| v.value().parse::<u64>().ok())
                        .unwrap_or(0),
                    meta.get("written_by")?
                        .map(|v| v.value().to_string())
                        .unwrap_or_default(),
                ),
                Err(redb::TableError::TableDoesNotExist(_)) => (0, String::new()),
                Err(e) => return Err(e.into()),
            }
        };
        if found > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found,
                written_by,
            });
        }
        if found < SCHEMA_VERSION {
            let txn = db.begin_write()?;
            let steady_ms = match txn.open_table(schema::COUNTERS) {
                Ok(t) => t.get("steady_ms")?.map_or(0, |v| v.value()),
                Err(_) => 0,
            };
            let w = Writer { txn, steady_ms };
            schema::migrate(&w, found)?;
            w.txn.commit()?;
            if found > 0 {
                log::info!(
                    "{}: migrated from schema {found} to {SCHEMA_VERSION}",
                    path.display()
                );
            }
        }
        Ok(db)
    }
}
