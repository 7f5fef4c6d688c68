//! `file://` destinations: each put is written to the gateway's staging directory at the
//! destination's root, fsynced, renamed into place, and the directory fsynced, so a
//! reader never sees a partial file and a crash never leaves one under the real name.
//!
//! The destination is the clients' namespace: every name in it may be a client's. The
//! gateway's own names therefore contain a control character (DEL, shown as `?` by
//! `ls`), which no client path may contain: the staging directory is `.ftpgate?` at the
//! root, and nothing the gateway writes appears anywhere else until it is complete (a
//! directory watcher sees one rename per file). A 255-byte client name needs no
//! temporary name of its own length. Only where a subdirectory is another filesystem
//! (the rename cannot cross it) is the temporary file made beside its target instead,
//! under a short name of the same kind; the sweep does not look there.
//!
//! A delivery cut short by a crash or a power cut leaves its temporary file behind. The
//! names carry the daemon's instance, so [`DirSink::sweep`] (run at start-up and every
//! few seconds while the Pipe answers) removes those of earlier daemons and never one
//! that a delivery of this process is still writing.
//!
//! **The marker.** A destination on a USB disk or a NAS that is not mounted is an empty
//! mountpoint on the root file system: writing there fills the box's own disk and hides
//! the files from whoever looks on the real disk. So `pipe add` and `apply` leave a
//! marker file at the destination's root ([`MARKER`], ending in DEL like the staging
//! directory), and a Pipe that has one delivers only while it is there: without it the
//! Pipe is offline with "destination not mounted?" and keeps its backlog. After a disk
//! is replaced, `pipe set ID --adopt-destination` writes the marker again.
//!
//! Each error says whether retrying can ever help: a name the filesystem refuses, a file
//! where a directory must be or a read-only destination never will (the op is parked,
//! the Pipe goes on); a full disk, a missing mount or an I/O error may (retried with
//! backoff, the Pipe offline meanwhile).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::sink::{Meta, Sink, SinkError, corrupted};
use crate::checksum::Checksum;
use crate::support::create_dirs_synced;

mod marker;
pub use marker::{MARKER, has_marker, mark, write_marker};

pub struct DirSink {
    root: PathBuf,
    /// The Pipe's id, and whether its root must hold the marker (see the module docs).
    pipe: String,
    marked: bool,
}

/// The staging directory at the destination's root: its name ends in DEL, and no
/// client path contains a control character.
const STAGING: &str = ".ftpgate\u{7f}";
/// The copy buffer of one put.
const COPY_BUF: usize = 256 << 10;

/// Whether retrying an operation that failed with `e` can ever help.
fn classify(what: &str, e: io::Error) -> SinkError {
    use io::ErrorKind as K;
    let msg = format!("{what}: {e}");
    match e.kind() {
        K::PermissionDenied
        | K::ReadOnlyFilesystem
        | K::InvalidFilename
        | K::InvalidInput
        | K::IsADirectory
        | K::NotADirectory
        | K::DirectoryNotEmpty
        | K::AlreadyExists
        | K::FileTooLarge
        | K::CrossesDevices => SinkError::permanent(msg),
        _ => SinkError::transient(msg),
    }
}

/// This daemon's mark on the files it stages: temporary files of other instances are
/// leftovers of interrupted deliveries.
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| crate::support::random_hex(4))
}

/// A name for one staged file of this instance: `what-INSTANCE-RANDOM`.
fn staged_name(what: &str) -> String {
    format!("{what}-{}-{}", instance(), crate::support::random_hex(6))
}

/// fsyncs the directory holding `path`.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => crate::support::sync_dir(dir),
        None => Ok(()),
    }
}

/// Whether a file in the staging directory belongs to a delivery of this process.
fn is_ours(name: &str) -> bool {
    name.split('-').nth(1) == Some(instance())
}

/// Copies `body` to `tmp`, checking the bytes it copies against `sum`, fsyncs it, and
/// renames it to `dest` in `dir` (fsynced too). The inner error is the checksum the bytes
/// had instead: nothing is placed. If any step fails, `tmp` is gone again.
fn place(
    body: &Path,
    sum: &Checksum,
    tmp: &Path,
    dest: &Path,
    dir: &Path,
    mtime: SystemTime,
    only_new: bool,
) -> io::Result<Result<(), Checksum>> {
    let placed = write_synced(body, sum, tmp, mtime).and_then(|copied| match copied {
        Ok(()) => move_into_place(tmp, dest, sum, mtime, only_new)
            .and_then(|()| crate::support::sync_dir(dir))
            .map(Ok),
        bad => Ok(bad),
    });
    if !matches!(placed, Ok(Ok(()))) {
        let _ = fs::remove_file(tmp);
    }
    placed
}

/// Renames the staged copy `tmp` to `dest`. With `only_new` (the Pipe never
/// overwrites), a file already at `dest` is kept: the rename fails rather than replace
/// it (`RENAME_NOREPLACE`), unless that file holds exactly these bytes (this put, sent
/// again after its settle was lost, or after its mtime changed: the mtime is set).
/// Answers `AlreadyExists` otherwise. A file system without `RENAME_NOREPLACE` (NFS)
/// gets a look before the rename: not atomic, as the policy's help says.
fn move_into_place(
    tmp: &Path,
    dest: &Path,
    sum: &Checksum,
    mtime: SystemTime,
    only_new: bool,
) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    if !only_new {
        return fs::rename(tmp, dest);
    }
    let refused = match renameat_with(CWD, tmp, CWD, dest, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(e) if e == rustix::io::Errno::EXIST => true,
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => dest.exists(),
        Err(e) => return Err(e.into()),
    };
    if !refused {
        return fs::rename(tmp, dest);
    }
    if holds(dest, sum)? {
        fs::remove_file(tmp)?;
        let file = fs::File::options().write(true).open(dest)?;
        file.set_modified(mtime)?;
        return file.sync_all();
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "another file has this name",
    ))
}

/// Whether the file at `path` has checksum `sum`.
fn holds(path: &Path, sum: &Checksum) -> io::Result<bool> {
    let mut file = fs::File::open(path)?;
    let mut hasher = sum.hasher();
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish() == *sum),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One pass over the spool body: each buffer is hashed and written, so the checksum
/// covers exactly the bytes the destination gets.
fn write_synced(
    body: &Path,
    sum: &Checksum,
    tmp: &Path,
    mtime: SystemTime,
) -> io::Result<Result<(), Checksum>> {
    let mut from = fs::File::open(body)?;
    let mut to = fs::File::create(tmp)?;
    let mut hasher = sum.hasher();
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    let got = hasher.finish();
    if got != *sum {
        return Ok(Err(got));
    }
    to.set_modified(mtime)?;
    to.sync_all()?;
    Ok(Ok(()))
}

impl DirSink {
    /// A sink into `root` for Pipe `pipe`; `marked`: the root must hold the marker.
    pub fn new(root: PathBuf, pipe: &str, marked: bool) -> DirSink {
        DirSink {
            root,
            pipe: pipe.to_string(),
            marked,
        }
    }

    /// The local path of a key. Keys come from normalised namespace paths (no `..`, no
    /// empty segments), so they stay below the root.
    fn path(&self, key: &str) -> PathBuf {
        let mut p = self.root.clone();
        for seg in key
            .split('/')
            .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        {
            p.push(seg);
        }
        p
    }

    fn staging(&self) -> PathBuf {
        self.root.join(STAGING)
    }

    fn root_ready(&self) -> Result<(), SinkError> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() && self.marked && !has_marker(&self.root) => {
                Err(SinkError::transient(format!(
                    "destination not mounted? {} lacks the marker ({}) ftpgate left at its root when the pipe was set up: mount the disk that belongs there (uploads are kept meanwhile); after replacing the disk, run 'ftpgate pipe set {} --adopt-destination'",
                    self.root.display(),
                    MARKER.trim_end_matches('\u{7f}'),
                    self.pipe
                )))
            }
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(SinkError::permanent(format!(
                "{} is not a directory",
                self.root.display()
            ))),
            Err(e) => Err(SinkError::transient(format!(
                "destination directory {} is not available: {e}",
                self.root.display()
            ))),
        }
    }
}

impl Sink for DirSink {
    fn put(
        &self,
        key: &str,
        body: &Path,
        _size: u64,
        sum: &Checksum,
        meta: &Meta,
    ) -> Result<Option<String>, SinkError> {
        self.root_ready()?;
        let dest = self.path(key);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        create_dirs_synced(&dir).map_err(|e| classify("creating the directory", e))?;
        let staging = self.staging();
        create_dirs_synced(&staging).map_err(|e| classify("creating the staging directory", e))?;
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
        let only_new = meta.only_new;
        let staged = staging.join(staged_name("tmp"));
        let placed = match place(body, sum, &staged, &dest, &dir, mtime, only_new) {
            // `dir` is another filesystem: stage beside the target instead.
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                let beside = dir.join(format!("{STAGING}{}", staged_name("tmp")));
                place(body, sum, &beside, &dest, &dir, mtime, only_new)
            }
            r => r,
        };
        match placed {
            // A directory has no ETag.
            Ok(Ok(())) => Ok(None),
            Ok(Err(got)) => Err(corrupted(&got, sum)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(SinkError::exists(key)),
            Err(e) => Err(classify(&format!("writing {}", dest.display()), e)),
        }
    }

    // Every change below fsyncs the directories whose names it changed before it reports
    // success: once the op is settled nobody sends it again, so a power cut must not
    // bring a deleted file or a renamed file's old name back, nor take a new one away.

    fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => sync_parent(&path).map_err(|e| classify("deleting", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(classify("deleting", e)),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        let (from, to) = (self.path(from), self.path(to));
        if let Some(parent) = to.parent() {
            create_dirs_synced(parent).map_err(|e| classify("creating the directory", e))?;
        }
        match fs::rename(&from, &to) {
            Ok(()) => {}
            // Sent again after a crash: already moved (and synced below again).
            Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => {}
            Err(e) => return Err(classify(&format!("renaming {}", from.display()), e)),
        }
        let synced = sync_parent(&to).and_then(|()| match (from.parent(), to.parent()) {
            (Some(a), Some(b)) if a != b => crate::support::sync_dir(a),
            _ => Ok(()),
        });
        synced.map_err(|e| classify(&format!("renaming {}", from.display()), e))
    }

    fn mkdir(&self, key: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        create_dirs_synced(&self.path(key)).map_err(|e| classify("creating the directory", e))
    }

    fn rmdir(&self, key: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        let path = self.path(key);
        match fs::remove_dir(&path) {
            Ok(()) => sync_parent(&path).map_err(|e| classify("removing the directory", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            // Someone else put files there: leave the directory, it is not ours alone.
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
            Err(e) => Err(classify("removing the directory", e)),
        }
    }

    fn probe(&self) -> Result<String, SinkError> {
        self.root_ready()?;
        let staging = self.staging();
        let probe = staging.join(staged_name("probe"));
        fs::create_dir_all(&staging)
            .and_then(|()| fs::write(&probe, b"probe"))
            .map_err(|e| classify(&format!("writing into {}", self.root.display()), e))?;
        let _ = fs::remove_file(&probe);
        Ok(format!("{} exists and is writable", self.root.display()))
    }

    /// Removes the temporary files earlier daemons left in the staging directory.
    fn sweep(&self) -> Result<usize, SinkError> {
        let entries = match fs::read_dir(self.staging()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(classify("reading the staging directory", e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            if !is_ours(&entry.file_name().to_string_lossy()) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(classify("removing a leftover temporary file", e)),
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
