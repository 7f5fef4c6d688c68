//! STOR, APPE, STOU: the durable upload (docs/ARCHITECTURE.md, "An upload, from socket to destination").
//!
//! The core has resolved the path, the overwrite policy and how the upload resumes;
//! refusals from the store and the spool still come before any data is accepted. The body
//! goes to the spool; only a clean end of the data stream makes it a candidate for
//! delivery, and `226` is sent only after the group commit has made it durable. A
//! transfer that ends badly is kept as a resumable partial and gets `426`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use smol::io::AsyncWriteExt;

use crate::ftp::core::{Resume, Upload, UploadKind};
use crate::ftp::datachan::Conn;
use crate::ftp::errors;
use crate::ftp::proto::Reply;
use crate::ftp::session::Session;
use crate::spool::{Body, Ended, receive};
use crate::store::namespace::Overwrite;
use crate::vfs::VPath;

/// How a transfer went, for the log and the reply.
struct Transfer {
    path: VPath,
    policy: Overwrite,
    received: u64,
    started: Instant,
    /// Ended by `ABOR` (rather than by the connection).
    abor: bool,
}

impl Session {
    pub(crate) async fn upload(&mut self, u: Upload) -> io::Result<Reply> {
        let path = match self.upload_target(&u).await {
            Ok(p) => p,
            Err(r) => return Ok(r),
        };
        let resume = match u.resume {
            Resume::End => Some(None),
            Resume::At(n) => Some(Some(n)),
            Resume::No => None,
        };
        let body = match self.ops().start_body(&path, resume).await {
            Ok(b) => b,
            Err(e) => return Ok(errors::spool(&e)),
        };
        let opening = match u.kind {
            UploadKind::Stou => format!("FILE: {}", path.name()),
            _ => format!("Ready to receive {path}."),
        };
        let data = match self.open_transfer(opening).await? {
            Ok(d) => d,
            Err(r) => {
                self.drop_or_keep(body, &path).await;
                return Ok(r);
            }
        };
        let start_size = body.size();
        let started = Instant::now();
        let (body, ended, abor) = self.receive_into(body, data).await;
        let t = Transfer {
            received: body.size() - start_size,
            path,
            policy: u.policy,
            started,
            abor,
        };
        self.settle(body, ended, t).await
    }

    /// Checks the upload against the catalog: the path it lands on (STOU picks a free
    /// one), or the refusal.
    async fn upload_target(&self, u: &Upload) -> Result<VPath, Reply> {
        let resumes = u.resume != Resume::No;
        match self.ops().check_upload(&u.path, u.policy, resumes).await {
            Ok(target) if u.kind == UploadKind::Stou => Ok(target),
            Ok(_) => Ok(u.path.clone()),
            Err(e) => Err(errors::store(&e)),
        }
    }

    /// Receives the data connection into `body`, watching the control connection for
    /// `ABOR` meanwhile; answers the client's TLS close_notify after a clean end.
    async fn receive_into(&mut self, body: Body, data: Box<dyn Conn>) -> (Body, Ended, bool) {
        let (abort_tx, abort_rx) = smol::channel::bounded(1);
        let abor = AtomicBool::new(false);
        let idle = self.data_timeout();
        let (body, ended, mut data) = {
            let Session {
                ctl,
                framer,
                pending,
                ..
            } = self;
            smol::future::or(receive(body, data, idle, abort_rx), async {
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
        (body, ended, abor.load(Ordering::Relaxed))
    }

    /// What becomes of the body: committed (`226`), refused (`452`/`451`), or kept as a
    /// partial (`426`).
    async fn settle(&mut self, body: Body, ended: Ended, t: Transfer) -> io::Result<Reply> {
        let reply = match ended {
            Ended::Complete => match self
                .ops()
                .publish(body, &t.path, t.policy, t.received)
                .await
            {
                Ok(stored) => {
                    self.log_upload(&t, &stored.path, "ok");
                    self.uploads += 1;
                    self.bytes += t.received;
                    let (path, size, sum) = (&stored.path, stored.size, &stored.sum);
                    let text = format!(
                        "Stored {path} ({size} bytes, {} {}), safe on disk.",
                        sum.algorithm(),
                        sum.hex()
                    );
                    Reply::new(226, text)
                }
                Err(e) => {
                    self.log_upload(&t, &t.path, &format!("failed: {e}"));
                    errors::spool(&e)
                }
            },
            Ended::Full(why) => {
                self.log_upload(&t, &t.path, "spool full");
                body.discard().await;
                errors::spool(&crate::spool::Error::Full(why))
            }
            Ended::Disk(e) => {
                self.log_upload(&t, &t.path, &format!("disk error ({e})"));
                body.discard().await;
                errors::spool(&crate::spool::Error::Disk(e))
            }
            Ended::Aborted if t.abor => {
                return self.broken(body, &t, "aborted by ABOR".into()).await;
            }
            Ended::Aborted => {
                let why = "the control connection closed".to_string();
                return self.broken(body, &t, why).await;
            }
            Ended::TimedOut => {
                let why = format!("no data for {} seconds", self.data_timeout().as_secs());
                return self.broken(body, &t, why).await;
            }
            Ended::Network(e) => return self.broken(body, &t, e.to_string()).await,
        };
        Ok(reply)
    }

    /// A transfer that broke: what arrived is kept for resumption; `426` (and after
    /// `ABOR`, `226` for the abort itself).
    async fn broken(&mut self, body: Body, t: &Transfer, why: String) -> io::Result<Reply> {
        self.log_upload(t, &t.path, &format!("broken ({why})"));
        let kept = self.ops().keep_partial(body, &t.path, &why).await;
        let text = format!(
            "Transfer aborted ({why}); {kept} bytes kept: resume with REST {kept} and STOR, or APPE."
        );
        if !t.abor {
            return Ok(errors::interrupted(&text));
        }
        self.reply(errors::interrupted(&text)).await?;
        Ok(Reply::new(226, "ABOR successful."))
    }

    fn log_upload(&self, t: &Transfer, path: &VPath, result: &str) {
        let secs = t.started.elapsed().as_secs_f64();
        self.ops().log_upload("ftp", path, t.received, secs, result);
    }

    /// A transfer that never started: a continued partial stays as it was; a new body
    /// goes.
    async fn drop_or_keep(&self, body: Body, path: &VPath) {
        if body.size() > 0 {
            self.ops()
                .keep_partial(body, path, "the transfer never started")
                .await;
        } else {
            body.discard().await;
        }
    }
}
