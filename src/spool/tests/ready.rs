//! `ready/`'s buckets: a committed body always has a name whose directory entry is
//! durable, and what a drain leaves behind is removed (see `spool::ready`).

use std::path::PathBuf;

use super::*;

/// The bodies of the test's uploads, from the store.
fn body_of(w: &World, path: &str) -> String {
    let r = w.store.read().unwrap();
    let entry = r.entry(PIPE, &VPath::from_normalised(path)).unwrap();
    entry.unwrap().body.unwrap()
}

#[test]
fn a_committed_body_is_never_without_a_durable_name() {
    let w = World::new();
    let tmp = w.state.spool_tmp();
    let ready = w.state.spool_ready();
    let ids: Vec<String> = ["/a", "/b", "/c"]
        .iter()
        .map(|p| {
            w.upload(p, &bytes(5_000)).unwrap();
            body_of(&w, p)
        })
        .collect();
    w.moved();
    let log = w.disk.names.lock().unwrap().clone();
    for id in &ids {
        let old = tmp.join(id);
        // Where the body's `tmp/` name went away.
        let gone = log
            .iter()
            .position(|op| matches!(op, NameOp::Rename(f, _) | NameOp::Remove(f) if *f == old))
            .unwrap_or_else(|| panic!("body {id} never left tmp/: {log:?}"));
        // Its name in `ready/`, and that name's directory fsync in between.
        let (made, new) = log
            .iter()
            .enumerate()
            .find_map(|(i, op)| match op {
                NameOp::Link(f, t) | NameOp::Rename(f, t) if *f == old => Some((i, t.clone())),
                _ => None,
            })
            .unwrap();
        let dir: PathBuf = new.parent().unwrap().to_path_buf();
        let synced = log[made..gone]
            .iter()
            .any(|op| *op == NameOp::SyncDir(dir.clone()));
        assert!(
            synced,
            "body {id}: its tmp/ name went before its new name in {} was fsynced: {log:?}",
            dir.display()
        );
        if dir != ready {
            assert!(
                log[..gone].contains(&NameOp::SyncDir(ready.clone())),
                "its bucket's own name in ready/ was never fsynced"
            );
        }
        assert_eq!(std::fs::read(&new).unwrap(), bytes(5_000));
    }
}

#[test]
fn a_body_a_crash_left_with_both_names_keeps_one() {
    let mut w = World::new();
    w.upload("/a", &bytes(7_000)).unwrap();
    let id = body_of(&w, "/a");
    w.moved();
    // The crash came after the link into ready/ and before the tmp/ name went.
    std::fs::hard_link(w.spool.ready_path(&id), w.state.spool_tmp().join(&id)).unwrap();
    w.restart();
    assert!(
        !w.state.spool_tmp().join(&id).exists(),
        "the tmp/ name went"
    );
    assert_eq!(
        std::fs::read(w.spool.ready_path(&id)).unwrap(),
        bytes(7_000)
    );
    assert_eq!(w.spool.used(), 7_000);
    assert_eq!(w.on_disk(), 7_000);
}

#[test]
fn a_drained_backlog_leaves_no_bucket_behind() {
    let w = World::new();
    for i in 0..20 {
        w.upload(&format!("/f{i}"), &bytes(1_000)).unwrap();
    }
    let ready = w.state.spool_ready();
    assert!(w.files_in(&ready) >= 1, "the bodies wait in a bucket");
    w.deliver_all();
    assert_eq!(w.on_disk(), 0);
    w.moved();
    w.spool.tidy().unwrap();
    assert_eq!(w.files_in(&ready), 0, "ready/ is back to empty");
    // Uploads after that make their bucket again.
    w.upload("/late", &bytes(3_000)).unwrap();
    assert_eq!(w.on_disk(), 3_000);
}

#[test]
fn bodies_an_earlier_release_left_in_ready_are_moved_into_their_buckets() {
    let mut w = World::new();
    w.upload("/a", &bytes(4_000)).unwrap();
    w.upload("/b", &bytes(6_000)).unwrap();
    let ready = w.state.spool_ready();
    // As the previous release kept them: directly in ready/.
    for p in ["/a", "/b"] {
        let id = body_of(&w, p);
        std::fs::rename(w.spool.ready_path(&id), ready.join(&id)).unwrap();
    }
    for b in std::fs::read_dir(&ready).unwrap() {
        let _ = std::fs::remove_dir(b.unwrap().path());
    }
    w.restart();
    for (p, n) in [("/a", 4_000), ("/b", 6_000)] {
        let id = body_of(&w, p);
        assert!(!ready.join(&id).exists());
        assert_eq!(
            std::fs::read(w.spool.body_path(&id).unwrap()).unwrap(),
            bytes(n)
        );
    }
    assert_eq!(w.spool.used(), 10_000);
    w.deliver_all();
    assert_eq!(w.on_disk(), 0);
}

#[test]
fn a_file_system_without_hard_links_still_moves_bodies_into_ready() {
    let w = World::new();
    w.disk.no_links.store(true, Ordering::SeqCst);
    w.upload("/a", &bytes(2_000)).unwrap();
    let id = body_of(&w, "/a");
    assert_eq!(w.spool.body_path(&id).unwrap(), w.spool.ready_path(&id));
    assert_eq!(w.files_in(&w.state.spool_tmp()), 0);
    // The bucket's fsync follows the reply.
    let synced = NameOp::SyncDir(w.spool.ready_path(&id).parent().unwrap().to_path_buf());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !w.disk.names.lock().unwrap().contains(&synced) {
        assert!(
            std::time::Instant::now() < deadline,
            "the bucket was never fsynced"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The directory fsyncs of `tmp/` the disk has seen since log entry `from`.
fn tmp_syncs(w: &World, from: usize) -> usize {
    let tmp = NameOp::SyncDir(w.state.spool_tmp());
    w.disk.names.lock().unwrap()[from..]
        .iter()
        .filter(|op| **op == tmp)
        .count()
}

/// A device sending one file after another waits for every sync before its `226`: a
/// new body's `tmp/` name is made durable while its bytes arrive, so the commit adds no
/// directory fsync of its own (see `spool::durable_names`).
#[test]
fn a_new_body_name_is_made_durable_while_it_arrives_and_the_commit_adds_no_fsync() {
    let w = World::new();
    let from = w.disk.names.lock().unwrap().len();
    let body = smol::block_on(w.spool.start()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tmp_syncs(&w, from) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "tmp/ was not fsynced after the body's name was made"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    w.finish(body, "/a", &bytes(50_000)).unwrap();
    assert_eq!(tmp_syncs(&w, from), 1, "the commit fsynced tmp/ again");
    assert_eq!(w.recorded("/a"), Some(50_000));
}

/// Whatever the early fsync did (failed here, or not yet run), the body's `tmp/` name
/// is durable before the commit records it and links it into `ready/`.
#[test]
fn a_name_whose_early_fsync_failed_is_made_durable_by_the_commit() {
    let w = World::new();
    let from = w.disk.names.lock().unwrap().len();
    w.disk.fail_sync_dir.store(true, Ordering::SeqCst);
    let body = smol::block_on(w.spool.start()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    w.disk.fail_sync_dir.store(false, Ordering::SeqCst);
    w.finish(body, "/a", &bytes(50_000)).unwrap();
    let log = w.disk.names.lock().unwrap()[from..].to_vec();
    let tmp = w.state.spool_tmp();
    let linked = log
        .iter()
        .position(
            |op| matches!(op, NameOp::Link(f, _) | NameOp::Rename(f, _) if f.starts_with(&tmp)),
        )
        .unwrap_or_else(|| panic!("the body was never linked into ready/: {log:?}"));
    assert!(
        log[..linked].contains(&NameOp::SyncDir(tmp.clone())),
        "the body was recorded before its tmp/ name was durable: {log:?}"
    );
    assert_eq!(w.recorded("/a"), Some(50_000));
}
