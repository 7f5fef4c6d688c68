//! FTP replies (RFC 959 §4.2): a code and one or more lines of text.
//!
//! Text never carries a raw CR or LF from client input into the reply stream: every
//! control character is replaced, so a hostile file name cannot forge a reply line.

use crate::names::sanitize;

/// One reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: `first` on the opening line, `body` lines between, `last` on
    /// the closing line.
    pub fn multi(
        code: u16,
        first: impl Into<String>,
        body: Vec<String>,
        last: impl Into<String>,
    ) -> Reply {
        let mut lines = vec![first.into()];
        lines.extend(body);
        lines.push(last.into());
        Reply { code, lines }
    }

    /// Positive completion or preliminary (1xx-3xx).
    pub fn is_ok(&self) -> bool {
        self.code < 400
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            let clean = sanitize(line);
            if n == 1 {
                out.extend_from_slice(format!("{} {clean}\r\n", self.code).as_bytes());
            } else if i == 0 {
                out.extend_from_slice(format!("{}-{clean}\r\n", self.code).as_bytes());
            } else if i == n - 1 {
                out.extend_from_slice(format!("{} {clean}\r\n", self.code).as_bytes());
            } else {
                // Body lines start with a space, so none can look like a closing line.
                out.extend_from_slice(format!(" {clean}\r\n").as_bytes());
            }
        }
        out
    }
}

/// A path in double quotes with embedded quotes doubled (RFC 959 appendix II, for 257).
pub fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        assert_eq!(Reply::new(200, "OK").encode(), b"200 OK\r\n");
        let r = Reply::multi(
            211,
            "Features:",
            vec!["MDTM".into(), "211 fake".into()],
            "End",
        );
        assert_eq!(
            r.encode(),
            b"211-Features:\r\n MDTM\r\n 211 fake\r\n211 End\r\n"
        );
    }

    #[test]
    fn never_reflects_cr_or_lf() {
        let r = Reply::new(550, "no such file: a\r\n230 logged in");
        assert_eq!(r.encode(), b"550 no such file: a??230 logged in\r\n");
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
    }
}
