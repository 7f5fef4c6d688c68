//! MKD, RMD, DELE, RNFR/RNTO, MFMT: changes to the namespace, carried out by
//! [`crate::ops::PipeOps::change`] (one redb transaction that updates the catalog and
//! queues the matching outbox op).

use crate::calendar::format_timeval;
use crate::ftp::core::Change;
use crate::ftp::proto::Reply;
use crate::ftp::proto::reply::quote_path;
use crate::ftp::session::Session;

impl Session {
    /// Carries out a change the core resolved.
    pub(crate) async fn change(&self, change: Change) -> Reply {
        if let Err(e) = self.ops().change(&change).await {
            return crate::ftp::errors::store(&e);
        }
        match change {
            Change::Mkdir(path) => {
                Reply::new(257, format!("{} created.", quote_path(path.as_str())))
            }
            Change::Rmdir(path) => Reply::new(250, format!("{path} removed.")),
            Change::Delete(path) => Reply::new(250, format!("{path} deleted.")),
            Change::Rename { from, to } => Reply::new(250, format!("Renamed {from} to {to}.")),
            Change::SetMtime { path, mtime } => {
                Reply::new(213, format!("Modify={}; {path}", format_timeval(mtime)))
            }
        }
    }
}
