//! Where committed bodies wait for delivery: `spool/ready/BUCKET/ID`, a directory per
//! 17.5 minutes of body ids.
//!
//! * **Buckets, so the directories shrink.** A directory on ext4 never gives back the
//!   blocks its entries once took: one `ready/` that held a 100,000-upload backlog stayed
//!   7 MB after the drain, and every later lookup and start-up listing walked it. A body's
//!   bucket is the first 7 hex digits of its id (its creation time in units of 2^20 ms),
//!   so the bodies of a backlog fill a few buckets, and each bucket is removed once its
//!   last body is released ([`sweep`]): after a drain `ready/` is back to its idle size.
//! * **Moved in without a moment with no name.** A body's name in `tmp/` is durable from
//!   its commit. Renaming it into `ready/` and fsyncing neither directory left a window in
//!   which a file system without a journal (ext4 `^has_journal`, common on flash) could
//!   write `tmp/`'s block (the next commit fsyncs `tmp/`) before `ready/`'s, and a power
//!   cut then left the body with no name at all. [`move_in`] links the body into its
//!   bucket, fsyncs the bucket (and `ready/` when the bucket is new), and only then
//!   removes the `tmp/` name. The commit links before the client hears `226` (from then
//!   on the body is found in its bucket); the fsyncs and removals follow on a thread of
//!   their own, once for every batch committed meanwhile, off the commits' path. A crash
//!   in between leaves both names; recovery drops the `tmp/` one. The test is
//!   `spool::tests::ready::a_committed_body_is_never_without_a_durable_name`.
//! * Bodies written by releases before buckets lie directly in `ready/`: start-up moves
//!   them into their buckets ([`adopt`]).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use super::Disk;

/// Hex digits of an id that name its bucket.
const BUCKET_DIGITS: usize = 7;

/// The bucket of body `id`; ids not made by `new_id` (never the case in a spool this
/// release wrote, but recovery lists `tmp/` as it finds it) share the bucket `x`.
pub(super) fn bucket(id: &str) -> &str {
    match id.get(..BUCKET_DIGITS) {
        Some(b) if id.len() > BUCKET_DIGITS && b.bytes().all(|c| c.is_ascii_hexdigit()) => b,
        _ => "x",
    }
}

/// Where body `id` lies once it is in `ready/`.
pub(super) fn path(ready: &Path, id: &str) -> PathBuf {
    ready.join(bucket(id)).join(id)
}

/// Moves committed bodies from `tmp/` into their buckets at once: [`link`], then
/// [`Linked::finish`]. At start-up only (the commit thread does the halves apart): a
/// body that could not be moved fails the start, as it did before buckets.
pub(super) fn move_in(disk: &dyn Disk, tmp: &Path, ready: &Path, ids: &[String]) -> io::Result<()> {
    let mut linked = link(disk, tmp, ready, ids);
    let failed = std::mem::take(&mut linked.failed);
    linked.finish(disk, tmp, ready)?;
    match failed.len() {
        0 => Ok(()),
        n => Err(io::Error::other(format!(
            "could not move {n} recorded upload(s) into spool/ready"
        ))),
    }
}

/// Bodies linked into their buckets, their `tmp/` names not yet removed.
pub(super) struct Linked {
    /// A bucket was made: `ready/` itself needs an fsync.
    made: bool,
    buckets: BTreeSet<PathBuf>,
    linked: Vec<String>,
    /// Not linked (they stay in `tmp/`).
    pub(super) failed: Vec<String>,
}

/// The first half of a move: gives each body its name in its bucket (making the bucket
/// if need be). From here a body is found in `ready/`; nothing is durable yet.
pub(super) fn link(disk: &dyn Disk, tmp: &Path, ready: &Path, ids: &[String]) -> Linked {
    let mut out = Linked {
        made: false,
        buckets: BTreeSet::new(),
        linked: Vec::with_capacity(ids.len()),
        failed: Vec::new(),
    };
    for id in ids {
        let dir = ready.join(bucket(id));
        let mut linking = || -> io::Result<()> {
            // A sweep may remove an emptied bucket between making it and linking into it.
            for _ in 0..3 {
                if !dir.is_dir() {
                    match std::fs::create_dir(&dir) {
                        Ok(()) => out.made = true,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                }
                let (from, to) = (tmp.join(id), dir.join(id));
                match disk.link(&from, &to) {
                    Ok(()) => {
                        out.linked.push(id.clone());
                        return Ok(());
                    }
                    // A file system without hard links: a rename, made durable by the
                    // bucket's fsync alone (the window this module closes stays open
                    // there).
                    Err(e) if no_links(&e) => return disk.rename(&from, &to),
                    Err(e) if e.kind() == io::ErrorKind::NotFound && from.exists() => {}
                    // Linked before a crash (same id, same file).
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        out.linked.push(id.clone());
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(io::Error::other("its bucket kept disappearing"))
        };
        match linking() {
            Ok(()) => {
                out.buckets.insert(dir);
            }
            // Delivered and released already: nothing to move.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                log::warn!("spool: moving body {id} into ready/: {e} (it is delivered from tmp/)");
                out.failed.push(id.clone());
            }
        }
    }
    out
}

impl Linked {
    /// Adds the bodies of `other` (a later batch) to this one's.
    pub(super) fn absorb(&mut self, other: Linked) {
        self.made |= other.made;
        self.buckets.extend(other.buckets);
        self.linked.extend(other.linked);
        self.failed.extend(other.failed);
    }

    /// The second half: fsyncs the buckets (and `ready/` if a bucket was made), then
    /// removes the `tmp/` names. If an fsync fails, both names stay: the body is found in
    /// its bucket, and recovery drops the `tmp/` name once the bucket's is durable.
    pub(super) fn finish(self, disk: &dyn Disk, tmp: &Path, ready: &Path) -> io::Result<()> {
        if self.buckets.is_empty() {
            return Ok(());
        }
        // A bucket swept meanwhile held none of these bodies any more (they were all
        // delivered and released): nothing of it to make durable.
        let sync = |dir: &Path| match disk.sync_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        };
        if self.made {
            sync(ready)?;
        }
        for b in &self.buckets {
            sync(b)?;
        }
        for id in self.linked {
            match disk.remove(&tmp.join(&id)) {
                Ok(()) => {}
                // Released meanwhile (every name of it went).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("spool: removing the tmp/ name of body {id}: {e}"),
            }
        }
        Ok(())
    }
}

/// Whether `e` says the file system has no hard links (FAT, some FUSE file systems).
fn no_links(e: &io::Error) -> bool {
    const EPERM: i32 = 1;
    const EOPNOTSUPP: i32 = 95;
    matches!(e.raw_os_error(), Some(EPERM | EOPNOTSUPP))
}

/// Removes the buckets among `candidates` that are empty now. One that uploads are
/// about to link into is made again (see [`link`]): at most an `mkdir` and an fsync of
/// `ready/` per tidy, for a bucket that emptied.
pub(super) fn sweep(ready: &Path, candidates: BTreeSet<String>) {
    for b in candidates {
        // Gone already, or not empty (its last body's release names it again): no matter.
        if std::fs::remove_dir(ready.join(&b)).is_ok() {
            log::debug!("spool: removed the emptied bucket ready/{b}");
        }
    }
}

/// At start-up: moves bodies an earlier release left directly in `ready/` into their
/// buckets, and removes the buckets that are empty. Reads `ready/` itself, which holds a
/// name per bucket: bounded by the backlog's age, not its size (after the first start
/// of this release).
pub(super) fn adopt(disk: &dyn Disk, ready: &Path) -> io::Result<()> {
    let mut flat = Vec::new();
    for entry in std::fs::read_dir(ready)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            // Fails when it holds bodies: that is what keeps it.
            let _ = std::fs::remove_dir(entry.path());
        } else {
            flat.push(name);
        }
    }
    if flat.is_empty() {
        return Ok(());
    }
    move_in(disk, ready, ready, &flat)?;
    log::info!(
        "spool: moved {} bodies of an earlier release into spool/ready's buckets",
        flat.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_the_same_quarter_hour_share_a_bucket() {
        let a = super::super::id_made_at(1_800_000_000_000);
        let b = super::super::id_made_at(1_800_000_000_000 + 60_000);
        let c = super::super::id_made_at(1_800_000_000_000 + 3_600_000);
        assert_eq!(bucket(&a), bucket(&b));
        assert_ne!(bucket(&a), bucket(&c));
        assert_eq!(bucket("../../etc/passwd"), "x");
        assert_eq!(bucket("abc"), "x");
    }

    #[test]
    fn only_empty_buckets_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        for b in ["0a", "0b"] {
            std::fs::create_dir(dir.path().join(b)).unwrap();
        }
        std::fs::write(dir.path().join("0b").join("body"), b"x").unwrap();
        sweep(dir.path(), ["0a".into(), "0b".into(), "0c".into()].into());
        assert!(!dir.path().join("0a").exists(), "emptied: removed");
        assert!(dir.path().join("0b").is_dir(), "not empty: kept");
    }
}
