//! S3 destinations, blocking (called off the executor).
//!
//! * Every request goes over one client of kept-alive HTTP connections per Pipe
//!   ([`http::Client`], signed there), so a drain of a million small files opens a handful
//!   of TCP and TLS connections, not a million, and the Pipe's CA file and proxy apply to
//!   all of them. Requests are signed with SigV4 ([`sigv4`], our own: the few functions
//!   we need, without an S3 crate's HTTP client beside ureq).
//! * Larger bodies go by multipart from the spool file, several parts in flight within a
//!   fixed process-wide budget of buffers ([`multipart`]), so memory stays flat for any
//!   size and any number of Pipes.
//! * Integrity: the bytes read from the spool are checked against the checksum taken on
//!   receipt before the server may keep them (a small body before its PUT, a large one
//!   before its completion), so a body damaged on the gateway's disk is never
//!   delivered. Every PUT and part carries its checksum for the server to verify:
//!   `x-amz-checksum-crc32c`, and a Content-MD5 too until the server has shown that it
//!   checks the CRC (it echoes the header); an op queued with an MD5 by an older version
//!   carries that as Content-MD5. The payload itself is not hashed for SigV4
//!   (`UNSIGNED-PAYLOAD`): the checksum header is what protects it.
//! * A request is tried once (after a clock-skew refusal, twice); errors are classified
//!   here into transient (the forwarder retries with backoff) and permanent (park with
//!   the reason).

use std::path::Path;
use std::sync::Arc;

use ::http::{HeaderMap, HeaderName, HeaderValue};

use super::journal::{Journal, Open};
use super::sink::{Meta, Sink, SinkError, corrupted};
use crate::checksum::Checksum;
use crate::store::S3Settings;

pub mod budget;
mod classify;
mod copy;
mod headers;
pub mod http;
pub mod multipart;
#[cfg(test)]
mod only_new_tests;
pub mod sigv4;
#[cfg(test)]
mod test_server;

pub use classify::classify;
use classify::permanent;
use classify::xml_text;
use headers::{Verifies, content_type, integrity_headers, meta_headers};
use http::{Client, Route, S3Error};

/// Bodies above this size go by multipart.
pub const MULTIPART_THRESHOLD: u64 = 8 << 20;
/// Part size (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 5 << 20;

pub struct S3Sink {
    /// The bucket's name.
    bucket: String,
    client: Client,
    where_: String,
    /// Where open multipart uploads are written down, so none is left open for good.
    journal: Option<Arc<Journal>>,
    /// Whether the server checks the CRC32C of PUTs, and of parts.
    puts_verified: Verifies,
    parts_verified: Verifies,
    /// Renames of objects above this go by multipart copy ([`copy::COPY_LIMIT`]; tests
    /// lower it, with the part size).
    copy_limit: u64,
    copy_part: u64,
}

/// A spool body that could not be read (retried: the disk may come back).
fn unreadable(e: std::io::Error) -> SinkError {
    SinkError::transient(format!("reading the spool body: {e}"))
}

impl S3Sink {
    pub fn new(
        bucket: &str,
        s: &S3Settings,
        journal: Option<Arc<Journal>>,
    ) -> Result<S3Sink, SinkError> {
        let base = sigv4::bucket_url(bucket, s.endpoint.as_deref(), &s.region, s.path_style);
        let signer = sigv4::Signer {
            access_key: s.access_key.clone(),
            secret_key: s.secret_key.clone(),
            region: s.region.clone(),
        };
        let where_ = format!(
            "bucket {bucket} at {}",
            s.endpoint.as_deref().unwrap_or("AWS")
        );
        let route = Route {
            ca_pem: s.ca_pem.clone(),
            proxy: s.proxy.clone(),
        };
        let client = Client::new(base, signer, &route).map_err(permanent)?;
        Ok(S3Sink {
            bucket: bucket.to_string(),
            client,
            where_,
            journal,
            puts_verified: Verifies::default(),
            parts_verified: Verifies::default(),
            copy_limit: copy::COPY_LIMIT,
            copy_part: copy::COPY_PART,
        })
    }

    fn put_small(
        &self,
        key: &str,
        body: &Path,
        size: u64,
        sum: &Checksum,
        meta: &Meta,
        only: &HeaderMap,
    ) -> Result<Option<String>, SinkError> {
        // Counted against the deliveries' memory budget while it is held.
        let _held = budget::MEMORY.take(size);
        let content = std::fs::read(body).map_err(unreadable)?;
        let got = sum.of_same_kind(&content);
        if got != *sum {
            return Err(corrupted(&got, sum));
        }
        let mut headers = meta_headers(meta);
        headers.extend(only.clone());
        content_type(&mut headers);
        integrity_headers(&mut headers, sum, &content, &self.puts_verified);
        let answer = self
            .client
            .send("PUT", key, &[], headers, &content)
            .map_err(classify)?;
        self.puts_verified.saw(sum, &answer.headers, &self.where_);
        Ok(etag_of(&answer.headers))
    }

    /// One PUT.
    fn put_bytes(&self, key: &str, content: &[u8], headers: HeaderMap) -> Result<(), SinkError> {
        self.client
            .send("PUT", key, &[], headers, content)
            .map(|_| ())
            .map_err(classify)
    }

    /// Starts a multipart upload of `key` whose parts carry checksums like `sum`;
    /// returns its id.
    fn initiate(&self, key: &str, sum: &Checksum, meta: &Meta) -> Result<String, S3Error> {
        let mut headers = meta_headers(meta);
        content_type(&mut headers);
        if let Checksum::Crc32c(_) = sum {
            headers.insert(
                HeaderName::from_static("x-amz-checksum-algorithm"),
                HeaderValue::from_static("CRC32C"),
            );
        }
        self.initiate_with(key, headers)
    }

    /// Starts a multipart upload of `key` with `headers`; returns its id.
    fn initiate_with(&self, key: &str, headers: HeaderMap) -> Result<String, S3Error> {
        let answer = self
            .client
            .send("POST", key, &[("uploads", "")], headers, &[])?;
        xml_text(&answer.body, "UploadId").ok_or_else(|| {
            S3Error::Status(500, format!("no UploadId in the answer: {}", answer.body))
        })
    }

    fn abort(&self, key: &str, id: &str) -> Result<(), S3Error> {
        self.client
            .send("DELETE", key, &[("uploadId", id)], HeaderMap::new(), &[])
            .map(|_| ())
    }

    fn put_multipart(
        &self,
        key: &str,
        body: &Path,
        sum: &Checksum,
        meta: &Meta,
        only: &HeaderMap,
    ) -> Result<Option<String>, SinkError> {
        let mut file = std::fs::File::open(body).map_err(unreadable)?;
        let id = self.initiate(key, sum, meta).map_err(classify)?;
        self.in_multipart(key, &id, || self.send_parts(key, &id, &mut file, sum, only))
    }

    /// One put, replacing what is at `key` only as `only` allows.
    fn put_if(
        &self,
        key: &str,
        body: &Path,
        size: u64,
        sum: &Checksum,
        meta: &Meta,
        only: &HeaderMap,
    ) -> Result<Option<String>, SinkError> {
        if size > MULTIPART_THRESHOLD {
            self.put_multipart(key, body, sum, meta, only)
        } else {
            self.put_small(key, body, size, sum, meta, only)
        }
    }

    /// A put that must not replace another's object found one at `key`. If it is this
    /// upload's own (sent before, its answer lost; or its mtime changed since), it is
    /// done, or sent again over exactly that object (`If-Match` its ETag); anything
    /// else is kept and the op parked.
    fn put_over_own(
        &self,
        key: &str,
        body: &Path,
        size: u64,
        sum: &Checksum,
        meta: &Meta,
    ) -> Result<Option<String>, SinkError> {
        let head = self
            .client
            .send("HEAD", key, &[], HeaderMap::new(), &[])
            .map_err(classify)?;
        let header = |name: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if header("x-amz-meta-upload").as_deref() != Some(meta.upload.as_str()) {
            return Err(SinkError::exists(key));
        }
        if header("x-amz-meta-mtime") == Some(meta.mtime.to_string()) {
            return Ok(etag_of(&head.headers));
        }
        let mut only = HeaderMap::new();
        if let Some(v) = head.headers.get(::http::header::ETAG) {
            only.insert(::http::header::IF_MATCH, v.clone());
        }
        match self.put_if(key, body, size, sum, meta, &only) {
            Err(e) if e.exists => Err(SinkError::transient(format!(
                "{key} changed at the destination while it was being replaced; trying again"
            ))),
            r => r,
        }
    }

    /// Runs `work` on the multipart upload `id` of `key` just opened: written down in the
    /// journal first, aborted if `work` fails (or left for the forwarder to abort once S3
    /// answers), crossed out when closed either way.
    fn in_multipart<T>(
        &self,
        key: &str,
        id: &str,
        work: impl FnOnce() -> Result<T, SinkError>,
    ) -> Result<T, SinkError> {
        let id = id.to_string();
        let open = Open {
            key: key.to_string(),
            upload_id: id.clone(),
        };
        if let Some(j) = &self.journal
            && let Err(e) = j.opened(&open)
        {
            // Not written down: not started either.
            let _ = self.abort(key, &id);
            return Err(SinkError::transient(format!(
                "writing down the multipart upload: {e}"
            )));
        }
        let result = work();
        let closed = match &result {
            Ok(_) => true,
            // If the abort fails too (S3 is down), the journal keeps the upload and the
            // forwarder aborts it once S3 answers.
            Err(_) => match self.abort(key, &id) {
                Ok(()) => true,
                Err(a) => {
                    log::warn!(
                        "aborting multipart upload of {key}: {a} (tried again when the destination answers)"
                    );
                    false
                }
            },
        };
        if let Some(j) = &self.journal {
            j.done(&id, closed);
        }
        result
    }

    fn exists(&self, key: &str) -> bool {
        self.client
            .send("HEAD", key, &[], HeaderMap::new(), &[])
            .is_ok()
    }
}

/// An answer's `ETag`, without its quotes.
fn etag_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(::http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_string())
}

impl Sink for S3Sink {
    fn put(
        &self,
        key: &str,
        body: &Path,
        size: u64,
        sum: &Checksum,
        meta: &Meta,
    ) -> Result<Option<String>, SinkError> {
        let mut only = HeaderMap::new();
        if meta.only_new {
            only.insert(::http::header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        }
        match self.put_if(key, body, size, sum, meta, &only) {
            Err(e) if e.exists && meta.only_new => self.put_over_own(key, body, size, sum, meta),
            r => r,
        }
    }

    fn delete(&self, key: &str) -> Result<(), SinkError> {
        match self.client.send("DELETE", key, &[], HeaderMap::new(), &[]) {
            Ok(_) => Ok(()),
            Err(S3Error::Status(404, _)) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), SinkError> {
        if !self.copy(from, to)? {
            // Sent again after a crash between copy+delete and the record: already moved.
            if self.exists(to) {
                return Ok(());
            }
            return Err(SinkError::permanent(format!(
                "the endpoint refused the request (HTTP 404 NoSuchKey): {from} is not at the destination"
            )));
        }
        self.delete(from)
    }

    fn mkdir(&self, key: &str) -> Result<(), SinkError> {
        self.put_bytes(&format!("{key}/"), &[], HeaderMap::new())
    }

    fn rmdir(&self, key: &str) -> Result<(), SinkError> {
        self.delete(&format!("{key}/"))
    }

    fn sweep(&self) -> Result<usize, SinkError> {
        let Some(journal) = &self.journal else {
            return Ok(0);
        };
        let mut aborted = 0;
        for open in journal.leftovers() {
            match self.abort(&open.key, &open.upload_id) {
                Ok(()) => aborted += 1,
                // Completed or aborted already (or expired by a lifecycle rule).
                Err(S3Error::Status(404, _)) => {}
                Err(e) => return Err(classify(e)),
            }
            journal.closed(&open.upload_id);
        }
        Ok(aborted)
    }

    fn rest(&self, quiet: std::time::Duration) {
        self.client.rest(quiet);
    }

    fn clock_skew_secs(&self) -> Option<i64> {
        Some(self.client.skew_secs()).filter(|s| *s != 0)
    }

    fn probe(&self) -> Result<String, SinkError> {
        self.client
            .send(
                "GET",
                "",
                &[("list-type", "2"), ("max-keys", "1")],
                HeaderMap::new(),
                &[],
            )
            .map_err(classify)?;
        Ok(format!(
            "{} answers and the credentials may list it",
            self.where_
        ))
    }
}
