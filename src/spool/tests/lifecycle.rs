//! A body's life across restarts, expiry, a failing group commit and a slow filesystem.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;

#[test]
fn the_count_after_a_restart_is_what_the_spool_holds() {
    let mut w = World::new();
    w.upload("/a", &bytes(10_000)).unwrap();
    w.upload("/b", &bytes(20_000)).unwrap();
    w.upload("/a", &bytes(30_000)).unwrap(); // replaces an undelivered version
    assert_eq!(w.broken_upload("/c", 7_000), 7_000);
    let before = w.spool.used();
    assert_eq!(before, 57_000);
    assert_eq!(w.on_disk(), before);
    w.restart();
    assert_eq!(w.spool.used(), before);
}

#[test]
fn an_expiring_partial_that_is_being_resumed_is_left_alone() {
    let w = World::new();
    let path = VPath::from_normalised("/big");
    w.broken_upload("/big", 40_000);
    // A day passes (on this thread's clock): the partial is due to expire, and a device
    // resumes it at that moment.
    crate::clock::shift(limits().partial_ttl + Duration::from_secs(1));
    let resumed = smol::block_on(w.spool.resume(PIPE, &path, Some(40_000))).unwrap();
    assert_eq!(w.spool.expire_partials().unwrap(), 0);
    w.finish(resumed, "/big", &bytes(1_000)).unwrap();
    assert_eq!(w.recorded("/big"), Some(41_000));
    assert_eq!(w.spool.used(), 41_000);
    assert_eq!(w.on_disk(), 41_000);

    // Not resumed: it goes, with its bytes.
    w.broken_upload("/big", 5_000);
    assert_eq!(w.spool.expire_partials().unwrap(), 1);
    assert_eq!(w.spool.used(), 41_000);
    assert_eq!(w.on_disk(), 41_000);
}

#[test]
fn a_storage_error_in_the_middle_of_a_group_commit_records_none_of_the_batch() {
    use crate::spool::commit::{Job, commit_batch};
    let w = World::new();
    w.store.write(|tx| tx.corrupt_entry(PIPE, "/bad")).unwrap();
    let (tmp, ready) = (w.state.spool_tmp(), w.state.spool_ready());
    let mut answers = Vec::new();
    let batch = ["/ok", "/bad", "/ok2"]
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let body = format!("body{i}");
            std::fs::write(tmp.join(&body), b"x").unwrap();
            let (reply, answer) = smol::channel::bounded(1);
            answers.push(answer);
            Job {
                publish: publish(path),
                upload: crate::store::catalog::Upload {
                    body,
                    size: 1,
                    sum: crate::checksum::Checksum::Crc32c(0),
                    mtime: 0,
                    sender: "cam".into(),
                },
                named: None,
                reply,
            }
        })
        .collect();
    let names =
        crate::spool::durable_names::DurableNames::start(w.disk.clone(), tmp.clone()).unwrap();
    assert!(commit_batch(batch, &*w.disk, &tmp, &ready, &w.store, &names).is_none());
    for a in answers {
        let r = a.try_recv().expect("every upload gets an answer");
        assert!(matches!(r, Err(Error::Commit(_))), "{r:?}");
    }
    assert_eq!(w.recorded("/ok"), None);
    assert_eq!(w.recorded("/ok2"), None);
    assert_eq!(w.queued(), 0);
    assert_eq!(
        w.files_in(&ready),
        0,
        "nothing unrecorded moves into ready/"
    );
}

/// A slow filesystem must not stall the executor: while an upload asks for the free space
/// (before its first bytes and every few MiB), other sessions on the same thread run on.
#[test]
fn asking_for_the_free_space_never_blocks_the_executor() {
    let w = World::new();
    let body = smol::block_on(w.spool.start()).unwrap();
    w.disk.statvfs_ms.store(400, Ordering::SeqCst);
    let longest_gap = std::cell::Cell::new(Duration::ZERO);
    smol::block_on(async {
        let (_abort_tx, abort) = smol::channel::bounded(1);
        let data = smol::io::Cursor::new(bytes(20 << 20));
        let upload = async {
            let (body, ended, _) = receive(body, data, Duration::from_secs(30), abort).await;
            assert!(matches!(ended, Ended::Complete), "{ended:?}");
            body.discard().await;
        };
        // Another session on the same thread: how long it waited, at most, for a turn.
        let other = async {
            loop {
                let t = std::time::Instant::now();
                smol::Timer::after(Duration::from_millis(5)).await;
                longest_gap.set(longest_gap.get().max(t.elapsed()));
            }
        };
        smol::future::or(upload, other).await;
    });
    let longest_gap = longest_gap.get();
    // Each free-space check takes 400 ms; on the executor thread the other session would
    // wait at least that long.
    assert!(
        longest_gap < Duration::from_millis(300),
        "another session waited {longest_gap:?} for its turn"
    );
}
