//! The `ls -l` line of a catalog entry (pure), shown by FTP `LIST` and SFTP `readdir`.

use crate::calendar::ls_date;
use crate::store::catalog::{Entry, Kind};
use crate::store::namespace::Overwrite;

/// One `ls -l` line (without line ending). The bits say what the gateway allows: never
/// reading a file (nothing is downloaded), writing it only where the Pipe's `policy`
/// lets an upload replace or extend it; directories can be listed, entered and written.
/// The owner is always `ftp`, and there is no one else.
pub fn ls_line(name: &str, e: &Entry, now: u64, policy: Overwrite) -> String {
    let (mode, links) = match (e.kind, policy) {
        (Kind::Dir, _) => ("drwx------", 2),
        (Kind::File, Overwrite::Refuse) => ("----------", 1),
        (Kind::File, _) => ("--w-------", 1),
    };
    format!(
        "{mode} {links:>3} ftp      ftp      {:>12} {} {name}",
        e.size,
        ls_date(e.mtime, now)
    )
}
