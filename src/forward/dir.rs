//! `file://` destinations: each put goes to a temporary name in the target directory,
//! is fsynced, renamed into place, and the directory fsynced, so a reader never sees a
//! partial file and a crash never leaves one under the real name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::sink::{Meta, Sink, SinkError, verify_md5};

pub struct DirSink {
    root: PathBuf,
}

fn classify(what: &str, e: io::Error) -> SinkError {
    let msg = format!("{what}: {e}");
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            SinkError::permanent(msg)
        }
        _ => SinkError::transient(msg),
    }
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

fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
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
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.ftpgate-tmp"));
        let copy = || -> io::Result<()> {
            fs::copy(body, &tmp)?;
            let f = fs::OpenOptions::new().write(true).open(&tmp)?;
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
            f.set_modified(mtime)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)?;
            fsync_dir(&dir)
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
        let probe = self.root.join(".ftpgate-probe");
        fs::write(&probe, b"probe")
            .map_err(|e| classify(&format!("writing into {}", self.root.display()), e))?;
        let _ = fs::remove_file(&probe);
        Ok(format!("{} exists and is writable", self.root.display()))
    }
}
