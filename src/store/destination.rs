//! Where a Pipe delivers ([`Destination`]) and the S3 endpoint it may name: parsed and
//! checked from what a technician types, with sentences that say what is allowed.

use std::fmt;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::names::{Invalid, invalid};

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

#[cfg(test)]
mod tests {
    use super::*;

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
