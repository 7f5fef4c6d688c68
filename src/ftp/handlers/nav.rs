//! PWD, CWD, CDUP: moving within the Pipe's namespace (never outside it).

use crate::ftp::proto::Reply;
use crate::ftp::proto::reply::quote_path;
use crate::ftp::session::Session;
use crate::store::View;
use crate::store::catalog::{Entry, Kind};
use crate::vfs::VPath;

impl Session {
    pub(crate) fn pwd(&self) -> Reply {
        Reply::new(
            257,
            format!(
                "{} is the current directory.",
                quote_path(self.cwd.as_str())
            ),
        )
    }

    pub(crate) async fn cwd(&mut self, arg: &str) -> Reply {
        match self.lookup(arg).await {
            Ok((path, e)) if e.kind == Kind::Dir => {
                let text = format!("Directory changed to {path}.");
                self.cwd = path;
                Reply::new(250, text)
            }
            Ok((path, _)) => {
                crate::ftp::errors::store(&crate::store::Error::NotADirectory(path.to_string()))
            }
            Err(r) => r,
        }
    }

    /// Resolves `arg` and reads its catalog entry: the entry, or the reply to give.
    pub(crate) async fn lookup(&self, arg: &str) -> Result<(VPath, Entry), Reply> {
        let path = self.resolve(arg)?;
        let (pipe, p) = (self.login().pipe.id.clone(), path.clone());
        match self.srv.read(move |r| r.entry(&pipe, &p)).await {
            Ok(Some(e)) => Ok((path, e)),
            Ok(None) => Err(crate::ftp::errors::store(&crate::store::Error::NotFound(
                path.to_string(),
            ))),
            Err(e) => Err(crate::ftp::errors::store(&e)),
        }
    }
}
