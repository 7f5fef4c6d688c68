//! LIST, NLST, MLSD over the data connection, and STAT with a path over the control
//! connection. Served from the catalog.

use std::io;

use smol::io::AsyncWriteExt;

use crate::clock::now_secs;
use crate::ftp::listing::{Style, render};
use crate::ftp::proto::Reply;
use crate::ftp::session::Session;
use crate::gateway::listing::ls_line;
use crate::store::catalog::{Entry, Kind};
use crate::vfs::VPath;

/// Entries read from the catalog at a time: a listing holds one page, however large the
/// directory (docs/ARCHITECTURE.md, "Bounds").
const PAGE: usize = 512;

impl Session {
    /// The first page of what a listing of `path` (as the client named it: `arg`)
    /// shows: a directory's children, or the file itself.
    async fn entries(
        &self,
        path: &VPath,
        arg: Option<&str>,
        style: Style,
    ) -> Result<Vec<(String, Entry)>, Reply> {
        let e = self.lookup(path).await?;
        if e.kind == Kind::File {
            if style == Style::Machine {
                return Err(Reply::new(
                    501,
                    format!("{path} is not a directory; use MLST for a single file."),
                ));
            }
            let name = if style == Style::Names {
                arg.unwrap_or(path.name()).to_string()
            } else {
                path.name().to_string()
            };
            return Ok(vec![(name, e)]);
        }
        self.ops()
            .list_page(path, None, PAGE)
            .await
            .map_err(|e| crate::ftp::errors::store(&e))
    }

    pub(crate) async fn listing(
        &mut self,
        style: Style,
        path: VPath,
        arg: Option<String>,
    ) -> io::Result<Reply> {
        let entries = match self.entries(&path, arg.as_deref(), style).await {
            Ok(e) => e,
            Err(r) => return Ok(r),
        };
        let opening = "Here comes the listing.".to_string();
        let mut data = match self.open_transfer(opening).await? {
            Ok(d) => d,
            Err(r) => return Ok(r),
        };
        let policy = self.login().pipe.overwrite;
        let mut sent_entries = 0;
        let sent = async {
            let mut page = entries;
            loop {
                data.write_all(&render(&page, style, now_secs(), policy))
                    .await?;
                sent_entries += page.len();
                if page.len() < PAGE {
                    break;
                }
                let after = page.last().map(|(name, _)| name.clone());
                page = self
                    .ops()
                    .list_page(&path, after, PAGE)
                    .await
                    .map_err(|e| io::Error::other(format!("the catalog failed: {e}")))?;
            }
            data.flush().await?;
            data.close().await
        };
        let timeout = self.data_timeout();
        let result = smol::future::or(sent, async {
            smol::Timer::after(timeout).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        })
        .await;
        Ok(match result {
            Ok(()) => Reply::new(226, format!("Listing sent ({sent_entries} entries).")),
            Err(e) => crate::ftp::errors::interrupted(&format!("Listing interrupted: {e}.")),
        })
    }

    /// `STAT path`: the listing over the control connection (RFC 959 §4.1.3).
    pub(crate) async fn stat_path(&self, path: VPath, arg: &str) -> Reply {
        // One page at most: a reply on the control connection is no place for a
        // directory of thousands (LIST streams them).
        match self.entries(&path, Some(arg), Style::Long).await {
            Ok(entries) => {
                let now = now_secs();
                let policy = self.login().pipe.overwrite;
                let lines = entries
                    .iter()
                    .map(|(n, e)| ls_line(n, e, now, policy))
                    .collect();
                Reply::multi(213, format!("Status of {arg}:"), lines, "End of status")
            }
            Err(r) => r,
        }
    }
}
