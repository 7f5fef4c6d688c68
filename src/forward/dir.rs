//! `file://` destinations: each put goes to a temporary name in the target directory,
//! is fsynced, renamed into place, and the directory fsynced, so a reader never sees a
//! partial file and a crash never leaves one under the real name.
//!
//! The destination is the clients' namespace: every name in it may be a client's. The
//! gateway's own names (the temporary file, the probe of `pipe test`) therefore contain a
//! control character (DEL, shown as `?` by `ls`), which no client path may contain, and
//! are short, so a 255-byte client name still has a temporary name.
//!
//! Each error says whether retrying can ever help: a name the filesystem refuses, a file
//! where a directory must be or a read-only destination never will (the op is parked,
//! the Pipe goes on); a full disk, a missing mount or an I/O error may (retried with
//! backoff, the Pipe offline meanwhile).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::sink::{Meta, Sink, SinkError, verify_md5};

pub struct DirSink {
    root: PathBuf,
}

/// Marks the gateway's own names: no client path contains a control character.
const OWN: char = '\u{7f}';

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

/// A temporary name in a destination directory that no client name can be.
fn own_name(what: &str) -> String {
    format!(".ftpgate{OWN}{what}-{}", crate::support::random_hex(6))
}

impl DirSink {
    pub fn new(root: PathBuf) -> DirSink {
        DirSink { root }
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

    fn root_ready(&self) -> Result<(), SinkError> {
        match fs::metadata(&self.root) {
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
        md5: &str,
        meta: &Meta,
    ) -> Result<(), SinkError> {
        self.root_ready()?;
        verify_md5(body, md5)?;
        let dest = self.path(key);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| classify("creating the directory", e))?;
        let tmp = dir.join(own_name("tmp"));
        let copy = || -> io::Result<()> {
            fs::copy(body, &tmp)?;
            let f = fs::OpenOptions::new().write(true).open(&tmp)?;
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
            f.set_modified(mtime)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)?;
            crate::support::sync_dir(&dir)
        };
        copy().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            classify(&format!("writing {}", dest.display()), e)
        })
    }

    fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(classify("deleting", e)),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        let (from, to) = (self.path(from), self.path(to));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| classify("creating the directory", e))?;
        }
        match fs::rename(&from, &to) {
            Ok(()) => Ok(()),
            // Sent again after a crash: already moved.
            Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => Ok(()),
            Err(e) => Err(classify(&format!("renaming {}", from.display()), e)),
        }
    }

    fn mkdir(&self, key: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        fs::create_dir_all(self.path(key)).map_err(|e| classify("creating the directory", e))
    }

    fn rmdir(&self, key: &str) -> Result<(), SinkError> {
        self.root_ready()?;
        match fs::remove_dir(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            // Someone else put files there: leave the directory, it is not ours alone.
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
            Err(e) => Err(classify("removing the directory", e)),
        }
    }

    fn probe(&self) -> Result<String, SinkError> {
        self.root_ready()?;
        let probe = self.root.join(own_name("probe"));
        fs::write(&probe, b"probe")
            .map_err(|e| classify(&format!("writing into {}", self.root.display()), e))?;
        let _ = fs::remove_file(&probe);
        Ok(format!("{} exists and is writable", self.root.display()))
    }
}
