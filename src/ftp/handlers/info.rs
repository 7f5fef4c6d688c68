//! STAT (the server's), SIZE, MDTM, MLST (RFC 959, RFC 3659): answers from the counters
//! and the catalog; FEAT, OPTS and HELP are the core's.

use std::sync::atomic::Ordering;

use crate::calendar::format_timeval;
use crate::ftp::listing::mlsx_line;
use crate::ftp::proto::Reply;
use crate::ftp::session::Session;
use crate::store;
use crate::store::catalog::{Entry, Kind};
use crate::vfs::VPath;

impl Session {
    pub(crate) fn status(&self) -> Reply {
        let login = self.login();
        let stats = &self.srv.stats;
        Reply::multi(
            211,
            "ftpgate status:",
            vec![
                format!("Connected from {}", self.peer),
                format!(
                    "Logged in as {} into pipe {} ({})",
                    login.sender.name, login.pipe.id, login.pipe.name
                ),
                format!(
                    "This session: {} uploads, {} bytes",
                    self.uploads, self.bytes
                ),
                format!(
                    "Gateway: {} sessions, {} uploads",
                    stats.sessions.load(Ordering::Relaxed),
                    stats.uploads.load(Ordering::Relaxed)
                ),
            ],
            "End of status",
        )
    }

    /// `SIZE`: a partial (what a resuming client asks about) wins over the finished file.
    pub(crate) async fn size(&self, path: VPath) -> Reply {
        match self.ops().upload_size(&path).await {
            Ok(size) => Reply::new(213, size.to_string()),
            Err(e) => crate::ftp::errors::store(&e),
        }
    }

    /// `MDTM`
    pub(crate) fn mdtm(path: &VPath, e: &Entry) -> Reply {
        match e.kind {
            Kind::File => Reply::new(213, format_timeval(e.mtime)),
            Kind::Dir => crate::ftp::errors::store(&store::Error::IsADirectory(path.to_string())),
        }
    }

    /// `MLST`
    pub(crate) fn mlst(&self, path: &VPath, e: &Entry) -> Reply {
        let policy = self.login().pipe.overwrite;
        Reply::multi(
            250,
            format!("Listing {path}"),
            vec![mlsx_line(path.as_str(), e, policy)],
            "End",
        )
    }
}
