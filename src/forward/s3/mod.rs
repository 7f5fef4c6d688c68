//! S3 destinations, blocking (called off the executor).
//!
//! * The requests a backlog is made of (a PUT up to [`MULTIPART_THRESHOLD`], a DELETE, a
//!   directory marker) go over kept-alive HTTP connections ([`Conn`]: ureq's pool,
//!   signed by rust-s3 as presigned URLs), so a drain of a million small files opens a
//!   handful of TCP and TLS connections, not a million. rust-s3's own client (attohttpc)
//!   closes its connection after every request: it keeps the rare ones (multipart, copy
//!   for renames, the probe).
//! * Larger bodies go by multipart from the spool file, one [`PART_SIZE`] part in flight,
//!   so memory stays flat for any size.
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

use super::journal::{Journal, Open};
use super::sink::{Meta, Sink, SinkError};
use crate::store::S3Settings;
use std::sync::Arc;

mod classify;

pub use classify::classify;
use classify::{permanent, transport_text};

/// Bodies above this size go by multipart.
pub const MULTIPART_THRESHOLD: u64 = 8 << 20;
/// Part size (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 5 << 20;
const CONTENT_TYPE: &str = "application/octet-stream";

pub struct S3Sink {
    bucket: Box<Bucket>,
    conn: Conn,
    where_: String,
    /// Where open multipart uploads are written down, so none is left open for good.
    journal: Option<Arc<Journal>>,
}

/// Kept-alive HTTP connections to one endpoint. Requests are presigned (the signature
/// in the query string, the payload `UNSIGNED-PAYLOAD`; Content-MD5 is a signed header,
/// so the body is still verified by the server).
struct Conn {
    agent: ureq::Agent,
}

/// How long a presigned request stays valid: only until it is sent, a moment later.
const PRESIGN_SECS: u32 = 300;

impl Conn {
    fn new() -> Conn {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(std::time::Duration::from_secs(10)))
            .timeout_global(Some(std::time::Duration::from_secs(300)))
            .max_idle_connections_per_host(crate::store::pipes::MAX_PARALLEL as usize)
            .build()
            .into();
        Conn { agent }
    }

    /// Sends a presigned request with `headers` (the ones that were signed) and `body`;
    /// reads the whole answer so the connection can be used again.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), S3Error> {
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_bytes());
        }
        let req = req
            .body(body.to_vec())
            .map_err(|e| S3Error::HttpFailWithBody(0, format!("building the request: {e}")))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| S3Error::Io(std::io::Error::other(transport_text(&e))))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(S3Error::HttpFailWithBody(status, text))
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

/// Standard base64 with padding (for Content-MD5).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn corrupted(got: &str, want: &str) -> SinkError {
    SinkError::permanent(format!(
        "the spool body no longer matches its checksum (MD5 {got}, expected {want}): disk corruption"
    ))
}

impl S3Sink {
    pub fn new(
        bucket: &str,
        s: &S3Settings,
        journal: Option<Arc<Journal>>,
    ) -> Result<S3Sink, SinkError> {
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
        let creds = Credentials::new(
            Some(&s.access_key),
            Some(s.secret_key.expose()),
            None,
            None,
            None,
        )
        .map_err(permanent)?;
        let mut b = Bucket::new(bucket, region, creds).map_err(classify)?;
        if s.path_style {
            b = b.with_path_style();
        }
        let where_ = format!(
            "bucket {bucket} at {}",
            s.endpoint.as_deref().unwrap_or("AWS")
        );
        Ok(S3Sink {
            bucket: b,
            conn: Conn::new(),
            where_,
            journal,
        })
    }

    fn put_small(&self, key: &str, body: &Path, md5: &str, meta: &Meta) -> Result<(), SinkError> {
        let content = std::fs::read(body)
            .map_err(|e| SinkError::transient(format!("reading the spool body: {e}")))?;
        let digest = md5::Md5::digest(&content);
        let got = crate::support::hex(&digest);
        if got != md5 {
            return Err(corrupted(&got, md5));
        }
        let mut headers = meta_headers(meta);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::try_from(base64(&digest)) {
            headers.insert(HeaderName::from_static("content-md5"), v);
        }
        self.put_bytes(key, &content, headers)
    }

    /// One PUT over a kept-alive connection.
    fn put_bytes(&self, key: &str, content: &[u8], headers: HeaderMap) -> Result<(), SinkError> {
        let url = self
            .bucket
            .presign_put(format!("/{key}"), PRESIGN_SECS, Some(headers.clone()), None)
            .map_err(classify)?;
        self.conn
            .send("PUT", &url, &headers, content)
            .map_err(classify)
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
        let open = Open {
            key: key.to_string(),
            upload_id: id.clone(),
        };
        if let Some(j) = &self.journal
            && let Err(e) = j.opened(&open)
        {
            // Not written down: not started either.
            let _ = self.bucket.abort_upload(&path, &id);
            return Err(SinkError::transient(format!(
                "writing down the multipart upload: {e}"
            )));
        }
        let result = self.send_parts(&path, &id, &mut file, md5);
        let closed = match &result {
            Ok(()) => true,
            // If the abort fails too (S3 is down), the journal keeps the upload and the
            // forwarder aborts it once S3 answers.
            Err(_) => match self.bucket.abort_upload(&path, &id) {
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

    /// The parts of an initiated multipart upload, then its completion.
    fn send_parts(
        &self,
        path: &str,
        id: &str,
        file: &mut std::fs::File,
        md5: &str,
    ) -> Result<(), SinkError> {
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
                        return Err(SinkError::transient(format!("reading the spool body: {e}")));
                    }
                }
            }
            if filled == 0 {
                break;
            }
            whole.update(&chunk[..filled]);
            let part = self
                .bucket
                .put_multipart_chunk(&chunk[..filled], path, number, id, CONTENT_TYPE)
                .map_err(classify)?;
            parts.push(part);
            if filled < PART_SIZE {
                break;
            }
        }
        let got = crate::support::hex(&whole.finalize());
        if got != md5 {
            return Err(corrupted(&got, md5));
        }
        self.bucket
            .complete_multipart_upload(path, id, parts)
            .map_err(classify)?;
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
        let url = self
            .bucket
            .presign_delete(format!("/{key}"), PRESIGN_SECS)
            .map_err(classify)?;
        match self.conn.send("DELETE", &url, &HeaderMap::new(), &[]) {
            Ok(()) => Ok(()),
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
            match self
                .bucket
                .abort_upload(&format!("/{}", open.key), &open.upload_id)
            {
                Ok(()) => aborted += 1,
                // Completed or aborted already (or expired by a lifecycle rule).
                Err(S3Error::HttpFailWithBody(404, _)) => {}
                Err(e) => return Err(classify(e)),
            }
            journal.closed(&open.upload_id);
        }
        Ok(aborted)
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
    fn base64_as_content_md5_wants_it() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // MD5 of the empty string, as S3 documents it.
        assert_eq!(base64(&md5::Md5::digest(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
