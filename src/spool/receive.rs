//! Receiving one upload's body from the data connection: a fixed pair of buffers (the
//! network read overlaps the disk write of the previous chunk), free space promised
//! before bytes are written, the quota checked as they arrive, write-behind flushes so
//! the fsync before `226` has only the tail left, and the idle timer and `ABOR`.

use std::io;
use std::time::Duration;

use smol::io::{AsyncRead, AsyncReadExt};

use super::body::{BUF_SIZE, FIRST_GRANT};
use super::{Body, Ended, Error};

/// Free space is re-checked after this many bytes.
const STATVFS_EVERY: u64 = 8 << 20;
/// Write-behind: after this many bytes, flush what is written so far in the background,
/// so the fsync before `226` only has the tail left to write.
const FLUSH_EVERY: u64 = 16 << 20;

/// A chunk write handed back: the body, its buffer, and how the write went.
type Written = (Body, Vec<u8>, io::Result<()>);

enum Got {
    Data(usize),
    Failed(io::Error),
    TimedOut,
    Aborted,
}

/// A TLS read returns one record (16 KiB at most): after a read has put `n` bytes into
/// `buf`, this takes what has arrived already behind them, without waiting, so a buffer,
/// not a record, costs one write off the executor. Returns the bytes now in `buf`, and
/// the end or error it met, which the caller handles once those bytes are written.
async fn take_arrived<R: AsyncRead + Unpin>(
    data: &mut R,
    buf: &mut [u8],
    mut n: usize,
) -> (usize, Option<Got>) {
    while n < buf.len() {
        match smol::future::poll_once(data.read(&mut buf[n..])).await {
            Some(Ok(0)) => return (n, Some(Got::Data(0))),
            Some(Ok(more)) => n += more,
            Some(Err(e)) => return (n, Some(Got::Failed(e))),
            None => break,
        }
    }
    (n, None)
}

/// Copies `data` into `body` until the sender closes the connection, the transfer is
/// aborted (a message on `abort`), nothing arrives for `idle`, or a quota is hit.
pub async fn receive<R: AsyncRead + Unpin>(
    mut body: Body,
    data: &mut R,
    idle: Duration,
    abort: &smol::channel::Receiver<()>,
) -> (Body, Ended) {
    let spool = body.spool.clone();
    let first_grant = body.first_grant.take();
    let mut body = Some(body);
    let mut spare = vec![vec![0u8; BUF_SIZE], vec![0u8; BUF_SIZE]];
    let mut writing: Option<smol::Task<Written>> = None;
    // Free space for the next bytes is promised before they are written: a small grant
    // first (most uploads are small, and many may run at once), STATVFS_EVERY after.
    let mut until_statvfs = FIRST_GRANT;
    let granted = match first_grant {
        Some(g) => Ok(g),
        None => spool.grant_async(FIRST_GRANT).await,
    };
    let mut grant = match granted {
        Ok(g) => Some(g),
        Err(Error::Full(why)) => return (body.expect("not yet taken"), Ended::Full(why)),
        Err(_) => None,
    };
    let mut until_flush = FLUSH_EVERY;
    let mut timer = smol::Timer::after(idle);
    let mut last_data = std::time::Instant::now();
    let mut flushing: Option<smol::Task<()>> = None;
    // What a read that filled the last buffer met after it (the end, or an error).
    let mut next: Option<Got> = None;
    let mut ended = loop {
        let mut buf = spare.pop().expect("two buffers, at most one being written");
        let read = match next.take() {
            Some(got) => got,
            None => loop {
                // One timer for the whole transfer, re-armed only when it fires early.
                let got = smol::future::or(
                    async {
                        match data.read(&mut buf).await {
                            Ok(n) => Got::Data(n),
                            Err(e) => Got::Failed(e),
                        }
                    },
                    smol::future::or(
                        async {
                            (&mut timer).await;
                            Got::TimedOut
                        },
                        async {
                            let _ = abort.recv().await;
                            Got::Aborted
                        },
                    ),
                )
                .await;
                match got {
                    Got::TimedOut if last_data.elapsed() < idle => timer.set_at(last_data + idle),
                    other => break other,
                }
            },
        };
        let read = match read {
            Got::Data(n) if n > 0 => {
                let (n, after) = take_arrived(data, &mut buf, n).await;
                next = after;
                Got::Data(n)
            }
            other => other,
        };
        last_data = std::time::Instant::now();
        if let Some(task) = writing.take() {
            let (b, used, result) = task.await;
            body = Some(b);
            spare.push(used);
            if let Err(e) = result {
                break Ended::Disk(e);
            }
        }
        let n = match read {
            Got::Data(0) => break Ended::Complete,
            Got::Data(n) => n,
            Got::Failed(e) => break Ended::Network(e),
            Got::TimedOut => break Ended::TimedOut,
            Got::Aborted => break Ended::Aborted,
        };
        // Counted once written (see `Body::write_chunk`). Over the quota, the oldest
        // partials make room first.
        let limits = &spool.limits;
        if limits.max_bytes > 0 && spool.used() + n as u64 > limits.max_bytes {
            let s = spool.clone();
            if let Err(e) = smol::unblock(move || s.make_room(n as u64)).await {
                break Ended::Full(match e {
                    Error::Full(why) => why,
                    other => other.to_string(),
                });
            }
        }
        until_statvfs = until_statvfs.saturating_sub(n as u64);
        if until_statvfs == 0 {
            until_statvfs = STATVFS_EVERY;
            // What the last grant covered is on disk (or in flight): the free space
            // shows it now.
            drop(grant.take());
            match spool.grant_async(STATVFS_EVERY).await {
                Ok(g) => grant = Some(g),
                Err(Error::Full(why)) => break Ended::Full(why),
                Err(_) => {}
            }
        }
        until_flush = until_flush.saturating_sub(n as u64);
        if until_flush == 0 && flushing.as_ref().is_none_or(|t| t.is_finished()) {
            until_flush = FLUSH_EVERY;
            if let Some(file) = body.as_ref().and_then(|b| b.file.try_clone().ok()) {
                // An early fdatasync on a clone of the descriptor; a failure shows again
                // in the final fsync, which decides.
                flushing = Some(smol::unblock(move || drop(file.sync_data())));
            }
        }
        let mut b = body.take().expect("body is back before the next write");
        writing = Some(smol::unblock(move || {
            let r = b.write_chunk(&buf[..n]);
            (b, buf, r)
        }));
    };
    if let Some(task) = flushing.take() {
        task.await;
    }
    if let Some(task) = writing.take() {
        let (b, _, result) = task.await;
        body = Some(b);
        if let (Err(e), Ended::Complete) = (result, &ended) {
            ended = Ended::Disk(e);
        }
    }
    (body.expect("body is back after the last write"), ended)
}
