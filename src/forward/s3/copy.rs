//! Server-side copies, for renames: one `CopyObject` up to S3's limit on it (5 GiB), and
//! above it a multipart copy (`UploadPartCopy` of ranges of the source), as a single copy
//! of a larger object is refused. The copy keeps the source's metadata (sender, Pipe,
//! original mtime); the multipart one is written down in the journal like any other.

use super::http::S3Error;
use super::sigv4::uri_encode;
use ::http::{HeaderMap, HeaderName, HeaderValue};

use super::multipart::Sent;
use super::{S3Sink, classify, xml_text};
use crate::forward::sink::SinkError;

/// Largest object a single `CopyObject` copies (S3's limit).
pub const COPY_LIMIT: u64 = 5 << 30;
/// The size of each part of a multipart copy (S3 allows 5 MiB to 5 GiB).
pub const COPY_PART: u64 = 512 << 20;

impl S3Sink {
    /// Copies `from` to `to` at the destination. `Ok(false)`: `from` is not there.
    pub(super) fn copy(&self, from: &str, to: &str) -> Result<bool, SinkError> {
        let head = match self.client.send("HEAD", from, &[], HeaderMap::new(), &[]) {
            Ok(a) => a.headers,
            Err(S3Error::Status(404, _)) => return Ok(false),
            Err(e) => return Err(classify(e)),
        };
        let size = head
            .get(::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if size <= self.copy_limit {
            let mut headers = HeaderMap::new();
            headers.insert(
                HeaderName::from_static("x-amz-copy-source"),
                self.source(from)?,
            );
            return match self.client.send("PUT", to, &[], headers, &[]) {
                Ok(_) => Ok(true),
                Err(S3Error::Status(404, _)) => Ok(false),
                Err(e) => Err(classify(e)),
            };
        }
        // The source's metadata goes to the new upload (a multipart copy does not carry it).
        let mut meta = HeaderMap::new();
        for (k, v) in &head {
            if k.as_str().starts_with("x-amz-meta-") || k == ::http::header::CONTENT_TYPE {
                meta.insert(k.clone(), v.clone());
            }
        }
        let id = self.initiate_with(to, meta).map_err(classify)?;
        self.in_multipart(to, &id, || {
            let mut parts = Vec::new();
            for (i, start) in (0..size).step_by(self.copy_part as usize).enumerate() {
                let end = (start + self.copy_part).min(size) - 1;
                parts.push(self.copy_part_of(from, to, &id, i + 1, start, end)?);
            }
            self.complete(to, &id, &parts, &http::HeaderMap::new())
                .map(|_| ())
        })?;
        Ok(true)
    }

    fn source(&self, key: &str) -> Result<HeaderValue, SinkError> {
        let source = format!("/{}/{}", self.bucket, uri_encode(key, false));
        HeaderValue::try_from(source)
            .map_err(|e| SinkError::permanent(format!("copy source {key}: {e}")))
    }

    /// Copies bytes `start..=end` of `from` as part `number` of upload `id` of `to`.
    fn copy_part_of(
        &self,
        from: &str,
        to: &str,
        id: &str,
        number: usize,
        start: u64,
        end: u64,
    ) -> Result<Sent, SinkError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-amz-copy-source"),
            self.source(from)?,
        );
        let range = format!("bytes={start}-{end}");
        if let Ok(v) = HeaderValue::try_from(range) {
            headers.insert(HeaderName::from_static("x-amz-copy-source-range"), v);
        }
        let n = number.to_string();
        let answer = self
            .client
            .send(
                "PUT",
                to,
                &[("partNumber", &n), ("uploadId", id)],
                headers,
                &[],
            )
            .map_err(classify)?;
        let etag = xml_text(&answer.body, "ETag").ok_or_else(|| {
            SinkError::transient(format!("copied part {n}: no ETag in the answer"))
        })?;
        Ok(Sent {
            number,
            etag,
            sum: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{meta, s3};
    use super::*;
    use crate::forward::sink::Sink;

    /// Above the limit a rename copies in parts (S3 refuses one `CopyObject` of more than
    /// 5 GiB; here the limit is 6 MiB and the parts 5 MiB): the result is the source's
    /// bytes and metadata, under a multipart ETag (`-2`), and the source is gone.
    #[test]
    fn a_rename_above_the_copy_limit_copies_in_parts() {
        let server = s3();
        let mut sink = server.sink();
        let body: Vec<u8> = (0..7 << 20).map(|i: u32| (i % 251) as u8).collect();
        let file = server.root.path().join("body");
        std::fs::write(&file, &body).unwrap();
        let sum = crate::checksum::Hasher::crc32c_of(&body);
        sink.put("cell/a.bin", &file, body.len() as u64, &sum, &meta(false))
            .unwrap();
        (sink.copy_limit, sink.copy_part) = (6 << 20, 5 << 20);
        sink.rename("cell/a.bin", "cell/b.bin").unwrap();
        let stored = server.root.path().join("plant/cell");
        assert_eq!(std::fs::read(stored.join("b.bin")).unwrap(), body);
        assert!(!stored.join("a.bin").exists());
        let head = sink
            .client
            .send("HEAD", "cell/b.bin", &[], HeaderMap::new(), &[])
            .unwrap()
            .headers;
        let etag = head.get("etag").unwrap().to_str().unwrap();
        assert!(etag.trim_matches('"').ends_with("-2"), "{etag}");
        assert_eq!(head.get("x-amz-meta-sender").unwrap(), "cam");
        // Below the limit, one copy (a plain ETag).
        (sink.copy_limit, sink.copy_part) = (COPY_LIMIT, COPY_PART);
        sink.rename("cell/b.bin", "cell/c.bin").unwrap();
        assert_eq!(std::fs::read(stored.join("c.bin")).unwrap(), body);
    }
}
