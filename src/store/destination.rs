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

/// Checks a proxy URL: `http://`, `https://` or `socks5://`, a host, maybe a port and
/// credentials, nothing else. The password `***` is what an export without secrets
/// shows: refused, so it never replaces the real one.
pub fn check_proxy(url: &str) -> Result<(), Invalid> {
    let bad = |why: &str| {
        invalid(format!(
            "invalid proxy {}: {why}; use http://HOST:PORT (credentials: http://USER:PASSWORD@HOST:PORT, given on standard input)",
            redact_proxy(url)
        ))
    };
    let Ok(u) = url::Url::parse(url) else {
        return bad("not a URL");
    };
    if !matches!(u.scheme(), "http" | "https" | "socks5") {
        return bad("the scheme must be http, https or socks5");
    }
    if u.host_str().is_none_or(str::is_empty) {
        return bad("no host");
    }
    if !matches!(u.path(), "" | "/") || u.query().is_some() {
        return bad("a proxy URL has no path");
    }
    if u.password() == Some("***") {
        return invalid(
            "the proxy's password is hidden in this file: export with --include-secrets, or set it with 'ftpgate pipe set ID --proxy-stdin'".to_string(),
        );
    }
    Ok(())
}

/// A proxy URL fit to show: its password replaced by `***`.
pub fn redact_proxy(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(not a URL)".into(),
    }
}

/// How many certificates a PEM text holds (a CA file must hold one at least).
pub fn check_ca_pem(pem: &str) -> Result<usize, Invalid> {
    let n = pem.matches("-----BEGIN CERTIFICATE-----").count();
    if n == 0 {
        return invalid(
            "the CA file holds no certificate: give a PEM file (-----BEGIN CERTIFICATE-----)"
                .to_string(),
        );
    }
    Ok(n)
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

    #[test]
    fn proxies() {
        assert!(check_proxy("http://10.0.0.1:3128").is_ok());
        assert!(check_proxy("http://plant:pw@proxy.local:3128/").is_ok());
        for bad in ["10.0.0.1:3128", "ftp://h:21", "http://h:1/path", "http://"] {
            assert!(check_proxy(bad).is_err(), "{bad}");
        }
        let e = check_proxy("ftp://u:hunter2@h:1").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(check_proxy("http://u:***@h:1").is_err());
        assert_eq!(
            redact_proxy("http://u:hunter2@h:3128"),
            "http://u:***@h:3128/"
        );
    }
}
