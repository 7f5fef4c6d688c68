//! The spool against a disk that fails on cue (the [`Disk`] seam): a write that meets a
//! full disk part-way, an fsync or a directory fsync that fails, a rename that is lost,
//! and a restart after each. Whatever fails, nothing unacknowledged is recorded, nothing
//! acknowledged is lost, and the bytes the spool counts are the bytes on its disk.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Body, Disk, Ended, Error, Limits, Publish, Spool, receive};
use crate::state::StateDir;
use crate::store::namespace::Overwrite;
use crate::store::partials::Partial;
use crate::store::{Store, View, now_secs};
use crate::vfs::VPath;

const PIPE: &str = "pip1";

/// The real filesystem, with faults switched on by the test.
struct Faulty {
    /// Bytes that may still be written before the disk is full.
    room: AtomicU64,
    fail_sync: AtomicBool,
    fail_sync_dir: AtomicBool,
    fail_rename: AtomicBool,
    /// How long asking for the free space takes (a slow or hung filesystem), ms.
    statvfs_ms: AtomicU64,
}

impl Default for Faulty {
    fn default() -> Self {
        Faulty {
            room: AtomicU64::new(u64::MAX),
            fail_sync: AtomicBool::new(false),
            fail_sync_dir: AtomicBool::new(false),
            fail_rename: AtomicBool::new(false),
            statvfs_ms: AtomicU64::new(0),
        }
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl Disk for Faulty {
    fn write(&self, file: &mut std::fs::File, chunk: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let room = self.room.load(Ordering::SeqCst);
        let fits = (chunk.len() as u64).min(room) as usize;
        self.room.fetch_sub(fits as u64, Ordering::SeqCst);
        // Like a real disk filling up: what fits is written, then ENOSPC.
        file.write_all(&chunk[..fits])?;
        if fits < chunk.len() {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn sync(&self, file: &std::fs::File) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(eio());
        }
        file.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.fail_sync_dir.load(Ordering::SeqCst) {
            return Err(eio());
        }
        std::fs::File::open(dir)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.fail_rename.load(Ordering::SeqCst) {
            return Err(eio());
        }
        std::fs::rename(from, to)
    }

    fn free_space(&self, _: &Path) -> io::Result<u64> {
        std::thread::sleep(Duration::from_millis(
            self.statvfs_ms.load(Ordering::SeqCst),
        ));
        Ok(1 << 40)
    }
}

struct World {
    _dir: tempfile::TempDir,
    state: StateDir,
    store: Arc<Store>,
    disk: Arc<Faulty>,
    spool: Arc<Spool>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.create().unwrap();
        let store = Arc::new(Store::open(&state.database()).unwrap());
        store
            .write(|w| {
                let spec = crate::store::pipes::PipeSpec {
                    id: Some(PIPE.into()),
                    name: PIPE.into(),
                    dest: "file:///tmp/never-used".into(),
                    enabled: true,
                    ..Default::default()
                };
                w.put_pipe(&spec.build(PIPE.into(), None, 0).unwrap())
            })
            .unwrap();
        let disk = Arc::new(Faulty::default());
        let spool = Spool::open_on(disk.clone(), &state, store.clone(), limits()).unwrap();
        World {
            _dir: dir,
            state,
            store,
            disk,
            spool,
        }
    }

    /// A restart: the spool is opened again on the same disk and database.
    fn restart(&mut self) {
        self.spool =
            Spool::open_on(self.disk.clone(), &self.state, self.store.clone(), limits()).unwrap();
    }

    /// Receives `bytes` into `body` and commits it as `path`, as the FTP session does;
    /// a body that is not committed is discarded.
    fn finish(&self, body: Body, path: &str, bytes: &[u8]) -> Result<(), Error> {
        smol::block_on(async {
            let (_abort_tx, abort) = smol::channel::bounded(1);
            let mut data = smol::io::Cursor::new(bytes.to_vec());
            let (body, ended) = receive(body, &mut data, Duration::from_secs(5), &abort).await;
            match ended {
                Ended::Complete => {}
                Ended::Disk(e) => {
                    body.discard().await;
                    return Err(Error::Disk(e));
                }
                other => panic!("unexpected end of a transfer: {other:?}"),
            }
            let publish = Publish {
                pipe: PIPE.into(),
                path: VPath::from_normalised(path),
                policy: Overwrite::Replace,
                sender: "cam".into(),
                mtime: 0,
            };
            match self.spool.commit(body, publish).await {
                Ok(_) => Ok(()),
                Err((body, e)) => {
                    body.discard().await;
                    Err(e)
                }
            }
        })
    }

    fn upload(&self, path: &str, bytes: &[u8]) -> Result<(), Error> {
        let body = smol::block_on(self.spool.start())?;
        self.finish(body, path, bytes)
    }

    fn append(&self, path: &str, bytes: &[u8]) -> Result<(), Error> {
        let body = smol::block_on(self.spool.resume(PIPE, &VPath::from_normalised(path), None))?;
        self.finish(body, path, bytes)
    }

    fn recorded(&self, path: &str) -> Option<u64> {
        let r = self.store.read().unwrap();
        r.entry(PIPE, &VPath::from_normalised(path))
            .unwrap()
            .map(|e| e.size)
    }

    fn queued(&self) -> u64 {
        self.store.read().unwrap().backlog(PIPE).unwrap().ops
    }

    /// Bytes in `tmp/` and `ready/`, read from the disk.
    fn on_disk(&self) -> u64 {
        [self.state.spool_tmp(), self.state.spool_ready()]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    fn files_in(&self, dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }
}

fn limits() -> Limits {
    Limits {
        min_free: 0,
        ..Limits::default()
    }
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_disk_that_fills_mid_upload_records_nothing_and_gives_the_quota_back() {
    let w = World::new();
    w.upload("/a", &bytes(100_000)).unwrap();
    w.disk.room.store(300_000, Ordering::SeqCst);
    let e = w.upload("/b", &bytes(1 << 20)).unwrap_err();
    assert!(
        matches!(&e, Error::Disk(io) if super::is_disk_full(io)),
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
        matches!(&e, Error::Disk(io) if super::is_disk_full(io)),
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
    assert_eq!(
        w.spool.body_path(&body).unwrap(),
        w.state.spool_ready().join(&body)
    );
    assert_eq!(w.spool.used(), 50_000);
    assert_eq!(w.queued(), 1);
}

#[test]
fn the_count_after_a_restart_is_what_the_spool_holds() {
    let mut w = World::new();
    w.upload("/a", &bytes(10_000)).unwrap();
    w.upload("/b", &bytes(20_000)).unwrap();
    w.upload("/a", &bytes(30_000)).unwrap(); // replaces an undelivered version
    let kept = smol::block_on(async {
        let body = w.spool.start().await.unwrap();
        let (_abort_tx, abort) = smol::channel::bounded(1);
        let mut data = smol::io::Cursor::new(bytes(7_000));
        let (body, _) = receive(body, &mut data, Duration::from_secs(5), &abort).await;
        body.keep_partial(PIPE, &VPath::from_normalised("/c"), "cam")
            .await
            .unwrap()
    });
    assert_eq!(kept, 7_000);
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
    smol::block_on(async {
        let body = w.spool.start().await.unwrap();
        let (_abort_tx, abort) = smol::channel::bounded(1);
        let mut data = smol::io::Cursor::new(bytes(40_000));
        let (body, _) = receive(body, &mut data, Duration::from_secs(5), &abort).await;
        body.keep_partial(PIPE, &path, "cam").await.unwrap();
    });
    // The partial is due to expire; a device resumes it at that moment.
    let expired = |w: &World| {
        w.store
            .write(|tx| {
                let mut p: Partial = tx.partial(PIPE, &path)?.unwrap();
                p.expires = now_secs() - 1;
                tx.put_partial(PIPE, &path, &p).map(|_| ())
            })
            .unwrap()
    };
    expired(&w);
    let resumed = smol::block_on(w.spool.resume(PIPE, &path, Some(40_000))).unwrap();
    assert_eq!(w.spool.expire_partials().unwrap(), 0);
    w.finish(resumed, "/big", &bytes(1_000)).unwrap();
    assert_eq!(w.recorded("/big"), Some(41_000));
    assert_eq!(w.spool.used(), 41_000);
    assert_eq!(w.on_disk(), 41_000);

    // Not resumed: it goes, with its bytes.
    smol::block_on(async {
        let body = w.spool.start().await.unwrap();
        let (_abort_tx, abort) = smol::channel::bounded(1);
        let mut data = smol::io::Cursor::new(bytes(5_000));
        let (body, _) = receive(body, &mut data, Duration::from_secs(5), &abort).await;
        body.keep_partial(PIPE, &path, "cam").await.unwrap();
    });
    expired(&w);
    assert_eq!(w.spool.expire_partials().unwrap(), 1);
    assert_eq!(w.spool.used(), 41_000);
    assert_eq!(w.on_disk(), 41_000);
}

#[test]
fn a_storage_error_in_the_middle_of_a_group_commit_records_none_of_the_batch() {
    use super::commit::{Job, commit_batch};
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
                publish: Publish {
                    pipe: PIPE.into(),
                    path: VPath::from_normalised(path),
                    policy: Overwrite::Replace,
                    sender: "cam".into(),
                    mtime: 0,
                },
                upload: crate::store::catalog::Upload {
                    body,
                    size: 1,
                    md5: String::new(),
                    mtime: 0,
                    sender: "cam".into(),
                },
                reply,
            }
        })
        .collect();
    commit_batch(batch, &*w.disk, &tmp, &ready, &w.store);
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
        let mut data = smol::io::Cursor::new(bytes(20 << 20));
        let upload = async {
            let (body, ended) = receive(body, &mut data, Duration::from_secs(30), &abort).await;
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
