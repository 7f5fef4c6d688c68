//! Start-up recovery: makes the spool and the store agree after a crash at any point, in
//! time proportional to what was under way, not to the backlog.
//!
//! * Bodies the store lists as garbage are deleted (a crash came between the commit that
//!   freed them and their deletion).
//! * `tmp/` holds bodies being received, partial uploads, and bodies committed just before
//!   a crash and not yet moved: the last are moved into `ready/` (a body linked there
//!   before the crash keeps that name and loses its `tmp/` one), recorded partials are
//!   kept, everything else never got a `226` and is deleted. Expired partials go too.
//! * `ready/` is read for its buckets only (`ready.rs`): every body there was recorded
//!   before it was moved there. Empty buckets are removed.
//! * Nothing is in flight after a restart.
//!
//! The bytes the spool holds come from the store's counters (queued puts and partials).

use std::collections::HashSet;
use std::path::Path;

use super::{Disk, Error};
use crate::clock::now_secs;
use crate::store::{Store, View};
use crate::vfs::VPath;

/// Returns the bytes the spool holds afterwards.
pub(super) fn recover(
    disk: &dyn Disk,
    tmp: &Path,
    ready: &Path,
    store: &Store,
) -> Result<u64, Error> {
    let now = now_secs();
    let r = store.read()?;
    let garbage = r.garbage()?;
    let partials = r.partials()?;
    drop(r);

    for id in &garbage {
        disk.delete_body(tmp, ready, id)?;
    }
    // Partials kept for resumption stay in tmp/; expired ones are forgotten below.
    let mut expired = Vec::new();
    let mut keep = HashSet::new();
    let mut used = 0;
    for (pipe, path, p) in partials {
        if p.expires <= now {
            expired.push((pipe, path));
        } else {
            used += p.size;
            keep.insert(p.body);
        }
    }

    super::ready::adopt(disk, ready)?;
    let r = store.read()?;
    let (recorded, removed) = sort_tmp(disk, tmp, ready, &keep, &r)?;
    for b in r.pipes()? {
        used += r.backlog(&b.id)?.bytes;
    }
    drop(r);
    if !recorded.is_empty() {
        super::ready::move_in(disk, tmp, ready, &recorded)?;
        log::info!(
            "recovery: moved {} recorded upload(s) into spool/ready",
            recorded.len()
        );
    }
    if removed > 0 {
        disk.sync_dir(tmp)?;
        log::info!("recovery: removed {removed} unfinished upload(s) from spool/tmp");
    }
    let released = store.write(|w| {
        for (pipe, path) in &expired {
            w.take_partial(pipe, &VPath::from_normalised(path))?;
        }
        w.forget_garbage(&garbage)?;
        w.release_claims()
    })?;
    if released > 0 {
        log::info!(
            "recovery: {released} delivery attempt(s) were cut short; they will be sent again"
        );
    }
    Ok(used)
}

/// The bodies left in `tmp/` other than the partials in `keep`: those an op records
/// (committed, their move into `ready/` cut short) are returned to finish it; the others
/// (unfinished uploads) are deleted and counted.
fn sort_tmp(
    disk: &dyn Disk,
    tmp: &Path,
    ready: &Path,
    keep: &HashSet<String>,
    r: &impl View,
) -> Result<(Vec<String>, usize), Error> {
    let (mut recorded, mut removed) = (Vec::new(), 0);
    for entry in std::fs::read_dir(tmp)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        if r.body_queued(&name)? {
            recorded.push(name);
        } else {
            disk.delete_body(tmp, ready, &name)?;
            removed += 1;
        }
    }
    Ok((recorded, removed))
}
