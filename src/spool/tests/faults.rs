//! A disk that fills part-way, fsyncs and a directory fsync that fail, a rename that is
//! lost: nothing unacknowledged is recorded and the count matches the disk.

use std::sync::atomic::Ordering;

use super::*;

#[test]
fn a_disk_that_fills_mid_upload_records_nothing_and_gives_the_quota_back() {
    let w = World::new();
    w.upload("/a", &bytes(100_000)).unwrap();
    w.disk.room.store(300_000, Ordering::SeqCst);
    let e = w.upload("/b", &bytes(1 << 20)).unwrap_err();
    assert!(
        matches!(&e, Error::Disk(io) if crate::support::is_disk_full(io)),
        "{e:?}"
    );
    assert_eq!(w.recorded("/b"), None);
    assert_eq!(w.queued(), 1);
    assert_eq!(w.spool.used(), 100_000, "the spool counts what it holds");
    assert_eq!(w.on_disk(), 100_000);

    // Room again: the spool is not stuck, and the count still matches the disk.
    w.disk.room.store(u64::MAX, Ordering::SeqCst);
    w.upload("/b", &bytes(1 << 20)).unwrap();
    assert_eq!(w.recorded("/b"), Some(1 << 20));
    assert_eq!(w.spool.used(), 100_000 + (1 << 20));
    assert_eq!(w.on_disk(), w.spool.used());
}

#[test]
fn a_disk_that_fills_while_append_copies_the_queued_body_gives_the_quota_back() {
    let w = World::new();
    w.upload("/log", &bytes(600_000)).unwrap();
    w.disk.room.store(200_000, Ordering::SeqCst);
    let e = w.append("/log", b"more").unwrap_err();
    assert!(
        matches!(&e, Error::Disk(io) if crate::support::is_disk_full(io)),
        "{e:?}"
    );
    assert_eq!(w.recorded("/log"), Some(600_000));
    assert_eq!(w.spool.used(), 600_000);
    assert_eq!(w.on_disk(), 600_000);

    w.disk.room.store(u64::MAX, Ordering::SeqCst);
    w.append("/log", b"more").unwrap();
    assert_eq!(w.recorded("/log"), Some(600_004));
    assert_eq!(w.spool.used(), 600_004, "the replaced version is deleted");
    assert_eq!(w.on_disk(), 600_004);
}

#[test]
fn a_failed_fsync_records_nothing() {
    let w = World::new();
    w.disk.fail_sync.store(true, Ordering::SeqCst);
    let e = w.upload("/a", &bytes(50_000)).unwrap_err();
    assert!(matches!(e, Error::Disk(_)), "{e:?}");
    assert_eq!(w.recorded("/a"), None);
    assert_eq!(w.queued(), 0);
    assert_eq!(w.spool.used(), 0);
    assert_eq!(w.files_in(&w.state.spool_tmp()), 0);
}

#[test]
fn a_failed_directory_fsync_fails_the_whole_batch_and_records_nothing() {
    let w = World::new();
    w.disk.fail_sync_dir.store(true, Ordering::SeqCst);
    let e = w.upload("/a", &bytes(50_000)).unwrap_err();
    assert!(matches!(e, Error::Disk(_)), "{e:?}");
    assert_eq!(w.recorded("/a"), None);
    assert_eq!(w.queued(), 0);
    assert_eq!(w.spool.used(), 0);
    assert_eq!(w.on_disk(), 0);
}

#[test]
fn a_lost_rename_into_ready_is_delivered_from_tmp_and_finished_by_recovery() {
    let mut w = World::new();
    w.disk.fail_rename.store(true, Ordering::SeqCst);
    w.upload("/a", &bytes(50_000)).unwrap();
    let body = w
        .store
        .read()
        .unwrap()
        .entry(PIPE, &VPath::from_normalised("/a"))
        .unwrap()
        .unwrap()
        .body
        .unwrap();
    let at = w.spool.body_path(&body).unwrap();
    assert_eq!(at, w.state.spool_tmp().join(&body), "still in tmp/");

    w.disk.fail_rename.store(false, Ordering::SeqCst);
    w.restart();
    assert_eq!(w.spool.body_path(&body).unwrap(), w.spool.ready_path(&body));
    assert_eq!(w.spool.used(), 50_000);
    assert_eq!(w.queued(), 1);
}
