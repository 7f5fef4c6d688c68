//! One upload's body in `spool/tmp`: starting or resuming it, writing it (counted against
//! the quota, checksummed on the way), and its three ends: committed, kept as a partial, or
//! discarded. Receiving it from the network is [`super::receive`].

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use super::{Error, Spool, new_id};

mod offset;
use crate::checksum::{Checksum, Hasher};
use crate::clock::now_secs;
use crate::store::View;
use crate::store::catalog::{Entry, Kind};
use crate::store::partials::Partial;
use crate::vfs::VPath;

/// The free space a new upload is promised before its first byte is written.
pub(super) const FIRST_GRANT: u64 = 256 << 10;
/// The buffer for reading a body back (to checksum what a resumed upload continues).
const READ_BUF: usize = 128 * 1024;

/// An upload body being written in `spool/tmp`.
pub struct Body {
    pub(super) spool: Arc<Spool>,
    pub id: String,
    pub(super) file: File,
    pub(super) sum: Hasher,
    /// Bytes in the file: its end, whatever order they were written in.
    pub(super) size: u64,
    /// A write landed somewhere other than the end ([`Body::write_at`]): `sum` no longer
    /// describes the file and is computed again from it before the commit.
    pub(super) sum_stale: bool,
    /// Write-behind for bodies written with [`Body::write_at`].
    pub(super) behind: offset::WriteBehind,
    /// Committed or kept as a partial: nothing to clean up on drop.
    settled: bool,
    /// The partial this body continues (Pipe, path): dropping the body drops its record.
    continues: Option<(String, VPath)>,
    /// Free space promised for its first bytes, taken while it was opened (off the
    /// executor); [`super::receive`] asks again if there was none.
    pub(super) first_grant: Option<super::reserve::Grant>,
    /// When its `tmp/` name was made (see [`super::durable_names`]); `None` for a body
    /// that continues a partial.
    pub(super) named: Option<super::durable_names::Ticket>,
}

/// How a transfer ended.
#[derive(Debug)]
pub enum Ended {
    /// The sender closed the data connection cleanly.
    Complete,
    /// `ABOR` on the control connection.
    Aborted,
    /// The data connection broke (reset, or TLS closed without close_notify).
    Network(io::Error),
    TimedOut,
    Full(String),
    Disk(io::Error),
}

impl Body {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The checksum of everything received.
    pub fn checksum(&self) -> Checksum {
        self.sum.finish()
    }

    /// Appends `chunk`; the spool counts its bytes once they are written (a chunk that
    /// fails is cut off again, so the file holds exactly what was counted).
    pub(super) fn write_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Err(e) = self.spool.disk.write(&mut self.file, chunk) {
            let _ = self.file.set_len(self.size);
            let _ = self.file.seek(SeekFrom::Start(self.size));
            return Err(e);
        }
        self.sum.update(chunk);
        self.size += chunk.len() as u64;
        self.spool.add_used(chunk.len() as u64);
        Ok(())
    }

    /// fsyncs the body (blocking).
    pub(super) fn sync(&self) -> io::Result<()> {
        self.spool.disk.sync(&self.file)
    }

    pub(super) fn settle(&mut self) {
        self.settled = true;
        self.spool.release(&self.id);
    }

    /// Drops an unwanted body (a quota refusal, an empty broken upload), with the record
    /// of the partial it continued, if any.
    pub async fn discard(mut self) {
        self.settle();
        let (spool, id, continues) = (self.spool.clone(), self.id.clone(), self.continues.take());
        smol::unblock(move || spool.forget_body(&id, continues)).await;
    }

    /// Keeps a broken upload as a resumable partial: fsync, then record it (within the
    /// bounds for partials, see [`super::partials`]) with its `upload.broken` event,
    /// which says `why`. Returns the bytes kept: 0 when there were none, or when this
    /// one alone is over the bound (it is dropped).
    pub async fn keep_partial(
        self,
        pipe: &str,
        path: &VPath,
        sender: &str,
        why: &str,
    ) -> Result<u64, Error> {
        if self.size == 0 {
            self.discard().await;
            return Ok(0);
        }
        let (pipe, path, sender) = (pipe.to_string(), path.clone(), sender.to_string());
        let why = why.to_string();
        let ttl = self.spool.limits.partial_ttl.as_secs();
        let (mut body, result) = smol::unblock(move || {
            let r = (|| -> Result<bool, Error> {
                self.sync()?;
                let p = Partial {
                    body: self.id.clone(),
                    size: self.size,
                    expires: now_secs() + ttl,
                    sender,
                };
                self.spool.record_partial(&pipe, &path, &p, &why)
            })();
            (self, r)
        })
        .await;
        match result {
            Ok(true) => {
                body.settle();
                Ok(body.size)
            }
            Ok(false) => {
                body.discard().await;
                Ok(0)
            }
            Err(e) => {
                body.discard().await;
                Err(e)
            }
        }
    }
}

/// The last resort, for a body dropped on an error path: deletes it right here, blocking.
/// The session's paths end every body with [`Body::discard`], [`Body::keep_partial`] or
/// [`Spool::commit`] instead, off the executor.
impl Drop for Body {
    fn drop(&mut self) {
        if !self.settled {
            self.spool.release(&self.id);
            self.spool.forget_body(&self.id, self.continues.take());
        }
    }
}

/// Hashes the first `len` bytes of `file` and leaves it positioned at `len`.
pub(super) fn rehash(file: &mut File, len: u64) -> io::Result<Hasher> {
    let mut sum = Hasher::crc32c();
    file.seek(SeekFrom::Start(0))?;
    read_exactly(file, len, |chunk| {
        sum.update(chunk);
        Ok(())
    })?;
    Ok(sum)
}

/// Reads the next `len` bytes of `file`, handing them to `each` a buffer at a time.
fn read_exactly(
    file: &mut File,
    len: u64,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; READ_BUF];
    let mut left = len;
    while left > 0 {
        let n = file.read(&mut buf[..READ_BUF.min(left as usize)])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool body shorter than recorded",
            ));
        }
        each(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

impl Spool {
    /// A new, empty body (after checking that there is room at all).
    pub async fn start(self: &Arc<Self>) -> Result<Body, Error> {
        let spool = self.clone();
        smol::unblock(move || {
            spool.make_room(0)?;
            spool.check_room(0)?;
            spool_start_blocking(&spool)
        })
        .await
    }

    /// Continues an upload to (pipe, path): at `offset` (`REST`) or at the end (`APPE`,
    /// `offset == None`). The bytes so far come from a partial of that path, else from the
    /// spooled body of the file itself (not yet delivered). Nothing to continue: a new body.
    pub async fn resume(
        self: &Arc<Self>,
        pipe: &str,
        path: &VPath,
        offset: Option<u64>,
    ) -> Result<Body, Error> {
        let spool = self.clone();
        let (pipe, path) = (pipe.to_string(), path.clone());
        smol::unblock(move || {
            spool.make_room(0)?;
            spool.check_room(0)?;
            let r = spool.store.read()?;
            if let Some(p) = r.partial(&pipe, &path)? {
                return spool.resume_partial(p, offset, (pipe, path));
            }
            let existing = r.entry(&pipe, &path)?.filter(|e| e.kind == Kind::File);
            drop(r);
            let want = offset.unwrap_or_else(|| existing.as_ref().map_or(0, |e| e.size));
            if want == 0 {
                return spool_start_blocking(&spool);
            }
            spool.resume_spooled(existing, want, &path)
        })
        .await
    }
}

impl Spool {
    /// Continues partial `p` at `offset` (its end if `None`), blocking: the file is cut
    /// there and its checksum taken again over what stays.
    fn resume_partial(
        self: &Arc<Self>,
        p: Partial,
        offset: Option<u64>,
        continues: (String, VPath),
    ) -> Result<Body, Error> {
        let offset = offset.unwrap_or(p.size);
        if offset > p.size {
            return Err(Error::BadOffset {
                asked: offset,
                have: p.size,
            });
        }
        self.claim(&p.body)?;
        let opened = (|| -> io::Result<(File, Hasher)> {
            let mut file = self.disk.open(&self.tmp_path(&p.body))?;
            file.set_len(offset)?;
            let sum = rehash(&mut file, offset)?;
            Ok((file, sum))
        })();
        let (file, sum) = match opened {
            Ok(x) => x,
            Err(e) => {
                self.release(&p.body);
                return Err(e.into());
            }
        };
        self.sub_used(p.size - offset);
        Ok(Body {
            spool: self.clone(),
            id: p.body,
            file,
            sum,
            size: offset,
            sum_stale: false,
            behind: Default::default(),
            settled: false,
            continues: Some(continues),
            first_grant: self.grant(FIRST_GRANT).ok(),
            named: None,
        })
    }

    /// Continues a file not yet delivered (`existing`, at `path`) from its first `want`
    /// bytes, blocking: they are copied from its spooled body into a new one.
    fn resume_spooled(
        self: &Arc<Self>,
        existing: Option<Entry>,
        want: u64,
        path: &VPath,
    ) -> Result<Body, Error> {
        let Some(e) = existing else {
            return Err(Error::BadOffset {
                asked: want,
                have: 0,
            });
        };
        let Some(src) = e.body else {
            return Err(Error::AlreadyDelivered(path.to_string()));
        };
        if want > e.size {
            return Err(Error::BadOffset {
                asked: want,
                have: e.size,
            });
        }
        self.make_room(want)?;
        self.check_room(want)?;
        let mut body = spool_start_blocking(self)?;
        let _reading = self.reading(&src);
        let from = self.body_path(&src).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("spool body {src} is missing"),
            )
        })?;
        // Written like received bytes: counted as they land, cut back on an error.
        read_exactly(&mut File::open(from)?, want, |chunk| {
            body.write_chunk(chunk)
        })?;
        Ok(body)
    }
}

fn spool_start_blocking(spool: &Arc<Spool>) -> Result<Body, Error> {
    let id = new_id();
    let path = spool.tmp_path(&id);
    let file = match spool.spares.take(&*spool.disk, &path) {
        Some(spare) => spare,
        None => spool.disk.create(&path)?,
    };
    // Alone: nobody else is sending a body now, so no group commit will share the
    // directory fsync (see `durable_names`).
    let alone = spool.receiving() == 0;
    let named = Some(spool.names.made(alone));
    spool.claim(&id)?;
    Ok(Body {
        spool: spool.clone(),
        id,
        file,
        sum: Hasher::crc32c(),
        size: 0,
        sum_stale: false,
        behind: Default::default(),
        settled: false,
        continues: None,
        first_grant: spool.grant(FIRST_GRANT).ok(),
        named,
    })
}
