//! MKD, RMD, DELE, RNFR/RNTO, MFMT: changes to the namespace, each one redb transaction
//! that updates the catalog and queues the matching outbox op.

use crate::clock::now_secs;
use crate::ftp::core::Change;
use crate::ftp::proto::Reply;
use crate::ftp::proto::reply::quote_path;
use crate::ftp::proto::time::format_timeval;
use crate::ftp::session::Session;

impl Session {
    /// Carries out a change the core resolved; frees the spool bodies it cancels.
    pub(crate) async fn change(&self, change: Change) -> Reply {
        let pipe = self.login().pipe.id.clone();
        let sender = self.login().sender.name.clone();
        let c = change.clone();
        let done = self
            .srv
            .write(move |w| {
                let now = now_secs();
                match &c {
                    Change::Mkd(p) => w.mkdir(&pipe, p, &sender, now).map(|_| Vec::new()),
                    Change::Rmd(p) => w.rmdir(&pipe, p, now).map(|_| Vec::new()),
                    Change::Dele(p) => w.delete(&pipe, p, now),
                    Change::Rename { from, to } => w.rename(&pipe, from, to, now),
                    Change::Mfmt { path, mtime } => {
                        w.set_mtime(&pipe, path, *mtime).map(|_| Vec::new())
                    }
                }
            })
            .await;
        let freed = match done {
            Ok(freed) => freed,
            Err(e) => return crate::ftp::errors::store(&e),
        };
        self.srv.wake_forwarder();
        if !freed.is_empty() {
            let spool = self.srv.spool.clone();
            smol::unblock(move || spool.remove_bodies(&freed)).await;
        }
        let l = self.login();
        let (who, pipe) = (&l.sender.name, &l.pipe.id);
        match change {
            Change::Mkd(path) => {
                log::info!("mkdir sender={who} pipe={pipe} path={path}");
                Reply::new(257, format!("{} created.", quote_path(path.as_str())))
            }
            Change::Rmd(path) => {
                log::info!("rmdir sender={who} pipe={pipe} path={path}");
                Reply::new(250, format!("{path} removed."))
            }
            Change::Dele(path) => {
                log::info!("delete sender={who} pipe={pipe} path={path}");
                Reply::new(250, format!("{path} deleted."))
            }
            Change::Rename { from, to } => {
                log::info!("rename sender={who} pipe={pipe} from={from} to={to}");
                Reply::new(250, format!("Renamed {from} to {to}."))
            }
            Change::Mfmt { path, mtime } => {
                Reply::new(213, format!("Modify={}; {path}", format_timeval(mtime)))
            }
        }
    }
}
