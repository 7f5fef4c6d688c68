//! The receive loop against a data connection that delivers bytes as TLS does: one
//! record (16 KiB at most) a read, some already waiting, some not yet arrived, and an
//! end or an error right behind the last record. Every byte lands once, in order, and
//! the end is seen only after the bytes before it are written.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::*;

enum Step {
    /// A record that has arrived.
    Record(Vec<u8>),
    /// Nothing has arrived yet (the reader is woken at once, as a socket would be soon).
    Wait,
    End,
    Fail,
}

/// Reads at most one record per call, as a TLS stream does.
struct Records(VecDeque<Step>);

impl smol::io::AsyncRead for Records {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.pop_front() {
            Some(Step::Record(mut r)) => {
                let n = r.len().min(buf.len());
                buf[..n].copy_from_slice(&r[..n]);
                if n < r.len() {
                    self.0.push_front(Step::Record(r.split_off(n)));
                }
                Poll::Ready(Ok(n))
            }
            Some(Step::Wait) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Step::End) | None => Poll::Ready(Ok(0)),
            Some(Step::Fail) => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
        }
    }
}

/// `total` bytes cut into records of `record` bytes, with a wait after every `every`th.
fn script(total: &[u8], record: usize, every: usize, last: Step) -> VecDeque<Step> {
    let mut steps = VecDeque::new();
    for (i, r) in total.chunks(record).enumerate() {
        steps.push_back(Step::Record(r.to_vec()));
        if i % every == every - 1 {
            steps.push_back(Step::Wait);
        }
    }
    steps.push_back(last);
    steps
}

fn receive_from(w: &World, steps: VecDeque<Step>) -> (Body, Ended, Vec<u8>) {
    smol::block_on(async {
        let body = w.spool.start().await.unwrap();
        let (_abort_tx, abort) = smol::channel::bounded(1);
        let data = Records(steps);
        let (body, ended, _) = receive(body, data, Duration::from_secs(5), abort).await;
        let on_disk = std::fs::read(w.state.spool_tmp().join(&body.id)).unwrap();
        (body, ended, on_disk)
    })
}

#[test]
fn records_that_arrive_together_are_written_once_and_in_order() {
    let w = World::new();
    // 1 MiB in 16 KiB records, a pause after every 5th (so buffers fill partly), and the
    // end right behind the last record (met while filling a buffer).
    let sent = bytes(1 << 20);
    let (body, ended, on_disk) = receive_from(&w, script(&sent, 16 << 10, 5, Step::End));
    assert!(matches!(ended, Ended::Complete), "{ended:?}");
    assert_eq!(body.size(), sent.len() as u64);
    assert!(on_disk == sent, "the body holds exactly what was sent");
    // Odd record sizes that straddle the buffer's end.
    let sent = bytes(700_001);
    let (body, ended, on_disk) = receive_from(&w, script(&sent, 16_381, 3, Step::End));
    assert!(matches!(ended, Ended::Complete), "{ended:?}");
    assert_eq!(body.size(), sent.len() as u64);
    assert!(on_disk == sent);
    assert_eq!(
        body.checksum(),
        crate::checksum::Checksum::Crc32c(crc32c::crc32c(&sent)),
        "the checksum covers every byte once, in order"
    );
}

#[test]
fn an_error_behind_the_last_record_keeps_the_bytes_before_it_and_breaks_the_upload() {
    let w = World::new();
    let sent = bytes(300_000);
    let (body, ended, on_disk) = receive_from(&w, script(&sent, 16 << 10, 4, Step::Fail));
    assert!(matches!(ended, Ended::Network(_)), "{ended:?}");
    // What arrived is kept, so the device can resume from there.
    assert_eq!(body.size(), sent.len() as u64);
    assert!(on_disk == sent);
}

/// A connection on which nothing ever arrives (and nothing ever wakes its reader).
struct Silent;

impl smol::io::AsyncRead for Silent {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
}

#[test]
fn a_silent_transfer_ends_when_its_session_goes_or_its_idle_time_is_up() {
    let w = World::new();
    smol::block_on(async {
        // The session is gone (its end of the abort channel dropped): the transfer's
        // thread stops waiting on the connection and hands the body back.
        let body = w.spool.start().await.unwrap();
        let (abort_tx, abort) = smol::channel::bounded(1);
        drop(abort_tx);
        let started = std::time::Instant::now();
        let (_, ended, _) = receive(body, Silent, Duration::from_secs(60), abort).await;
        assert!(matches!(ended, Ended::Aborted), "{ended:?}");
        assert!(started.elapsed() < Duration::from_secs(30));
        // Nobody aborts, nothing arrives: the idle time ends it.
        let body = w.spool.start().await.unwrap();
        let (_abort_tx, abort) = smol::channel::bounded(1);
        let (body, ended, _) = receive(body, Silent, Duration::from_millis(200), abort).await;
        assert!(matches!(ended, Ended::TimedOut), "{ended:?}");
        assert_eq!(body.size(), 0);
    });
}
