//! The parts of one multipart upload, several in flight, read from the spool file once.
//!
//! The file is read a part at a time on the delivery's thread: each part's bytes go into
//! the whole body's checksum, get their own (the server checks each part against it) and
//! are handed to a thread that sends them. Before the completion, the whole body's
//! checksum must equal the one taken on receipt; otherwise the upload is aborted and
//! nothing appears at the destination.
//!
//! Memory: a part in flight holds one [`PART_SIZE`] buffer, taken from the deliveries'
//! memory budget ([`super::budget`], 20 MiB in the whole process, shared with small
//! puts). A delivery always gets one buffer (it waits for it) and takes more while the
//! budget has room, up to [`PARTS_IN_FLIGHT`].

use std::io::Read;
use std::sync::mpsc;

use super::budget::{MEMORY, Ticket};
use super::headers::{base64, integrity_headers};
use super::{PART_SIZE, S3Sink};
use crate::checksum::Checksum;
use crate::forward::s3::classify;
use crate::forward::sink::{SinkError, corrupted};

/// Parts of one upload sent at once, at most.
pub const PARTS_IN_FLIGHT: usize = 4;

/// A part the server has: its number, ETag and checksum (none for a copied part).
pub(super) struct Sent {
    pub(super) number: usize,
    pub(super) etag: String,
    pub(super) sum: Option<Checksum>,
}

type Finished = (Result<Sent, SinkError>, Ticket);

/// The parts of one upload in flight, and what came back: the parts the server has, and
/// the first failure (after which no part is started).
struct InFlight {
    count: usize,
    sent: Vec<Sent>,
    failed: Option<SinkError>,
    finished: mpsc::Receiver<Finished>,
}

impl InFlight {
    /// Takes in one part that ended; its buffer goes back to the budget.
    fn record(&mut self, (result, ticket): Finished) {
        drop(ticket);
        self.count -= 1;
        match result {
            Ok(part) => self.sent.push(part),
            Err(e) => {
                self.failed.get_or_insert(e);
            }
        }
    }

    /// A buffer for the next part: waits for one if none of ours is out, else takes a
    /// free one or waits for one of ours to come back. `None` once a part failed.
    fn ticket(&mut self) -> Option<Ticket> {
        loop {
            if self.failed.is_some() {
                return None;
            }
            if self.count == 0 {
                return Some(MEMORY.take(PART_SIZE as u64));
            }
            if self.count < PARTS_IN_FLIGHT
                && let Some(t) = MEMORY.try_take(PART_SIZE as u64)
            {
                return Some(t);
            }
            let f = self.finished.recv().ok()?;
            self.record(f);
        }
    }

    /// Waits for every part still out.
    fn drain(&mut self) {
        while self.count > 0 {
            let Ok(f) = self.finished.recv() else { break };
            self.record(f);
        }
    }
}

impl S3Sink {
    /// Sends the parts of upload `id` from `file`, then completes it.
    pub(super) fn send_parts(
        &self,
        key: &str,
        id: &str,
        file: &mut std::fs::File,
        sum: &Checksum,
        only: &http::HeaderMap,
    ) -> Result<Option<String>, SinkError> {
        let mut whole = sum.hasher();
        let (done, finished) = mpsc::channel::<Finished>();
        let mut parts = InFlight {
            count: 0,
            sent: Vec::new(),
            failed: None,
            finished,
        };
        std::thread::scope(|scope| {
            for number in 1.. {
                let Some(ticket) = parts.ticket() else { break };
                let chunk = match read_part(file) {
                    Ok(c) => c,
                    Err(e) => {
                        parts.failed.get_or_insert(e);
                        break;
                    }
                };
                if chunk.is_empty() {
                    break;
                }
                whole.update(&chunk);
                let last = chunk.len() < PART_SIZE;
                let done = done.clone();
                parts.count += 1;
                scope.spawn(move || {
                    let r = self.send_part(key, id, number, &chunk, sum);
                    let _ = done.send((r, ticket));
                });
                if last {
                    break;
                }
            }
            parts.drain();
        });
        if let Some(e) = parts.failed {
            return Err(e);
        }
        let got = whole.finish();
        if got != *sum {
            return Err(corrupted(&got, sum));
        }
        parts.sent.sort_by_key(|p| p.number);
        self.complete(key, id, &parts.sent, only)
    }

    fn send_part(
        &self,
        key: &str,
        id: &str,
        number: usize,
        chunk: &[u8],
        whole: &Checksum,
    ) -> Result<Sent, SinkError> {
        let sum = whole.of_same_kind(chunk);
        let mut headers = http::HeaderMap::new();
        integrity_headers(&mut headers, &sum, chunk, &self.parts_verified);
        let n = number.to_string();
        let answer = self
            .client
            .send(
                "PUT",
                key,
                &[("partNumber", &n), ("uploadId", id)],
                headers,
                chunk,
            )
            .map_err(classify)?;
        self.parts_verified.saw(&sum, &answer.headers, &self.where_);
        let etag = answer
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SinkError::transient(format!("part {n}: no ETag in the answer")))?;
        Ok(Sent {
            number,
            etag: etag.to_string(),
            sum: Some(sum),
        })
    }

    /// Completes upload `id` of `key` from `parts`, on the conditions in `only` (the
    /// object is written here, so a conditional write's headers go here).
    pub(super) fn complete(
        &self,
        key: &str,
        id: &str,
        parts: &[Sent],
        only: &http::HeaderMap,
    ) -> Result<Option<String>, SinkError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for p in parts {
            let etag = p.etag.replace('&', "&amp;").replace('<', "&lt;");
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag>",
                p.number
            ));
            if let Some(sum @ Checksum::Crc32c(_)) = &p.sum {
                xml.push_str(&format!(
                    "<ChecksumCRC32C>{}</ChecksumCRC32C>",
                    base64(&sum.bytes())
                ));
            }
            xml.push_str("</Part>");
        }
        xml.push_str("</CompleteMultipartUpload>");
        let answer = self
            .client
            .send(
                "POST",
                key,
                &[("uploadId", id)],
                only.clone(),
                xml.as_bytes(),
            )
            .map_err(classify)?;
        // The whole object's ETag (`"...-N"`), for the delivery's event.
        Ok(super::xml_text(&answer.body, "ETag")
            .map(|e| e.replace("&quot;", "").trim_matches('"').to_string()))
    }
}

/// The next part of `file`: [`PART_SIZE`] bytes, fewer at the end, none after it.
fn read_part(file: &mut std::fs::File) -> Result<Vec<u8>, SinkError> {
    let mut chunk = vec![0u8; PART_SIZE];
    let mut filled = 0;
    while filled < PART_SIZE {
        match file.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(super::unreadable(e)),
        }
    }
    chunk.truncate(filled);
    Ok(chunk)
}
