//! Questions about one path of the Pipe's namespace (never outside it): SIZE, MDTM,
//! MLST, STAT path, and the lookups behind CWD and RNFR, whose state the core keeps.

use crate::ftp::core::Query;
use crate::ftp::proto::Reply;
use crate::ftp::session::Session;
use crate::store;
use crate::store::catalog::{Entry, Kind};
use crate::vfs::VPath;

impl Session {
    pub(crate) async fn query(&mut self, query: Query, path: VPath, arg: &str) -> Reply {
        match query {
            Query::Size => return self.size(path).await,
            Query::Stat => return self.stat_path(path, arg).await,
            Query::Mdtm | Query::Mlst | Query::Cwd | Query::Rnfr => {}
        }
        let e = match self.lookup(&path).await {
            Ok(e) => e,
            Err(r) => return r,
        };
        match query {
            Query::Mdtm => Session::mdtm(&path, &e),
            Query::Cwd if e.kind == Kind::Dir => self.core.entered(path),
            Query::Cwd => crate::ftp::errors::store(&store::Error::NotADirectory(path.to_string())),
            Query::Rnfr => self.core.rename_from(path),
            // SIZE and STAT were answered above.
            Query::Mlst | Query::Size | Query::Stat => self.mlst(&path, &e),
        }
    }

    /// The catalog entry of `path`, or the reply to give.
    pub(crate) async fn lookup(&self, path: &VPath) -> Result<Entry, Reply> {
        match self.ops().entry(path).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(crate::ftp::errors::store(&store::Error::NotFound(
                path.to_string(),
            ))),
            Err(e) => Err(crate::ftp::errors::store(&e)),
        }
    }
}
