//! The marker at a `file://` destination's root (see [`crate::forward::dir`]): proof
//! that the directory is the file system the Pipe was made for, not an empty mountpoint.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The marker file at a marked destination's root.
pub const MARKER: &str = ".ftpgate-destination\u{7f}";

/// Writes the marker of Pipe `pipe` at `root` (which must exist: a missing directory
/// would be made on whatever file system holds its parent), durably.
pub fn write_marker(root: &Path, pipe: &str) -> io::Result<()> {
    if !fs::metadata(root)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    let path = root.join(MARKER);
    let mut f = fs::File::create(&path)?;
    f.write_all(format!("ftpgate delivers pipe {pipe} into this directory\n").as_bytes())?;
    f.sync_all()?;
    crate::support::sync_dir(root)
}

/// Leaves the marker at a `file://` Pipe's root if the root is there, and records it in
/// the Pipe; returns whether it did. A root that does not exist yet is not made (it may be
/// a mountpoint whose disk is not in): the daemon adopts it when it first finds it.
pub fn mark(pipe: &mut crate::store::Pipe) -> io::Result<bool> {
    let crate::store::destination::Destination::Dir { path } = &pipe.dest else {
        return Ok(false);
    };
    let root = Path::new(path);
    if !root.is_dir() {
        return Ok(false);
    }
    write_marker(root, &pipe.id)?;
    pipe.dest_marked = true;
    Ok(true)
}

/// Whether `root` holds a marker.
pub fn has_marker(root: &Path) -> bool {
    root.join(MARKER).is_file()
}
