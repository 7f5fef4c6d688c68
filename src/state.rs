//! The state directory and the paths inside it.
//!
//! The directory is created with mode 0700 on first use: it holds the database with
//! password hashes and S3 secrets, the TLS key and the control socket.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Default location when neither `--state` nor `FTPGATE_STATE` is given.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ftpgate";

/// Paths of everything ftpgate keeps on disk.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// Creates the directory (mode 0700) if it does not exist yet.
    pub fn create(&self) -> io::Result<()> {
        if !self.root.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("ftpgate.redb")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.root.join("control.sock")
    }

    /// The daemon's claim on the directory: an exclusive lock on `daemon.lock`, held for
    /// as long as the returned file is open (the kernel lets go when the process ends,
    /// `kill -9` included). `Ok(None)` when another process holds it. The database
    /// file's own lock does not do this job: the daemon lets go of it for a moment when
    /// it reopens the file to give its cache back, and a CLI command that found no daemon
    /// holds it for a moment too.
    pub fn claim(&self) -> io::Result<Option<fs::File>> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.root.join("daemon.lock"))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    pub fn cert_file(&self) -> PathBuf {
        self.tls_dir().join("cert.pem")
    }

    pub fn key_file(&self) -> PathBuf {
        self.tls_dir().join("key.pem")
    }

    /// The SFTP host key (ed25519, OpenSSH format, mode 0600), made at first start.
    pub fn ssh_host_key(&self) -> PathBuf {
        self.root.join("ssh_host_ed25519_key")
    }

    pub fn spool_tmp(&self) -> PathBuf {
        self.root.join("spool").join("tmp")
    }

    /// Space kept for the database on the day the disk fills (see `spool::reserve`).
    pub fn spool_reserve(&self) -> PathBuf {
        self.root().join("spool").join("reserve")
    }

    pub fn spool_ready(&self) -> PathBuf {
        self.root.join("spool").join("ready")
    }

    /// Emptied body files kept for reuse (see `spool::spares`).
    pub fn spool_spare(&self) -> PathBuf {
        self.root.join("spool").join("spare")
    }
}

/// Writes `contents` to `path` through a temporary file, fsync and rename, with `mode`.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut f = fs::File::create(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// This machine's host name (from `uname`, which works where `/proc/sys` is hidden, as in
/// the systemd unit).
pub fn host_name() -> Option<String> {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_and_a_dropped_claim_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let first = state.claim().unwrap().expect("free at first");
        assert!(state.claim().unwrap().is_none(), "held by the first");
        drop(first);
        assert!(state.claim().unwrap().is_some(), "free once dropped");
    }
}
