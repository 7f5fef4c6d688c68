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
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncReadExt};

use super::body::FIRST_GRANT;
use super::reserve::Grant;
use super::{Body, Ended, Error, Spool};

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
    let mut pace = match Pace::start(&mut body) {
        Ok(p) => p,
        Err(ended) => return (body, ended),
    };
    let mut wait = Wait {
        timer: smol::Timer::after(idle),
        last_data: Instant::now(),
        idle,
    };
    // What a read that filled the buffer met after it (the end, or an error).
    let mut next: Option<Got> = None;
    let ended = loop {
        let read = match next.take() {
            Some(got) => got,
            None => wait.read(data, buf, abort).await,
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
        wait.last_data = Instant::now();
        if let Err(ended) = pace.room_for(&spool, n as u64) {
            break ended;
        }
        pace.flush_now_and_then(&body, n as u64);
        if let Err(e) = body.write_chunk(&buf[..n]) {
            break Ended::Disk(e);
        }
    };
    if let Some(task) = pace.flushing.take() {
        task.await;
    }
    (body, ended)
}

/// The next read, or the idle time running out, or `ABOR`.
struct Wait {
    /// One timer for the whole transfer, re-armed only when it fires early.
    timer: smol::Timer,
    last_data: Instant,
    idle: Duration,
}

impl Wait {
    async fn read<R: AsyncRead + Unpin>(
        &mut self,
        data: &mut R,
        buf: &mut [u8],
        abort: &smol::channel::Receiver<()>,
    ) -> Got {
        loop {
            let timer = &mut self.timer;
            let got = smol::future::or(
                async {
                    match data.read(buf).await {
                        Ok(n) => Got::Data(n),
                        Err(e) => Got::Failed(e),
                    }
                },
                smol::future::or(
                    async {
                        timer.await;
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
                Got::TimedOut if self.last_data.elapsed() < self.idle => {
                    self.timer.set_at(self.last_data + self.idle)
                }
                other => return other,
            }
        }
    }
}

/// What the loop keeps between writes: free space promised for the next bytes (a small
/// grant first, since most uploads are small and many may run at once;
/// [`STATVFS_EVERY`] after), and when the next write-behind flush is due.
struct Pace {
    grant: Option<Grant>,
    until_statvfs: u64,
    until_flush: u64,
    flushing: Option<smol::Task<()>>,
}

impl Pace {
    fn start(body: &mut Body) -> Result<Pace, Ended> {
        let granted = match body.first_grant.take() {
            Some(g) => Ok(g),
            None => body.spool.grant(FIRST_GRANT),
        };
        let grant = match granted {
            Ok(g) => Some(g),
            Err(Error::Full(why)) => return Err(Ended::Full(why)),
            Err(_) => None,
        };
        Ok(Pace {
            grant,
            until_statvfs: FIRST_GRANT,
            until_flush: FLUSH_EVERY,
            flushing: None,
        })
    }

    /// Room for `n` more bytes: within the quota (counted once written, see
    /// `Body::write_chunk`; the oldest partials make room first), and on the disk.
    fn room_for(&mut self, spool: &Spool, n: u64) -> Result<(), Ended> {
        let limits = &spool.limits;
        if limits.max_bytes > 0
            && spool.used() + n > limits.max_bytes
            && let Err(e) = spool.make_room(n)
        {
            return Err(Ended::Full(match e {
                Error::Full(why) => why,
                other => other.to_string(),
            }));
        }
        self.until_statvfs = self.until_statvfs.saturating_sub(n);
        if self.until_statvfs == 0 {
            self.until_statvfs = STATVFS_EVERY;
            // What the last grant covered is on disk: the free space shows it now.
            drop(self.grant.take());
            match spool.grant(STATVFS_EVERY) {
                Ok(g) => self.grant = Some(g),
                Err(Error::Full(why)) => return Err(Ended::Full(why)),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Every [`FLUSH_EVERY`] bytes, an early fdatasync in the background (one at a
    /// time), so the fsync before `226` has only the tail left.
    fn flush_now_and_then(&mut self, body: &Body, n: u64) {
        self.until_flush = self.until_flush.saturating_sub(n);
        if self.until_flush == 0 && self.flushing.as_ref().is_none_or(|t| t.is_finished()) {
            self.until_flush = FLUSH_EVERY;
            if let Ok(file) = body.file.try_clone() {
                // On a clone of the descriptor; a failure shows again in the final
                // fsync, which decides.
                self.flushing = Some(smol::unblock(move || drop(file.sync_data())));
            }
        }
    }
}
