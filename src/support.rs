//! Helpers several modules need, written once: hex encoding, random hex names, and
//! fsyncing a directory (what makes a created or renamed name durable).

use std::io;
use std::path::Path;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `n` random bytes from the operating system, hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).expect("the operating system's random source failed");
    hex(&b)
}

/// Whether `e` says the disk (or the quota) is full: a state that passes, not a fault.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// fsyncs a directory: the names created, renamed or removed in it are durable after.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    SYNCED.with(|s| s.borrow_mut().push(dir.to_path_buf()));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
thread_local! {
    /// Tests: the directories this thread fsynced, in order.
    pub static SYNCED: std::cell::RefCell<Vec<std::path::PathBuf>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// Creates `dir` and every missing directory above it, fsyncing the parent of each one it
/// creates, so a power cut cannot take back a directory a delivery went into.
pub fn create_dirs_synced(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    create_dirs_synced(parent)?;
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        // Made meanwhile by another delivery (which syncs it).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_and_two_digits_a_byte() {
        assert_eq!(super::hex(&[0, 0xab, 0x0f]), "00ab0f");
        assert_eq!(super::random_hex(16).len(), 32);
    }
}
