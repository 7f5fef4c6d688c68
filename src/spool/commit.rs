//! Group commit: one thread publishes acknowledged bodies in batches.
//!
//! Each upload fsyncs its own body (in parallel, off the executor), then hands it here.
//! The thread takes every job waiting, makes sure the bodies' `tmp/` names are durable
//! (for an upload arriving alone, usually done already while it was received, see
//! [`super::durable_names`]; else one fsync of `tmp/` for the batch), and records all of
//! them in one redb transaction (one durable commit); only then are the bodies moved
//! into `ready/` (`ready.rs`). Under load 32 sessions pay for a
//! handful of commits instead of 32. A crash after the commit and before a move leaves a
//! body in `tmp/` that the outbox names: start-up recovery finishes the move.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smol::channel::{Receiver, Sender, bounded, unbounded};

use super::durable_names::{DurableNames, Ticket};
use super::{Body, Disk, Error, Spool};
use crate::checksum::Checksum;
use crate::store::activity::Received;
use crate::store::catalog::{Published, Upload};
use crate::store::namespace::Overwrite;
use crate::store::{Store, Writer};
use crate::vfs::VPath;

/// Most uploads recorded in one transaction.
const MAX_BATCH: usize = 256;

/// Where and how an upload is recorded.
#[derive(Debug, Clone)]
pub struct Publish {
    pub pipe: String,
    pub path: VPath,
    pub policy: Overwrite,
    /// Make missing directories above `path` (the Pipe's `create_dirs`).
    pub create_dirs: bool,
    pub sender: String,
    pub mtime: u64,
}

pub(super) struct Job {
    pub(super) publish: Publish,
    pub(super) upload: Upload,
    /// When the body's `tmp/` name was made (`None`: not known to be durable).
    pub(super) named: Option<Ticket>,
    pub(super) reply: Sender<Result<Published, Error>>,
}

pub(super) struct Committer {
    jobs: Sender<Job>,
}

impl Committer {
    pub(super) fn start(
        disk: Arc<dyn Disk>,
        tmp: PathBuf,
        ready: PathBuf,
        store: Arc<Store>,
        names: Arc<DurableNames>,
    ) -> std::io::Result<Committer> {
        let (jobs, rx) = unbounded();
        let (moves, moving) = unbounded();
        let (d, t, r) = (disk.clone(), tmp.clone(), ready.clone());
        std::thread::Builder::new()
            .name("ftpgate-move".into())
            .spawn(move || finish_moves(moving, &*d, &t, &r))?;
        std::thread::Builder::new()
            .name("ftpgate-commit".into())
            .spawn(move || run(rx, moves, &*disk, &tmp, &ready, &store, &names))?;
        Ok(Committer { jobs })
    }
}

fn run(
    rx: Receiver<Job>,
    moves: Sender<super::ready::Linked>,
    disk: &dyn Disk,
    tmp: &Path,
    ready: &Path,
    store: &Store,
    names: &DurableNames,
) {
    while let Ok(first) = rx.recv_blocking() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Some(linked) = commit_batch(batch, disk, tmp, ready, store, names) {
            // The other half of the moves, on its own thread: the next batch's commit
            // need not wait for this one's directory fsyncs.
            if let Err(e) = moves.send_blocking(linked) {
                finish_logged(e.into_inner(), disk, tmp, ready);
            }
        }
    }
}

/// How long the move thread gathers batches before it fsyncs their buckets: a device
/// sending one file after another commits a batch per file, and each bucket fsync is a
/// journal commit the next upload's fsyncs would queue behind. Bodies keep both names
/// meanwhile (bounded by the uploads of this long).
const MOVE_GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Finishes the moves of every batch committed meanwhile at once: one fsync per bucket
/// for all of them.
fn finish_moves(moving: Receiver<super::ready::Linked>, disk: &dyn Disk, tmp: &Path, ready: &Path) {
    while let Ok(mut linked) = moving.recv_blocking() {
        std::thread::sleep(MOVE_GATHER);
        while let Ok(more) = moving.try_recv() {
            linked.absorb(more);
        }
        finish_logged(linked, disk, tmp, ready);
    }
}

fn finish_logged(linked: super::ready::Linked, disk: &dyn Disk, tmp: &Path, ready: &Path) {
    if let Err(e) = linked.finish(disk, tmp, ready) {
        // Both names stay; the body is found in its bucket, and recovery drops the
        // `tmp/` name once the bucket's is durable.
        log::warn!("spool: fsyncing spool/ready: {e}; bodies keep their tmp/ names");
    }
}

/// Commits `batch` and answers each job; returns the bodies linked into `ready/` whose
/// moves are still to be finished ([`super::ready::Linked::finish`]).
pub(super) fn commit_batch(
    batch: Vec<Job>,
    disk: &dyn Disk,
    tmp: &Path,
    ready: &Path,
    store: &Store,
    names: &DurableNames,
) -> Option<super::ready::Linked> {
    let tickets: Vec<Option<Ticket>> = batch.iter().map(|j| j.named).collect();
    if let Err(e) = names.ensure(&tickets) {
        for j in batch {
            let _ = j.reply.try_send(Err(Error::Disk(std::io::Error::new(
                e.kind(),
                e.to_string(),
            ))));
        }
        return None;
    }
    let now_ms = crate::clock::now_ms();
    let results = store.write(|w| record(w, &batch, now_ms));
    match results {
        Ok(results) => {
            // Recorded: from here on each body is the outbox's. Its `tmp/` name is
            // durable, so the client hears before the fsync that ends the move into
            // `ready/` (recovery finishes a move a crash cut short).
            let recorded: Vec<String> = (batch.iter().zip(&results))
                .filter(|(_, r)| r.is_ok())
                .map(|(j, _)| j.upload.body.clone())
                .collect();
            let linked = super::ready::link(disk, tmp, ready, &recorded);
            for (j, r) in batch.into_iter().zip(results) {
                let _ = j.reply.try_send(r.map_err(Error::from));
            }
            Some(linked)
        }
        Err(e) => {
            let msg = e.to_string();
            for j in batch {
                let _ = j.reply.try_send(Err(if e.is_disk_full() {
                    Error::Full(super::DISK_FULL.into())
                } else {
                    Error::Commit(msg.clone())
                }));
            }
            None
        }
    }
}

/// Publishes each job's upload in `w`, one result per job: a refusal is that upload's
/// answer, a failing database everyone's (the error rolls the whole batch back). A
/// partial the upload continued (or superseded) is done with.
fn record(
    w: &Writer,
    batch: &[Job],
    now_ms: u64,
) -> crate::store::Result<Vec<crate::store::Result<Published>>> {
    let mut results = Vec::with_capacity(batch.len());
    let day = crate::localtime::day(now_ms);
    for j in batch {
        let p = &j.publish;
        let mut r = match w.publish(
            &p.pipe,
            &p.path,
            p.policy,
            p.create_dirs,
            j.upload.clone(),
            now_ms,
        ) {
            Err(e) if e.is_internal() => return Err(e),
            r => r,
        };
        if let Ok(published) = &mut r
            && let Some(old) = w.take_partial(&p.pipe, &p.path)?
            && old.body != j.upload.body
        {
            w.discard_bodies(std::slice::from_ref(&old.body))?;
            published.freed.push(old.body);
        }
        results.push(r);
    }
    // Their events and their Senders' activity ride in this same commit.
    let received: Vec<Received> = (batch.iter().zip(&results))
        .filter_map(|(j, r)| {
            let published = r.as_ref().ok()?;
            Some(Received {
                sender: &j.publish.sender,
                pipe: &j.publish.pipe,
                path: published.path.as_str(),
                size: j.upload.size,
                crc32c: j.upload.sum.hex(),
                proto: None,
            })
        })
        .collect();
    w.note_uploads(&received, now_ms, day)?;
    Ok(results)
}

impl Spool {
    /// Makes a completely received body durable and records it: fsync, then the group
    /// commit. On success the client may be told `226`; the returned path is where the
    /// file landed. On failure the body is left to the caller's cleanup (dropped: removed).
    pub async fn commit(
        self: &Arc<Self>,
        body: Body,
        publish: Publish,
    ) -> Result<(Published, u64, Checksum), (Body, Error)> {
        let (body, synced) = smol::unblock(move || {
            let mut body = body;
            let r = body.fresh_checksum().and_then(|_| body.sync());
            (body, r)
        })
        .await;
        if let Err(e) = synced {
            return Err((body, e.into()));
        }
        let upload = Upload {
            body: body.id.clone(),
            size: body.size(),
            sum: body.checksum(),
            mtime: publish.mtime,
            sender: publish.sender.clone(),
        };
        self.uploading();
        let (reply, answer) = bounded(1);
        if self
            .committer
            .jobs
            .send(Job {
                publish,
                upload: upload.clone(),
                named: body.named,
                reply,
            })
            .await
            .is_err()
        {
            return Err((
                body,
                Error::Disk(std::io::Error::other("the commit thread has stopped")),
            ));
        }
        match answer.recv().await {
            Ok(Ok(published)) => {
                let mut body = body;
                body.settle();
                if !published.freed.is_empty() {
                    let (spool, freed) = (self.clone(), published.freed.clone());
                    smol::unblock(move || spool.collect(&freed)).await;
                }
                Ok((published, upload.size, upload.sum))
            }
            Ok(Err(e)) => Err((body, e)),
            Err(_) => Err((
                body,
                Error::Disk(std::io::Error::other("the commit thread has stopped")),
            )),
        }
    }
}
