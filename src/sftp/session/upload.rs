//! Uploads over SFTP: `OPEN` for writing makes a spool body, `WRITE`s land at their
//! offsets, and `CLOSE` publishes the file: its `OK` is sent only after the body is
//! fsynced and its catalog entry and outbox op are committed, exactly when FTP would
//! send `226`. A handle never closed (the connection dropped) leaves a partial, never
//! delivered; so does a file with bytes the client never wrote.

use std::time::Instant;

use super::requests::{DIR_MODE, FILE_MODE, bad_handle, size_change};
use super::{Handle, Session, handle_number};
use crate::clock::now_secs;
use crate::ops::{Change, Stored};
use crate::sftp::coverage::Coverage;
use crate::sftp::errors::{self, Refusal};
use crate::sftp::proto::request::open_flags;
use crate::sftp::proto::{Attrs, FileAttrs, Status, response};
use crate::spool::{self, Body};
use crate::store::namespace::Overwrite;
use crate::vfs::VPath;

/// Most `WRITE`s, and bytes, written in one trip to the blocking pool.
const MAX_BATCH: usize = 64;
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A file open for writing.
pub(super) struct Upload {
    path: VPath,
    policy: Overwrite,
    /// Out only while a batch of writes is on the blocking pool.
    body: Option<Body>,
    coverage: Coverage,
    /// `SSH_FXF_APPEND`: every write goes to the end, whatever its offset.
    append: bool,
    started: Instant,
    received: u64,
    /// A modification time the client set (`FSETSTAT`, `sftp put -p`).
    mtime: Option<u64>,
    /// A write failed (the disk or the quota is full): every later write and the
    /// `CLOSE` get this, and the body is dropped.
    failed: Option<Refusal>,
}

/// `WRITE`s to one handle, waiting to be written together: each write's request id and
/// file offset, its bytes one after another in `data`.
#[derive(Default)]
pub(super) struct Batch {
    handle: u32,
    writes: Vec<(u32, u64, std::ops::Range<usize>)>,
    data: Vec<u8>,
}

impl Session {
    pub(super) fn batch_is_full(&self) -> bool {
        self.batch.writes.len() >= MAX_BATCH || self.batch.data.len() >= MAX_BATCH_BYTES
    }

    pub(super) async fn open(
        &mut self,
        id: u32,
        path: &str,
        flags: u32,
        attrs: Attrs,
    ) -> Result<(), Refusal> {
        use open_flags::*;
        if flags & READ != 0 || flags & WRITE == 0 {
            return Err(errors::no_reading());
        }
        let p = self.resolve(path)?;
        if p.is_root() {
            return Err(errors::store(&crate::store::Error::IsADirectory(
                "/".into(),
            )));
        }
        let truncate = flags & TRUNC != 0;
        let exists = match self.ops().upload_size(&p).await {
            Ok(_) => true,
            Err(crate::store::Error::NotFound(_)) => false,
            Err(e) => return Err(errors::store(&e)),
        };
        if !exists && flags & CREAT == 0 {
            return Err(errors::store(&crate::store::Error::NotFound(p.to_string())));
        }
        if exists && flags & EXCL != 0 {
            return Err(errors::store(&crate::store::Error::Exists(p.to_string())));
        }
        let policy = self.login.pipe.overwrite;
        self.ops()
            .check_upload(&p, policy, !truncate)
            .await
            .map_err(|e| errors::store(&e))?;
        let (body, coverage) = self.body_for(&p, truncate || !exists).await?;
        let upload = Upload {
            path: p,
            policy,
            body: Some(body),
            coverage,
            append: flags & APPEND != 0,
            started: Instant::now(),
            received: 0,
            mtime: attrs.times.map(|(_, m)| m.into()),
            failed: None,
        };
        let h = self.new_handle(Handle::Write(Box::new(upload)))?;
        self.out.extend_from_slice(&response::handle(id, &h));
        Ok(())
    }

    /// A new body, or (without `TRUNC`) one that continues what is there: a partial, or
    /// the queued file's body. A file already delivered cannot be continued: the client
    /// gets a new body, and a `CLOSE` before it wrote every byte keeps it as a partial.
    async fn body_for(&self, path: &VPath, fresh: bool) -> Result<(Body, Coverage), Refusal> {
        let ops = self.ops();
        let body = if fresh {
            ops.start_body(path, None).await
        } else {
            match ops.start_body(path, Some(None)).await {
                Err(spool::Error::AlreadyDelivered(_)) => ops.start_body(path, None).await,
                other => other,
            }
        };
        let body = body.map_err(|e| errors::spool(&e))?;
        let have = body.size();
        Ok((body, Coverage::prefilled(have)))
    }

    /// Queues a `WRITE`; batches go to the disk when another request, another handle or
    /// the end of the received bytes comes.
    pub(super) async fn queue_write(&mut self, id: u32, handle: &[u8], offset: u64, data: &[u8]) {
        let n = handle_number(handle);
        let writable = n.is_some_and(|n| matches!(self.handles.get(&n), Some(Handle::Write(_))));
        if !writable || n != Some(self.batch.handle) {
            self.write_batch().await;
        }
        let Some(n) = n.filter(|_| writable) else {
            let refusal = match n.and_then(|n| self.handles.get(&n)) {
                Some(Handle::Dir { .. }) => errors::no_reading(),
                _ => bad_handle(),
            };
            self.status(id, refusal);
            return;
        };
        let b = &mut self.batch;
        b.handle = n;
        let at = b.data.len();
        b.data.extend_from_slice(data);
        b.writes.push((id, offset, at..b.data.len()));
    }

    /// Writes the queued batch off the executor and queues its replies.
    pub(super) async fn write_batch(&mut self) {
        if self.batch.writes.is_empty() {
            return;
        }
        let Batch {
            handle,
            writes,
            data,
        } = std::mem::take(&mut self.batch);
        let Some(Handle::Write(up)) = self.handles.get_mut(&handle) else {
            return;
        };
        let (Some(body), None) = (up.body.take(), up.failed.clone()) else {
            let refusal = up.failed.clone().unwrap_or_else(bad_handle);
            for (id, ..) in writes {
                self.status(id, refusal.clone());
            }
            return;
        };
        let append = up.append;
        let (body, results) = smol::unblock(move || write_all(body, &writes, &data, append)).await;
        let Some(Handle::Write(up)) = self.handles.get_mut(&handle) else {
            return;
        };
        up.body = Some(body);
        let mut replies = Vec::with_capacity(results.len());
        for (id, result) in results {
            let result = result.and_then(|(start, end)| {
                up.received += end - start;
                up.coverage
                    .add(start, end)
                    .map_err(|e| (Status::Failure, e.to_string()))
            });
            if let Err(refusal) = &result {
                up.failed.get_or_insert_with(|| refusal.clone());
            }
            replies.push((id, result));
        }
        for (id, result) in replies {
            match result {
                Ok(()) => self.ok(id),
                Err(refusal) => self.status(id, refusal),
            }
        }
    }

    pub(super) async fn close(&mut self, id: u32, handle: &[u8]) -> Result<(), Refusal> {
        let Some(h) = handle_number(handle).and_then(|n| self.handles.remove(&n)) else {
            return Err(bad_handle());
        };
        let Handle::Write(up) = h else {
            self.ok(id);
            return Ok(());
        };
        let mut up = *up;
        let Some(body) = up.body.take() else {
            return Err(bad_handle());
        };
        let secs = up.started.elapsed().as_secs_f64();
        if let Some(refusal) = up.failed.take() {
            self.ops()
                .log_upload("sftp", &up.path, up.received, secs, &refusal.1);
            body.discard().await;
            return Err(refusal);
        }
        if let Some((from, to)) = up.coverage.first_gap(body.size()) {
            let gap = format!("bytes {from} to {to} were never written");
            let kept = self.ops().keep_partial(body, &up.path, &gap).await;
            let why = format!(
                "bytes {from} to {to} of {} were never written; the file was not stored ({kept} bytes kept for resuming)",
                up.path
            );
            self.ops()
                .log_upload("sftp", &up.path, up.received, secs, &why);
            return Err((Status::Failure, why));
        }
        let stored = match self
            .ops()
            .publish(body, &up.path, up.policy, up.received)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                let result = format!("failed: {e}");
                self.ops()
                    .log_upload("sftp", &up.path, up.received, secs, &result);
                return Err(errors::spool(&e));
            }
        };
        self.ops()
            .log_upload("sftp", &stored.path, up.received, secs, "ok");
        self.stored(id, &up, stored).await;
        Ok(())
    }

    /// An upload stored: counted, its `put -p` mtime set, and the client told where it
    /// landed and its checksum.
    async fn stored(&mut self, id: u32, up: &Upload, stored: Stored) {
        self.uploads += 1;
        self.bytes += up.received;
        if let Some(mtime) = up.mtime {
            let change = Change::SetMtime {
                path: stored.path.clone(),
                mtime,
            };
            if let Err(e) = self.ops().change(&change).await {
                log::warn!("sftp: could not set the time of {}: {e}", stored.path);
            }
        }
        let text = format!(
            "Stored {} ({} bytes, {} {}), safe on disk.",
            stored.path,
            stored.size,
            stored.sum.algorithm(),
            stored.sum.hex()
        );
        self.status(id, (Status::Ok, text));
    }

    pub(super) fn fstat(&mut self, id: u32, handle: &[u8]) -> Result<(), Refusal> {
        let attrs = match handle_number(handle).and_then(|n| self.handles.get(&n)) {
            Some(Handle::Write(up)) => FileAttrs {
                size: up.body.as_ref().map_or(0, |b| b.size()),
                mode: FILE_MODE,
                mtime: up.mtime.unwrap_or_else(now_secs),
            },
            Some(Handle::Dir { .. }) => FileAttrs {
                size: 0,
                mode: DIR_MODE,
                mtime: now_secs(),
            },
            None => return Err(bad_handle()),
        };
        self.out.extend_from_slice(&response::attrs(id, &attrs));
        Ok(())
    }

    /// `FSETSTAT` on an open upload: a modification time is kept for the published file;
    /// a size other than the current one is refused.
    pub(super) fn fsetstat(&mut self, id: u32, handle: &[u8], attrs: Attrs) -> Result<(), Refusal> {
        let Some(h) = handle_number(handle).and_then(|n| self.handles.get_mut(&n)) else {
            return Err(bad_handle());
        };
        if let Handle::Write(up) = h {
            let size = up.body.as_ref().map_or(0, |b| b.size());
            if attrs.size.is_some_and(|s| s != size) {
                return Err(size_change());
            }
            if let Some((_, m)) = attrs.times {
                up.mtime = Some(m.into());
            }
        }
        self.ok(id);
        Ok(())
    }

    /// The session ended with files still open: each becomes a partial (resumable, never
    /// delivered).
    pub(super) async fn abandon_open_uploads(&mut self) {
        self.write_batch().await;
        let handles: Vec<Handle> = self.handles.drain().map(|(_, h)| h).collect();
        for h in handles {
            let Handle::Write(mut up) = h else { continue };
            let Some(body) = up.body.take() else { continue };
            let secs = up.started.elapsed().as_secs_f64();
            let kept = self
                .ops()
                .keep_partial(body, &up.path, "the session ended before CLOSE")
                .await;
            let why = format!("broken (the session ended before CLOSE; {kept} bytes kept)");
            self.ops()
                .log_upload("sftp", &up.path, up.received, secs, &why);
        }
    }
}

/// Each write's request id, and the range it wrote or its refusal.
type Written = Vec<(u32, Result<(u64, u64), Refusal>)>;

/// Writes a batch at its offsets (blocking). Writes that follow each other in the file
/// (pipelined in order, nearly always) go to the disk as one. After a failure the rest
/// are refused the same way.
fn write_all(
    mut body: Body,
    writes: &[(u32, u64, std::ops::Range<usize>)],
    data: &[u8],
    append: bool,
) -> (Body, Written) {
    let mut results = Vec::with_capacity(writes.len());
    let mut failed: Option<Refusal> = None;
    let mut i = 0;
    while i < writes.len() {
        let at = if append { body.size() } else { writes[i].1 };
        // The run of writes that continue this one in the file and in `data`.
        let mut end = i + 1;
        let mut file_end = at + writes[i].2.len() as u64;
        while end < writes.len()
            && (append || writes[end].1 == file_end)
            && writes[end].2.start == writes[end - 1].2.end
        {
            file_end += writes[end].2.len() as u64;
            end += 1;
        }
        let bytes = &data[writes[i].2.start..writes[end - 1].2.end];
        if failed.is_none()
            && let Err(e) = body.write_at(at, bytes)
        {
            failed = Some(errors::spool(&e));
        }
        let mut pos = at;
        for (id, _, range) in &writes[i..end] {
            let len = range.len() as u64;
            results.push(match &failed {
                Some(f) => (*id, Err(f.clone())),
                None => (*id, Ok((pos, pos + len))),
            });
            pos += len;
        }
        i = end;
    }
    (body, results)
}
