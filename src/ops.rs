//! The Pipe namespace operations every protocol calls. FTP and SFTP
//! handlers translate a request into one of these and its result into a reply; the rules
//! (overwrite policies, `--create-dirs`, what a resumed upload continues, what a change
//! queues for the destination) live in [`crate::store::namespace`] and are reached only
//! through here, so the two protocols cannot drift apart.
//!
//! Each operation runs its store work off the executor, wakes the forwarder after a
//! change, frees the spool bodies a change cancels, and writes the one log line per
//! change or transfer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::auth::Login;
use crate::checksum::Checksum;
use crate::clock::now_secs;
use crate::gateway::server::Server;
use crate::spool::{self, Body, Publish};
use crate::store::catalog::{Entry, Kind as EntryKind};
use crate::store::events::{Event, Kind};
use crate::store::namespace::Overwrite;
use crate::store::{self, View};
use crate::vfs::VPath;

/// A change to the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Mkdir(VPath),
    Rmdir(VPath),
    Delete(VPath),
    /// An existing file at `to` is replaced (FTP `RNTO`, SFTP `posix-rename`).
    Rename {
        from: VPath,
        to: VPath,
    },
    SetMtime {
        path: VPath,
        mtime: u64,
    },
}

/// Where a committed upload landed, and what the client is told about it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Differs from the path asked for under `keep-both`, or for `STOU`.
    pub path: VPath,
    pub size: u64,
    pub sum: Checksum,
}

/// The operations of one logged-in session on its Pipe.
pub struct PipeOps<'a> {
    pub srv: &'a Arc<Server>,
    pub login: &'a Login,
}

impl PipeOps<'_> {
    fn pipe(&self) -> String {
        self.login.pipe.id.clone()
    }

    /// The catalog entry at `path` (the root always exists).
    pub async fn entry(&self, path: &VPath) -> store::Result<Option<Entry>> {
        let (pipe, p) = (self.pipe(), path.clone());
        self.srv.read(move |r| r.entry(&pipe, &p)).await
    }

    /// Up to `limit` entries of the directory `path` after the name `after`, in name
    /// order. A listing asks page by page, so it holds a page, never the directory.
    pub async fn list_page(
        &self,
        path: &VPath,
        after: Option<String>,
        limit: usize,
    ) -> store::Result<Vec<(String, Entry)>> {
        let (pipe, p) = (self.pipe(), path.clone());
        self.srv
            .read(move |r| r.children_page(&pipe, &p, after.as_deref(), limit))
            .await
    }

    /// The size of an upload in progress at `path` (a partial), else of the file there.
    pub async fn upload_size(&self, path: &VPath) -> store::Result<u64> {
        let (pipe, p) = (self.pipe(), path.clone());
        self.srv
            .read(move |r| {
                if let Some(partial) = r.partial(&pipe, &p)? {
                    return Ok(partial.size);
                }
                match r.entry(&pipe, &p)? {
                    Some(e) if e.kind == EntryKind::File => Ok(e.size),
                    Some(_) => Err(store::Error::IsADirectory(p.to_string())),
                    None => Err(store::Error::NotFound(p.to_string())),
                }
            })
            .await
    }

    /// Checks an upload to `path` under `policy` before any data is accepted, and returns
    /// the path it will land on (a free one under `keep-both`). Continuing one's own
    /// partial (`resumes`) is not an overwrite.
    pub async fn check_upload(
        &self,
        path: &VPath,
        policy: Overwrite,
        resumes: bool,
    ) -> store::Result<VPath> {
        let (pipe, p) = (self.pipe(), path.clone());
        let create_dirs = self.login.pipe.create_dirs;
        self.srv
            .read(move |r| {
                if resumes && policy == Overwrite::Refuse && r.entry(&pipe, &p)?.is_none() {
                    return r.check_upload(&pipe, &p, Overwrite::Replace, create_dirs);
                }
                r.check_upload(&pipe, &p, policy, create_dirs)
            })
            .await
    }

    /// A body for an upload to `path`: new, or continuing a partial or a queued file
    /// from `offset` (`None`: from its end).
    pub async fn start_body(
        &self,
        path: &VPath,
        resume: Option<Option<u64>>,
    ) -> Result<Body, spool::Error> {
        let spool = &self.srv.spool;
        match resume {
            None => spool.start().await,
            Some(offset) => spool.resume(&self.login.pipe.id, path, offset).await,
        }
    }

    /// Makes a completely received body durable and publishes it at `path`: the reply
    /// that acknowledges the upload may be sent once this returns `Ok`. On failure the
    /// body is discarded.
    pub async fn publish(
        &self,
        body: Body,
        path: &VPath,
        policy: Overwrite,
        received: u64,
    ) -> Result<Stored, spool::Error> {
        let publish = Publish {
            pipe: self.pipe(),
            path: path.clone(),
            policy,
            create_dirs: self.login.pipe.create_dirs,
            sender: self.login.sender.name.clone(),
            mtime: now_secs(),
        };
        match self.srv.spool.commit(body, publish).await {
            Ok((published, size, sum)) => {
                self.srv.wake_forwarder();
                let stats = &self.srv.stats;
                stats.uploads.fetch_add(1, Ordering::Relaxed);
                stats.bytes.fetch_add(received, Ordering::Relaxed);
                Ok(Stored {
                    path: published.path,
                    size,
                    sum,
                })
            }
            Err((body, e)) => {
                body.discard().await;
                Err(e)
            }
        }
    }

    /// The one log line per transfer; `proto` is `ftp` or `sftp`.
    pub fn log_upload(&self, proto: &str, path: &VPath, received: u64, secs: f64, result: &str) {
        log::info!(
            "upload proto={proto} sender={} pipe={} path={path} bytes={received} seconds={secs:.3} rate={:.1}MB/s result={result}",
            self.login.sender.name,
            self.login.pipe.id,
            received as f64 / secs.max(1e-6) / 1e6
        );
    }

    /// Keeps a broken upload as a resumable partial; returns the bytes kept. Its
    /// `upload.broken` event (saying `why`) rides in the partial's commit, or, when
    /// nothing is kept, goes with the next batch of events.
    pub async fn keep_partial(&self, body: Body, path: &VPath, why: &str) -> u64 {
        let l = self.login;
        let kept = body
            .keep_partial(&l.pipe.id, path, &l.sender.name, why)
            .await
            .unwrap_or(0);
        if kept == 0 {
            self.srv.events.event(Event {
                sender: Some(l.sender.name.clone()),
                pipe: Some(l.pipe.id.clone()),
                path: Some(path.to_string()),
                size: Some(0),
                reason: Some(why.to_string()),
                ..Event::of(Kind::UploadBroken)
            });
        }
        kept
    }

    /// Carries out `change` in one transaction (catalog and outbox together), frees the
    /// spool bodies it cancels, and logs it.
    pub async fn change(&self, change: &Change) -> store::Result<()> {
        let pipe = self.pipe();
        let c = change.clone();
        let sender = self.login.sender.name.clone();
        let freed = self
            .srv
            .write(move |w| {
                let now = now_secs();
                let freed = match &c {
                    Change::Mkdir(p) => w.mkdir(&pipe, p, now).map(|_| Vec::new()),
                    Change::Rmdir(p) => w.rmdir(&pipe, p, now).map(|_| Vec::new()),
                    Change::Delete(p) => w.delete(&pipe, p, now),
                    Change::Rename { from, to } => w.rename(&pipe, from, to, now),
                    Change::SetMtime { path, mtime } => {
                        w.set_mtime(&pipe, path, *mtime).map(|_| Vec::new())
                    }
                }?;
                // Its event rides in the same commit.
                let event = |kind| Event {
                    sender: Some(sender.clone()),
                    pipe: Some(pipe.clone()),
                    ..Event::of(kind)
                };
                let event = match &c {
                    Change::Delete(p) => Some(Event {
                        path: Some(p.to_string()),
                        ..event(Kind::FileDeleted)
                    }),
                    Change::Rename { from, to } => Some(Event {
                        path: Some(from.to_string()),
                        to: Some(to.to_string()),
                        ..event(Kind::FileRenamed)
                    }),
                    _ => None,
                };
                if let Some(e) = event {
                    w.record_event(e, crate::clock::now_ms())?;
                }
                Ok(freed)
            })
            .await?;
        self.srv.wake_forwarder();
        if !freed.is_empty() {
            let spool = self.srv.spool.clone();
            smol::unblock(move || spool.remove_bodies(&freed)).await;
        }
        let (who, pipe) = (&self.login.sender.name, &self.login.pipe.id);
        match change {
            Change::Mkdir(path) => log::info!("mkdir sender={who} pipe={pipe} path={path}"),
            Change::Rmdir(path) => log::info!("rmdir sender={who} pipe={pipe} path={path}"),
            Change::Delete(path) => log::info!("delete sender={who} pipe={pipe} path={path}"),
            Change::Rename { from, to } => {
                log::info!("rename sender={who} pipe={pipe} from={from} to={to}")
            }
            Change::SetMtime { .. } => {}
        }
        Ok(())
    }
}
