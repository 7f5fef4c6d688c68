//! Directory listings (pure): `LIST` in `ls -l` form, `NLST` names, and RFC 3659 MLSx
//! facts. Served from the catalog, so they work while the destination is offline.

use crate::calendar::format_timeval;
use crate::gateway::listing::ls_line;
use crate::store::catalog::{Entry, Kind};
use crate::store::namespace::Overwrite;

/// MLSx facts followed by a space and the name (RFC 3659 §7); `perm` as `ls_line`'s mode.
pub fn mlsx_line(name: &str, e: &Entry, policy: Overwrite) -> String {
    let file_perm = match policy {
        // d: delete, f: rename; no a, w: an upload may not touch it.
        Overwrite::Refuse => "df",
        // a: append, d: delete, f: rename, w: write. Never r: nothing is downloaded.
        _ => "adfw",
    };
    match e.kind {
        // c: create files, e: enter, l: list, m: make dirs, p: purge (delete entries), f: rename
        Kind::Dir => format!(
            "type=dir;modify={};perm=celmpf; {name}",
            format_timeval(e.mtime)
        ),
        Kind::File => format!(
            "type=file;size={};modify={};perm={file_perm}; {name}",
            e.size,
            format_timeval(e.mtime)
        ),
    }
}

/// The `MLST` facts this server offers, as listed in `FEAT`.
pub const MLST_FACTS: &str = "type*;size*;modify*;perm*;";

/// A whole `LIST`/`NLST`/`MLSD` body with CRLF line endings.
pub fn render(entries: &[(String, Entry)], style: Style, now: u64, policy: Overwrite) -> Vec<u8> {
    let mut out = String::new();
    for (name, e) in entries {
        let line = match style {
            Style::Long => ls_line(name, e, now, policy),
            Style::Names => name.clone(),
            Style::Machine => mlsx_line(name, e, policy),
        };
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Long,
    Names,
    Machine,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::Delivery;

    fn entry(kind: Kind, size: u64, mtime: u64) -> Entry {
        Entry {
            kind,
            size,
            mtime,
            state: Delivery::Pending,
            body: None,
            sum: None,
            remote: false,
            kept_since: None,
        }
    }

    #[test]
    fn formats() {
        let now = 1_795_474_418;
        let f = entry(Kind::File, 1234, now - 60);
        let d = entry(Kind::Dir, 0, 1_700_000_000);
        let r = Overwrite::Replace;
        assert_eq!(
            ls_line("a.jpg", &f, now, r),
            "--w-------   1 ftp      ftp              1234 Nov 23 22:52 a.jpg"
        );
        assert_eq!(
            ls_line("a.jpg", &f, now, Overwrite::Refuse),
            "----------   1 ftp      ftp              1234 Nov 23 22:52 a.jpg"
        );
        assert_eq!(
            ls_line("old", &d, now, r),
            "drwx------   2 ftp      ftp                 0 Nov 14  2023 old"
        );
        assert_eq!(
            mlsx_line("a.jpg", &f, r),
            "type=file;size=1234;modify=20261123225238;perm=adfw; a.jpg"
        );
        assert_eq!(
            mlsx_line("a.jpg", &f, Overwrite::Refuse),
            "type=file;size=1234;modify=20261123225238;perm=df; a.jpg"
        );
        assert_eq!(
            mlsx_line("old", &d, r),
            "type=dir;modify=20231114221320;perm=celmpf; old"
        );
        let body = render(
            &[("a".into(), f.clone()), ("b".into(), f)],
            Style::Names,
            now,
            r,
        );
        assert_eq!(body, b"a\r\nb\r\n");
    }
}
