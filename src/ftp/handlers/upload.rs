//! STOR, APPE, STOU: the durable upload (DESIGN §3–§4).
//!
//! Refusals come before any data is accepted (path, overwrite policy, quota). The body
//! goes to the spool; only a clean end of the data stream makes it a candidate for
//! delivery, and `226` is sent only after the group commit has made it durable. A
//! transfer that ends badly is kept as a resumable partial and gets `426`.

use std::io;
use std::sync::atomic::AtomicBool;

use smol::io::AsyncWriteExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::auth::Login;
use crate::ftp::proto::Reply;
use crate::ftp::session::Session;
use crate::names::Overwrite;
use crate::spool::{Ended, Publish, receive};
use crate::store::View;
use crate::store::now_secs;
use crate::vfs::VPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stor,
    Appe,
    Stou,
}

impl Session {
    /// Where the upload goes and under which policy, or the refusal.
    async fn upload_target(
        &self,
        kind: Kind,
        arg: Option<String>,
    ) -> Result<(VPath, Overwrite), Reply> {
        let pipe = &self.login().pipe;
        let (path, policy) = match (kind, arg) {
            (Kind::Stou, None) => (
                self.cwd
                    .child(&format!("ftpgate-{}.dat", crate::names::random_token(10))),
                Overwrite::KeepBoth,
            ),
            (Kind::Stou, Some(a)) => (self.resolve(&a)?, Overwrite::KeepBoth),
            // Appending continues the same file; only `refuse` forbids touching it.
            (Kind::Appe, Some(a)) => (
                self.resolve(&a)?,
                if pipe.overwrite == Overwrite::Refuse {
                    Overwrite::Refuse
                } else {
                    Overwrite::Replace
                },
            ),
            (_, Some(a)) => (self.resolve(&a)?, pipe.overwrite),
            (_, None) => return Err(Reply::new(501, "A file name is needed.")),
        };
        let (id, p) = (pipe.id.clone(), path.clone());
        let resumes = kind == Kind::Appe || self.rest.is_some_and(|n| n > 0);
        let store = self.srv.store.clone();
        let checked = smol::unblock(move || {
            let r = store.read()?;
            // Continuing one's own partial is not an overwrite.
            if resumes && policy == Overwrite::Refuse && r.entry(&id, &p)?.is_none() {
                return r.check_upload(&id, &p, Overwrite::Replace);
            }
            r.check_upload(&id, &p, policy)
        })
        .await;
        match checked {
            Ok(target) => Ok((if kind == Kind::Stou { target } else { path }, policy)),
            Err(e) => Err(crate::ftp::errors::store(&e)),
        }
    }

    pub(crate) async fn upload(&mut self, kind: Kind, arg: Option<String>) -> io::Result<Reply> {
        let rest = self.rest.take();
        let (path, policy) = match self.upload_target(kind, arg).await {
            Ok(t) => t,
            Err(r) => {
                self.plan = Default::default();
                return Ok(r);
            }
        };
        let login = self.login().clone();
        let spool = self.srv.spool.clone();
        let body = match (kind, rest) {
            (Kind::Appe, _) => spool.resume(&login.pipe.id, &path, None).await,
            (_, Some(n)) if n > 0 => spool.resume(&login.pipe.id, &path, Some(n)).await,
            _ => spool.start().await,
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                self.plan = Default::default();
                return Ok(crate::ftp::errors::spool(&e));
            }
        };
        let start_size = body.size();
        let data = match self.open_data().await {
            Ok(d) => d,
            Err(r) => {
                drop_or_keep(body, &login, &path, start_size).await;
                return Ok(r);
            }
        };
        let opening = if kind == Kind::Stou {
            format!("FILE: {}", path.name())
        } else {
            format!("Ready to receive {path}.")
        };
        self.reply(Reply::new(150, opening)).await?;
        let mut data = match self.protect(data).await {
            Ok(d) => d,
            Err(r) => {
                drop_or_keep(body, &login, &path, start_size).await;
                return Ok(r);
            }
        };

        let started = Instant::now();
        let (abort_tx, abort_rx) = smol::channel::bounded(1);
        let abor = AtomicBool::new(false);
        let idle = self.data_timeout();
        let (body, ended) = {
            let Session {
                ctl,
                framer,
                pending,
                ..
            } = self;
            smol::future::or(receive(body, &mut data, idle, &abort_rx), async {
                Session::watch_control(ctl, framer, pending, &abort_tx, &abor).await;
                unreachable!("watch_control never returns")
            })
            .await
        };
        if matches!(ended, Ended::Complete) {
            // Answer the client's close_notify with ours (clients that unwrap wait for it).
            let _ = smol::future::or(async { data.close().await }, async {
                smol::Timer::after(Duration::from_secs(2)).await;
                Ok(())
            })
            .await;
        }
        drop(data);
        let received = body.size() - start_size;
        let secs = started.elapsed().as_secs_f64();
        let log_line = |result: &str, path: &VPath| {
            log::info!(
                "upload sender={} pipe={} path={path} bytes={received} seconds={secs:.3} rate={:.1}MB/s result={result}",
                login.sender.name,
                login.pipe.id,
                received as f64 / secs.max(1e-6) / 1e6
            );
        };
        let reply = match ended {
            Ended::Complete => {
                let publish = Publish {
                    pipe: login.pipe.id.clone(),
                    path: path.clone(),
                    policy,
                    sender: login.sender.name.clone(),
                    mtime: now_secs(),
                };
                match spool.commit(body, publish).await {
                    Ok((published, size, md5)) => {
                        self.srv.wake_forwarder();
                        log_line("ok", &published.path);
                        self.uploads += 1;
                        self.bytes += received;
                        self.srv.stats.uploads.fetch_add(1, Ordering::Relaxed);
                        self.srv.stats.bytes.fetch_add(received, Ordering::Relaxed);
                        Reply::new(
                            226,
                            format!(
                                "Stored {} ({size} bytes, MD5 {md5}), safe on disk.",
                                published.path
                            ),
                        )
                    }
                    Err((body, e)) => {
                        log_line(&format!("failed: {e}"), &path);
                        body.discard().await;
                        crate::ftp::errors::spool(&e)
                    }
                }
            }
            Ended::Full(why) => {
                log_line("spool full", &path);
                body.discard().await;
                crate::ftp::errors::spool(&crate::spool::Error::Full(why))
            }
            Ended::Disk(e) => {
                log_line(&format!("disk error ({e})"), &path);
                body.discard().await;
                crate::ftp::errors::spool(&crate::spool::Error::Disk(e))
            }
            broken => {
                let why = match &broken {
                    Ended::Aborted if abor.load(Ordering::Relaxed) => "aborted by ABOR".to_string(),
                    Ended::Aborted => "the control connection closed".to_string(),
                    Ended::TimedOut => format!("no data for {} seconds", idle.as_secs()),
                    Ended::Network(e) => e.to_string(),
                    _ => unreachable!(),
                };
                log_line(&format!("broken ({why})"), &path);
                let kept = body
                    .keep_partial(&login.pipe.id, &path, &login.sender.name)
                    .await
                    .unwrap_or(0);
                let text = format!(
                    "Transfer aborted ({why}); {kept} bytes kept: resume with REST {kept} and STOR, or APPE."
                );
                if abor.load(Ordering::Relaxed) {
                    self.reply(crate::ftp::errors::interrupted(&text)).await?;
                    Reply::new(226, "ABOR successful.")
                } else {
                    crate::ftp::errors::interrupted(&text)
                }
            }
        };
        Ok(reply)
    }
}

/// A transfer that never started: a continued partial stays as it was; a new body goes.
async fn drop_or_keep(body: crate::spool::Body, login: &Login, path: &VPath, size: u64) {
    if size > 0 {
        let _ = body
            .keep_partial(&login.pipe.id, path, &login.sender.name)
            .await;
    } else {
        body.discard().await;
    }
}
