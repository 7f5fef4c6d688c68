//! Pure validation of what a technician types: Sender names, Pipe ids and names, and
//! destination URLs. Every error is a sentence that says what is wrong and what is allowed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Component, Path};

/// Characters used for generated ids and passwords: no `0/o`, `1/l/i`, easy to read aloud.
pub const UNAMBIGUOUS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A validation failure, already phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(msg.into()))
}

/// Sender names: 1–64 of `[A-Za-z0-9._-]`, starting with a letter or digit. No `@`,
/// because `name@pipe_id` selects a Pipe at login.
pub fn check_sender_name(name: &str) -> Result<(), Invalid> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 {
        return invalid(format!(
            "invalid sender name {name:?}: use 1 to 64 characters"
        ));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid(format!(
            "invalid sender name {:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// Pipe ids: 4–16 characters of `[a-z0-9]`.
pub fn check_pipe_id(id: &str) -> Result<(), Invalid> {
    let ok = (4..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "invalid pipe id {:?}: use 4 to 16 lowercase letters and digits",
            id.escape_debug().to_string()
        ))
    }
}

/// Human Pipe names: 1–100 characters, no control characters.
pub fn check_pipe_name(name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return invalid(format!(
            "invalid pipe name {:?}: use 1 to 100 printable characters",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// A random string of `len` characters from [`UNAMBIGUOUS`], each equally likely
/// (bytes that would bias the choice are drawn again).
pub fn random_token(len: usize) -> String {
    let n = UNAMBIGUOUS.len();
    let limit = (256 / n * n) as u8;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // getrandom only fails when the OS has no entropy source at all; nothing can run then.
        getrandom::getrandom(&mut buf).expect("the operating system's random source failed");
        for b in buf.iter().filter(|b| **b < limit).take(len - out.len()) {
            out.push(UNAMBIGUOUS[*b as usize % n] as char);
        }
    }
    out
}

/// Where a Pipe delivers: parsed from `s3://BUCKET[/PREFIX]` or `file:///ABSOLUTE/DIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    S3 { bucket: String, prefix: String },
    Dir { path: String },
}

impl Destination {
    pub fn parse(url: &str) -> Result<Destination, Invalid> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket(bucket)?;
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty()
                && prefix.split('/').any(|seg| {
                    seg.is_empty() || seg == "." || seg == ".." || seg.chars().any(char::is_control)
                })
            {
                return invalid(format!(
                    "invalid destination {url:?}: the prefix after the bucket must be plain path segments (no empty, '.', '..' or control characters)"
                ));
            }
            return Ok(Destination::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            let p = Path::new(path);
            if !p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
                || path.contains('\0')
            {
                return invalid(format!(
                    "invalid destination {url:?}: a directory destination is file:///ABSOLUTE/DIR with no '.' or '..' parts"
                ));
            }
            let trimmed = path.trim_end_matches('/');
            return Ok(Destination::Dir {
                path: if trimmed.is_empty() {
                    "/".into()
                } else {
                    trimmed.into()
                },
            });
        }
        invalid(format!(
            "invalid destination {url:?}: use s3://BUCKET[/PREFIX] or file:///ABSOLUTE/DIR"
        ))
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Destination::S3 { .. })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Destination::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Destination::Dir { path } => write!(f, "file://{path}"),
        }
    }
}

/// S3 bucket naming rules: 3–63 of `[a-z0-9.-]`, starting and ending with a letter or digit.
fn check_bucket(bucket: &str) -> Result<(), Invalid> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && alnum(bucket.chars().next())
        && alnum(bucket.chars().last())
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "invalid S3 bucket name {:?}: use 3 to 63 lowercase letters, digits, '.' and '-'",
            bucket.escape_debug().to_string()
        ))
    }
}

/// An S3 endpoint: `http://` or `https://` followed by a host and an optional port.
pub fn check_endpoint(url: &str) -> Result<(), Invalid> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.trim_end_matches('/').is_empty()
                && !host
                    .trim_end_matches('/')
                    .contains(['/', ' ', '?', '#', '@']) =>
        {
            Ok(())
        }
        _ => invalid(format!(
            "invalid endpoint {:?}: use http://HOST[:PORT] or https://HOST[:PORT]",
            url.escape_debug().to_string()
        )),
    }
}

/// How a second upload to an existing path is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    #[default]
    Replace,
    KeepBoth,
    Refuse,
}

impl std::str::FromStr for Overwrite {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "replace" => Ok(Overwrite::Replace),
            "keep-both" => Ok(Overwrite::KeepBoth),
            "refuse" => Ok(Overwrite::Refuse),
            _ => invalid(format!(
                "invalid overwrite policy {s:?}: use replace, keep-both or refuse"
            )),
        }
    }
}

impl fmt::Display for Overwrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overwrite::Replace => "replace",
            Overwrite::KeepBoth => "keep-both",
            Overwrite::Refuse => "refuse",
        })
    }
}

/// Whether a TLS data connection must resume the control connection's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsReuse {
    #[default]
    Required,
    Optional,
}

impl std::str::FromStr for TlsReuse {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "required" => Ok(TlsReuse::Required),
            "optional" => Ok(TlsReuse::Optional),
            _ => invalid(format!(
                "invalid TLS reuse policy {s:?}: use required or optional"
            )),
        }
    }
}

impl fmt::Display for TlsReuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsReuse::Required => "required",
            TlsReuse::Optional => "optional",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_names() {
        for ok in ["cam1", "plc-7", "line_3.scanner", "A"] {
            assert!(check_sender_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "cam@abcd", "a b", "é", &"x".repeat(65), "a/b"] {
            assert!(check_sender_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pipe_ids() {
        assert!(check_pipe_id("abcd").is_ok());
        assert!(check_pipe_id("a1b2c3d4e5f6g7h8").is_ok());
        for bad in ["abc", "ABCD", "ab-cd", "a1b2c3d4e5f6g7h8x", ""] {
            assert!(check_pipe_id(bad).is_err(), "{bad}");
        }
        let id = random_token(8);
        assert!(check_pipe_id(&id).is_ok());
    }

    #[test]
    fn destinations() {
        assert_eq!(
            Destination::parse("s3://bucket/a/b/").unwrap(),
            Destination::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Destination::parse("s3://bucket").unwrap(),
            Destination::S3 {
                bucket: "bucket".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Destination::parse("file:///srv/in/").unwrap(),
            Destination::Dir {
                path: "/srv/in".into()
            }
        );
        for bad in [
            "s3://",
            "s3://B",
            "s3://ab",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "file://relative",
            "file:///a/../b",
            "http://x",
            "",
            "/tmp",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
        let d = Destination::parse("s3://bucket/p").unwrap();
        assert_eq!(d.to_string(), "s3://bucket/p");
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("http://127.0.0.1:9000").is_ok());
        assert!(check_endpoint("https://s3.example.com/").is_ok());
        for bad in [
            "127.0.0.1:9000",
            "ftp://x",
            "http://",
            "http://a/b",
            "http://u@h",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
