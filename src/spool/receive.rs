//! Receiving one upload's body from the data connection, on a thread of its own: one
//! buffer, filled from the connection and written straight to the body file (the
//! kernel's socket buffer keeps receiving meanwhile), free space promised before bytes
//! are written, the quota checked as they arrive, write-behind flushes so the fsync
//! before `226` has only the tail left, and the idle timer and `ABOR`.
//!
//! Why a thread: a write is blocking work, so it may not run on the executor, and
//! handing each buffer to the blocking pool costs two thread wake-ups per buffer, which
//! measured as a quarter of the daemon's CPU on a large upload. The transfer's thread
//! does the reads, the writes and (over FTPS) the decryption itself. Threads and their
//! buffers are kept for the next transfer ([`super::threads`]).

use std::io;
use std::time::Duration;

use smol::io::{AsyncRead, AsyncReadExt};

use super::body::FIRST_GRANT;
use super::{Body, Ended, Error};

/// Free space is re-checked after this many bytes.
const STATVFS_EVERY: u64 = 8 << 20;
/// Write-behind: after this many bytes, flush what is written so far in the background,
/// so the fsync before `226` only has the tail left to write.
const FLUSH_EVERY: u64 = 16 << 20;

enum Got {
    Data(usize),
    Failed(io::Error),
    TimedOut,
    Aborted,
}

/// Copies `data` into `body` until the sender closes the connection, the transfer is
/// aborted (a message on `abort`, or its sender dropped), nothing arrives for `idle`, or
/// a quota is hit. Runs on a thread of its own and hands `data` back with the body.
pub async fn receive<R>(
    body: Body,
    data: R,
    idle: Duration,
    abort: smol::channel::Receiver<()>,
) -> (Body, Ended, R)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (done_tx, done_rx) = smol::channel::bounded(1);
    let job: super::threads::Job = Box::new(move |buf: &mut [u8]| {
        let mut data = data;
        let (body, ended) = smol::block_on(receive_here(body, &mut data, idle, &abort, buf));
        let _ = done_tx.send_blocking((body, ended, data));
    });
    if let Err(job) = super::threads::run(job) {
        smol::unblock(move || job(&mut vec![0u8; super::threads::BUF_SIZE])).detach();
    }
    done_rx
        .recv()
        .await
        // It answers unless it panicked, and a panic aborts the daemon (release profile).
        .expect("the transfer thread always answers")
}

/// A TLS read returns one record (16 KiB at most): after a read has put `n` bytes into
/// `buf`, this takes what has arrived already behind them, without waiting, so a buffer,
/// not a record, costs one write. Returns the bytes now in `buf`, and the end or error
/// it met, which the caller handles once those bytes are written.
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

/// The receive loop, on the transfer's thread: it blocks on the writes.
async fn receive_here<R: AsyncRead + Unpin>(
    mut body: Body,
    data: &mut R,
    idle: Duration,
    abort: &smol::channel::Receiver<()>,
    buf: &mut [u8],
) -> (Body, Ended) {
    let spool = body.spool.clone();
    // Free space for the next bytes is promised before they are written: a small grant
    // first (most uploads are small, and many may run at once), STATVFS_EVERY after.
    let mut until_statvfs = FIRST_GRANT;
    let granted = match body.first_grant.take() {
        Some(g) => Ok(g),
        None => spool.grant(FIRST_GRANT),
    };
    let mut grant = match granted {
        Ok(g) => Some(g),
        Err(Error::Full(why)) => return (body, Ended::Full(why)),
        Err(_) => None,
    };
    let mut until_flush = FLUSH_EVERY;
    let mut timer = smol::Timer::after(idle);
    let mut last_data = std::time::Instant::now();
    let mut flushing: Option<smol::Task<()>> = None;
    // What a read that filled the buffer met after it (the end, or an error).
    let mut next: Option<Got> = None;
    let ended = loop {
        let read = match next.take() {
            Some(got) => got,
            None => loop {
                // One timer for the whole transfer, re-armed only when it fires early.
                let got = smol::future::or(
                    async {
                        match data.read(buf).await {
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
        let n = match read {
            Got::Data(0) => break Ended::Complete,
            Got::Data(n) => {
                let (n, after) = take_arrived(data, buf, n).await;
                next = after;
                n
            }
            Got::Failed(e) => break Ended::Network(e),
            Got::TimedOut => break Ended::TimedOut,
            Got::Aborted => break Ended::Aborted,
        };
        last_data = std::time::Instant::now();
        // Counted once written (see `Body::write_chunk`). Over the quota, the oldest
        // partials make room first.
        let limits = &spool.limits;
        if limits.max_bytes > 0
            && spool.used() + n as u64 > limits.max_bytes
            && let Err(e) = spool.make_room(n as u64)
        {
            break Ended::Full(match e {
                Error::Full(why) => why,
                other => other.to_string(),
            });
        }
        until_statvfs = until_statvfs.saturating_sub(n as u64);
        if until_statvfs == 0 {
            until_statvfs = STATVFS_EVERY;
            // What the last grant covered is on disk: the free space shows it now.
            drop(grant.take());
            match spool.grant(STATVFS_EVERY) {
                Ok(g) => grant = Some(g),
                Err(Error::Full(why)) => break Ended::Full(why),
                Err(_) => {}
            }
        }
        until_flush = until_flush.saturating_sub(n as u64);
        if until_flush == 0 && flushing.as_ref().is_none_or(|t| t.is_finished()) {
            until_flush = FLUSH_EVERY;
            if let Ok(file) = body.file.try_clone() {
                // An early fdatasync on a clone of the descriptor; a failure shows again
                // in the final fsync, which decides.
                flushing = Some(smol::unblock(move || drop(file.sync_data())));
            }
        }
        if let Err(e) = body.write_chunk(&buf[..n]) {
            break Ended::Disk(e);
        }
    };
    if let Some(task) = flushing.take() {
        task.await;
    }
    (body, ended)
}
