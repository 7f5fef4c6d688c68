//! MKD, RMD, DELE, RNFR/RNTO, MFMT: changes to the namespace, each one redb transaction
//! that updates the catalog and queues the matching outbox op.

use crate::ftp::proto::Reply;
use crate::ftp::proto::reply::quote_path;
use crate::ftp::proto::time::format_timeval;
use crate::ftp::session::Session;
use crate::store::{self, Writer, now_secs};
use crate::vfs::VPath;

impl Session {
    /// Runs a namespace change for this session's Pipe; frees spool bodies it cancels.
    async fn change(
        &self,
        f: impl FnOnce(&Writer, &str) -> store::Result<Vec<String>> + Send + 'static,
    ) -> Result<(), Reply> {
        let pipe = self.login().pipe.id.clone();
        match self.srv.write(move |w| f(w, &pipe)).await {
            Ok(freed) => {
                self.srv.wake_forwarder();
                if !freed.is_empty() {
                    let spool = self.srv.spool.clone();
                    smol::unblock(move || spool.remove_bodies(&freed)).await;
                }
                Ok(())
            }
            Err(e) => Err(crate::ftp::errors::store(&e)),
        }
    }

    fn log_change(&self, what: &str, path: &VPath) {
        let l = self.login();
        log::info!(
            "{what} sender={} pipe={} path={path}",
            l.sender.name,
            l.pipe.id
        );
    }

    pub(crate) async fn mkd(&self, arg: &str) -> Reply {
        let path = match self.resolve(arg) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let (p, sender) = (path.clone(), self.login().sender.name.clone());
        match self
            .change(move |w, pipe| w.mkdir(pipe, &p, &sender, now_secs()).map(|_| Vec::new()))
            .await
        {
            Ok(()) => {
                self.log_change("mkdir", &path);
                Reply::new(257, format!("{} created.", quote_path(path.as_str())))
            }
            Err(r) => r,
        }
    }

    pub(crate) async fn rmd(&self, arg: &str) -> Reply {
        let path = match self.resolve(arg) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let p = path.clone();
        match self
            .change(move |w, pipe| w.rmdir(pipe, &p, now_secs()).map(|_| Vec::new()))
            .await
        {
            Ok(()) => {
                self.log_change("rmdir", &path);
                Reply::new(250, format!("{path} removed."))
            }
            Err(r) => r,
        }
    }

    pub(crate) async fn dele(&self, arg: &str) -> Reply {
        let path = match self.resolve(arg) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let p = path.clone();
        match self
            .change(move |w, pipe| w.delete(pipe, &p, now_secs()))
            .await
        {
            Ok(()) => {
                self.log_change("delete", &path);
                Reply::new(250, format!("{path} deleted."))
            }
            Err(r) => r,
        }
    }

    pub(crate) async fn rnfr(&mut self, arg: &str) -> Reply {
        match self.lookup(arg).await {
            Ok((path, _)) => {
                let text = format!("{path} exists; send RNTO with the new name.");
                self.rnfr = Some(path);
                Reply::new(350, text)
            }
            Err(r) => r,
        }
    }

    pub(crate) async fn rnto(&mut self, arg: &str) -> Reply {
        let Some(from) = self.rnfr.take() else {
            return Reply::new(503, "Send RNFR first.");
        };
        let to = match self.resolve(arg) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let (f, t) = (from.clone(), to.clone());
        match self
            .change(move |w, pipe| w.rename(pipe, &f, &t, now_secs()))
            .await
        {
            Ok(()) => {
                let l = self.login();
                log::info!(
                    "rename sender={} pipe={} from={from} to={to}",
                    l.sender.name,
                    l.pipe.id
                );
                Reply::new(250, format!("Renamed {from} to {to}."))
            }
            Err(r) => r,
        }
    }

    pub(crate) async fn mfmt(&self, mtime: u64, arg: &str) -> Reply {
        let path = match self.resolve(arg) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let p = path.clone();
        match self
            .change(move |w, pipe| w.set_mtime(pipe, &p, mtime).map(|_| Vec::new()))
            .await
        {
            Ok(()) => Reply::new(213, format!("Modify={}; {path}", format_timeval(mtime))),
            Err(r) => r,
        }
    }
}
