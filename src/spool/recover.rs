//! Start-up recovery: makes the spool and the store agree after a crash at any point.
//!
//! * `tmp/` files that are not recorded partials are bodies of uploads that never got a
//!   `226`: deleted. Expired partials are deleted too.
//! * `ready/` files that no outbox op or catalog entry names were renamed just before a
//!   crash, before their commit: the client never got a `226`, so they are deleted.
//! * A put whose body is missing cannot be delivered: it is parked with that reason (the
//!   commit order makes this impossible short of someone deleting files by hand).
//! * Nothing is in flight after a restart.

use std::collections::HashSet;
use std::io;
use std::path::Path;

use super::Error;
use crate::store::outbox::Action;
use crate::store::{Store, now_secs};

/// Returns the bytes the spool holds afterwards.
pub(super) fn recover(tmp: &Path, ready: &Path, store: &Store) -> Result<u64, Error> {
    let now = now_secs();
    let r = store.read()?;
    let partials = r.partials()?;
    let ops = r.ops()?;
    drop(r);

    let mut expired = Vec::new();
    let mut keep_tmp = HashSet::new();
    for (pipe, path, p) in partials {
        if p.expires <= now {
            expired.push((pipe, path));
        } else {
            keep_tmp.insert(p.body);
        }
    }
    if !expired.is_empty() {
        store.write(|w| {
            for (pipe, path) in &expired {
                w.take_partial(pipe, &crate::vfs::VPath::from_normalised(path))?;
            }
            Ok(())
        })?;
    }

    let mut referenced = HashSet::new();
    for op in &ops {
        if let Action::Put { body, .. } = &op.action {
            referenced.insert(body.clone());
        }
    }
    let mut used = sweep(tmp, &keep_tmp, "unfinished upload")?;
    used += sweep(ready, &referenced, "unrecorded body")?;

    let missing: Vec<u64> = ops
        .iter()
        .filter_map(|op| match &op.action {
            Action::Put { body, .. } if !ready.join(body).exists() => Some(op.id),
            _ => None,
        })
        .collect();
    store.write(|w| {
        w.release_claims()?;
        for id in &missing {
            log::error!("outbox op {id}: its spool body is missing; parked");
            w.park(*id, "the spool body is missing from spool/ready")?;
        }
        Ok(())
    })?;
    Ok(used)
}

/// Deletes files in `dir` not in `keep`; returns the size of those kept.
fn sweep(dir: &Path, keep: &HashSet<String>, what: &str) -> io::Result<u64> {
    let mut used = 0;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            used += entry.metadata()?.len();
        } else {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        log::info!(
            "recovery: removed {removed} {what} file(s) from {}",
            dir.display()
        );
        super::fsync_dir(dir)?;
    }
    Ok(used)
}
