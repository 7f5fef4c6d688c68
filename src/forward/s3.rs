//! S3 destinations through rust-s3's blocking client (called off the executor).
//!
//! * Bodies up to [`MULTIPART_THRESHOLD`] go in one PUT; larger ones by multipart from
//!   the spool file, one [`PART_SIZE`] part in flight, so memory stays flat for any size.
//! * rust-s3 sends a Content-MD5 with every PUT and part, so the server verifies what it
//!   got; before completing, we check the whole body against the MD5 taken on receipt,
//!   so a body damaged on the gateway's disk is never delivered.
//! * rust-s3's own retries are off (see `forward::init`); errors are classified here
//!   into transient (retry) and permanent (park with the reason).

use std::io::Read;
use std::path::Path;

use http::{HeaderMap, HeaderName, HeaderValue};
use md5::Digest;
use s3::error::S3Error;
use s3::{Bucket, Region, creds::Credentials};

use super::sink::{Meta, Sink, SinkError};
use crate::store::S3Settings;

/// Bodies above this size go by multipart.
pub const MULTIPART_THRESHOLD: u64 = 8 << 20;
/// Part size (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 5 << 20;
const CONTENT_TYPE: &str = "application/octet-stream";

pub struct S3Sink {
    bucket: Box<Bucket>,
    where_: String,
}

fn permanent(e: impl std::fmt::Display) -> SinkError {
    SinkError::permanent(e.to_string())
}

/// The `<Code>` of an S3 error body.
fn error_code(body: &str) -> &str {
    body.split("<Code>")
        .nth(1)
        .and_then(|s| s.split("</Code>").next())
        .unwrap_or("")
}

/// Transient or permanent, with a sentence that says what is wrong.
pub fn classify(e: S3Error) -> SinkError {
    match e {
        S3Error::HttpFailWithBody(status, body) => {
            let code = error_code(&body);
            let what = format!(
                "HTTP {status}{}{code}",
                if code.is_empty() { "" } else { " " }
            );
            match (status, code) {
                (_, "NoSuchBucket") => {
                    SinkError::permanent(format!("the bucket does not exist ({what})"))
                }
                (_, "InvalidAccessKeyId") => SinkError::permanent(format!(
                    "the endpoint does not know this access key ({what}): fix it with 'ftpgate pipe set ID --access-key KEY'"
                )),
                (_, "SignatureDoesNotMatch") => SinkError::permanent(format!(
                    "the secret key is wrong ({what}): fix it with 'ftpgate pipe set ID --secret-key-stdin'"
                )),
                (
                    _,
                    "RequestTimeout" | "SlowDown" | "BadDigest" | "InternalError"
                    | "ServiceUnavailable",
                ) => SinkError::transient(format!("the endpoint asked to retry ({what})")),
                (403, _) | (_, "AccessDenied") => SinkError::permanent(format!(
                    "access denied ({what}): the credentials may not write to this bucket or prefix"
                )),
                (408 | 429, _) | (500..=599, _) => {
                    SinkError::transient(format!("the endpoint is failing or busy ({what})"))
                }
                _ => SinkError::permanent(format!("the endpoint refused the request ({what})")),
            }
        }
        S3Error::HttpFail => SinkError::transient("the endpoint answered with an error status"),
        S3Error::Credentials(e) => permanent(format!("bad credentials: {e}")),
        S3Error::Region(e) => permanent(format!("bad region: {e}")),
        S3Error::UrlParse(e) => permanent(format!("bad endpoint URL: {e}")),
        other => {
            let text = other.to_string();
            let lower = text.to_ascii_lowercase();
            let why = if lower.contains("lookup")
                || lower.contains("resolve")
                || lower.contains("dns")
                || lower.contains("name or service")
            {
                "cannot resolve the endpoint's host name (DNS)"
            } else if lower.contains("refused") {
                "connection refused by the endpoint"
            } else if lower.contains("timed out") || lower.contains("timeout") {
                "the endpoint did not answer in time"
            } else if lower.contains("tls")
                || lower.contains("certificate")
                || lower.contains("handshake")
            {
                "TLS with the endpoint failed (a private CA is not trusted)"
            } else if lower.contains("reset")
                || lower.contains("broken pipe")
                || lower.contains("unexpected eof")
            {
                "the connection to the endpoint broke"
            } else {
                "network error"
            };
            SinkError::transient(format!("{why}: {text}"))
        }
    }
}

fn meta_headers(meta: &Meta) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("sender", meta.sender.as_str()),
        ("pipe", meta.pipe.as_str()),
        ("gateway", meta.gateway.as_str()),
        ("mtime", &meta.mtime.to_string()),
    ] {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(format!("x-amz-meta-{k}")),
            HeaderValue::try_from(v),
        ) {
            h.insert(name, value);
        }
    }
    h
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupted(got: &str, want: &str) -> SinkError {
    SinkError::permanent(format!(
        "the spool body no longer matches its checksum (MD5 {got}, expected {want}): disk corruption"
    ))
}

impl S3Sink {
    pub fn new(bucket: &str, s: &S3Settings) -> Result<S3Sink, SinkError> {
        let region = match &s.endpoint {
            Some(endpoint) => Region::Custom {
                region: s.region.clone(),
                endpoint: endpoint.clone(),
            },
            None => s
                .region
                .parse()
                .map_err(|e| permanent(format!("bad region {}: {e}", s.region)))?,
        };
        let creds = Credentials::new(Some(&s.access_key), Some(&s.secret_key), None, None, None)
            .map_err(permanent)?;
        let mut b = Bucket::new(bucket, region, creds).map_err(classify)?;
        if s.path_style {
            b = b.with_path_style();
        }
        let where_ = format!(
            "bucket {bucket} at {}",
            s.endpoint.as_deref().unwrap_or("AWS")
        );
        Ok(S3Sink { bucket: b, where_ })
    }

    fn put_small(&self, key: &str, body: &Path, md5: &str, meta: &Meta) -> Result<(), SinkError> {
        let content = std::fs::read(body)
            .map_err(|e| SinkError::transient(format!("reading the spool body: {e}")))?;
        let got = hex(&md5::Md5::digest(&content));
        if got != md5 {
            return Err(corrupted(&got, md5));
        }
        self.bucket
            .put_object_builder(format!("/{key}"), &content)
            .with_content_type(CONTENT_TYPE)
            .with_headers(meta_headers(meta))
            .execute()
            .map_err(classify)?;
        Ok(())
    }

    fn put_multipart(
        &self,
        key: &str,
        body: &Path,
        md5: &str,
        meta: &Meta,
    ) -> Result<(), SinkError> {
        let path = format!("/{key}");
        let mut file = std::fs::File::open(body)
            .map_err(|e| SinkError::transient(format!("reading the spool body: {e}")))?;
        let with_meta = self
            .bucket
            .with_extra_headers(meta_headers(meta))
            .map_err(classify)?;
        let upload = with_meta
            .initiate_multipart_upload(&path, CONTENT_TYPE)
            .map_err(classify)?;
        let id = upload.upload_id;
        let abort = |e: SinkError| {
            if let Err(a) = self.bucket.abort_upload(&path, &id) {
                log::warn!("aborting multipart upload of {key}: {a}");
            }
            e
        };
        let mut whole = md5::Md5::new();
        let mut parts = Vec::new();
        let mut chunk = vec![0u8; PART_SIZE];
        for number in 1.. {
            let mut filled = 0;
            while filled < PART_SIZE {
                match file.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => {
                        return Err(abort(SinkError::transient(format!(
                            "reading the spool body: {e}"
                        ))));
                    }
                }
            }
            if filled == 0 {
                break;
            }
            whole.update(&chunk[..filled]);
            let part = self
                .bucket
                .put_multipart_chunk(&chunk[..filled], &path, number, &id, CONTENT_TYPE)
                .map_err(classify)
                .map_err(abort)?;
            parts.push(part);
            if filled < PART_SIZE {
                break;
            }
        }
        let got = hex(&whole.finalize());
        if got != md5 {
            return Err(abort(corrupted(&got, md5)));
        }
        self.bucket
            .complete_multipart_upload(&path, &id, parts)
            .map_err(classify)
            .map_err(abort)?;
        Ok(())
    }

    fn exists(&self, key: &str) -> bool {
        self.bucket.head_object(format!("/{key}")).is_ok()
    }
}

impl Sink for S3Sink {
    fn put(
        &self,
        key: &str,
        body: &Path,
        size: u64,
        md5: &str,
        meta: &Meta,
    ) -> Result<(), SinkError> {
        if size > MULTIPART_THRESHOLD {
            self.put_multipart(key, body, md5, meta)
        } else {
            self.put_small(key, body, md5, meta)
        }
    }

    fn delete(&self, key: &str) -> Result<(), SinkError> {
        match self.bucket.delete_object(format!("/{key}")) {
            Ok(_) => Ok(()),
            Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), SinkError> {
        match self
            .bucket
            .copy_object_internal(format!("/{from}"), format!("/{to}"))
        {
            Ok(_) => {}
            // Sent again after a crash between copy+delete and the record: already moved.
            Err(S3Error::HttpFailWithBody(404, _)) if self.exists(to) => return Ok(()),
            Err(e) => return Err(classify(e)),
        }
        self.delete(from)
    }

    fn mkdir(&self, key: &str) -> Result<(), SinkError> {
        self.bucket
            .put_object(format!("/{key}/"), &[])
            .map_err(classify)?;
        Ok(())
    }

    fn rmdir(&self, key: &str) -> Result<(), SinkError> {
        self.delete(&format!("{key}/"))
    }

    fn probe(&self) -> Result<String, SinkError> {
        self.bucket
            .list_page(String::new(), None, None, None, Some(1))
            .map_err(classify)?;
        Ok(format!(
            "{} answers and the credentials may list it",
            self.where_
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_s3_errors() {
        let body = |code: &str| {
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
        };
        assert!(!classify(S3Error::HttpFailWithBody(404, body("NoSuchBucket"))).transient);
        assert!(!classify(S3Error::HttpFailWithBody(403, body("InvalidAccessKeyId"))).transient);
        assert!(
            !classify(S3Error::HttpFailWithBody(
                403,
                body("SignatureDoesNotMatch")
            ))
            .transient
        );
        assert!(!classify(S3Error::HttpFailWithBody(403, body("AccessDenied"))).transient);
        assert!(classify(S3Error::HttpFailWithBody(503, body("SlowDown"))).transient);
        assert!(classify(S3Error::HttpFailWithBody(500, String::new())).transient);
        assert!(classify(S3Error::HttpFailWithBody(429, String::new())).transient);
        assert!(classify(S3Error::HttpFailWithBody(400, body("RequestTimeout"))).transient);
        assert!(!classify(S3Error::HttpFailWithBody(400, body("InvalidArgument"))).transient);
        let refused = classify(S3Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        )));
        assert!(refused.transient && refused.message.contains("connection refused"));
    }
}
