//! The spool against a disk that fails on cue (the [`Disk`] seam): a write that meets a
//! full disk part-way, an fsync or a directory fsync that fails, a rename that is lost,
//! and a restart after each. Whatever fails, nothing unacknowledged is recorded, nothing
//! acknowledged is lost, and the bytes the spool counts are the bytes on its disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Body, Disk, Ended, Error, Limits, Publish, Spool, receive};
use crate::state::StateDir;
use crate::store::namespace::Overwrite;
use crate::store::{Store, View};
use crate::vfs::VPath;

const PIPE: &str = "pip1";

/// The real filesystem, with faults switched on by the test.
struct Faulty {
    /// Bytes that may still be written before the disk is full.
    room: AtomicU64,
    fail_sync: AtomicBool,
    fail_sync_dir: AtomicBool,
    fail_rename: AtomicBool,
    /// A file system without hard links (FAT, some FUSE ones): `link` fails with EPERM.
    no_links: AtomicBool,
    /// How long asking for the free space takes (a slow or hung filesystem), ms.
    statvfs_ms: AtomicU64,
    /// Every name made, moved or removed and every directory fsync, in order.
    names: std::sync::Mutex<Vec<NameOp>>,
}

/// A change to a directory entry, or a directory fsync, as the disk saw it.
#[derive(Debug, Clone, PartialEq)]
enum NameOp {
    Link(PathBuf, PathBuf),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
    SyncDir(PathBuf),
}

impl Faulty {
    fn note(&self, op: NameOp) {
        self.names.lock().unwrap().push(op);
    }
}

impl Default for Faulty {
    fn default() -> Self {
        Faulty {
            room: AtomicU64::new(u64::MAX),
            fail_sync: AtomicBool::new(false),
            fail_sync_dir: AtomicBool::new(false),
            fail_rename: AtomicBool::new(false),
            no_links: AtomicBool::new(false),
            statvfs_ms: AtomicU64::new(0),
            names: Default::default(),
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
        std::fs::File::open(dir)?.sync_all()?;
        self.note(NameOp::SyncDir(dir.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.fail_rename.load(Ordering::SeqCst) {
            return Err(eio());
        }
        std::fs::rename(from, to)?;
        self.note(NameOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.fail_rename.load(Ordering::SeqCst) {
            return Err(eio());
        }
        if self.no_links.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(1));
        }
        std::fs::hard_link(from, to)?;
        self.note(NameOp::Link(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)?;
        self.note(NameOp::Remove(path.to_path_buf()));
        Ok(())
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
            let data = smol::io::Cursor::new(bytes.to_vec());
            let (body, ended, _) = receive(body, data, Duration::from_secs(5), abort).await;
            match ended {
                Ended::Complete => {}
                Ended::Disk(e) => {
                    body.discard().await;
                    return Err(Error::Disk(e));
                }
                other => panic!("unexpected end of a transfer: {other:?}"),
            }
            match self.spool.commit(body, publish(path)).await {
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

    /// An upload of `n` bytes to `path` that broke: kept as a partial. Returns the bytes
    /// kept.
    fn broken_upload(&self, path: &str, n: usize) -> u64 {
        smol::block_on(async {
            let body = self.spool.start().await.unwrap();
            let (_abort_tx, abort) = smol::channel::bounded(1);
            let data = smol::io::Cursor::new(bytes(n));
            let (body, _, _) = receive(body, data, Duration::from_secs(5), abort).await;
            body.keep_partial(PIPE, &VPath::from_normalised(path), "cam", "broke")
                .await
                .unwrap()
        })
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

    /// Bytes in `tmp/` and `ready/`'s buckets, read from the disk (a body with two names
    /// counted once).
    fn on_disk(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let mut seen = std::collections::HashSet::new();
        let mut dirs = vec![self.state.spool_tmp(), self.state.spool_ready()];
        let mut total = 0;
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    dirs.push(e.path());
                } else if seen.insert(m.ino()) {
                    total += m.len();
                }
            }
        }
        total
    }

    /// Waits until the commit thread has finished moving bodies into `ready/` (it does so
    /// after the uploads hear back): no body in `tmp/` has a second name.
    fn moved(&self) {
        use std::os::unix::fs::MetadataExt;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(self.state.spool_tmp())
            .unwrap()
            .any(|e| e.unwrap().metadata().is_ok_and(|m| m.nlink() > 1))
        {
            assert!(std::time::Instant::now() < deadline, "bodies still moving");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Delivers every queued op, as the forwarder would, and releases the bodies.
    fn deliver_all(&self) {
        let freed = self
            .store
            .write(|w| {
                let ops = w.claim_ready(PIPE, u64::MAX, 100_000)?;
                let done: Vec<_> = ops
                    .iter()
                    .map(|op| (op.id, crate::store::namespace::outbox::Outcome::Done))
                    .collect();
                w.settle(&done)
            })
            .unwrap();
        self.spool.collect(&freed);
    }

    fn files_in(&self, dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }
}

/// How the test's uploads are recorded: as `path` in the one Pipe, replacing.
fn publish(path: &str) -> Publish {
    Publish {
        pipe: PIPE.into(),
        path: VPath::from_normalised(path),
        policy: Overwrite::Replace,
        create_dirs: false,
        sender: "cam".into(),
        mtime: 0,
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

mod faults;
mod lifecycle;
mod offsets;
mod ready;
mod receiving;
mod spares;
