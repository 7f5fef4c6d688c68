//! The requests that are not writes: names, listings, attributes and changes, each one
//! translated into a [`crate::ops::PipeOps`] call and its answer into a reply.

use super::{Handle, Session, handle_number};
use crate::clock::now_secs;
use crate::gateway::listing::ls_line;
use crate::ops::Change;
use crate::sftp::errors::{self, Refusal};
use crate::sftp::proto::{Attrs, FileAttrs, NameEntry, Request, Status, response};
use crate::store::catalog::{Entry, Kind};
use crate::store::namespace::Overwrite;
use crate::vfs::VPath;

/// Entries per `SSH_FXP_NAME` reply to `READDIR` (OpenSSH sends 100).
const NAMES_PER_REPLY: usize = 100;

/// `st_mode` of a directory: `rwx------`, as in FTP listings.
pub(super) const DIR_MODE: u32 = 0o040_700;
/// `st_mode` of a file that may be written: `-w-------` (nothing is read back).
pub(super) const FILE_MODE: u32 = 0o100_200;

/// What a client sees of an entry: directories `rwx------`, files write-only (or no
/// permission at all where the Pipe refuses overwrites), as in FTP listings.
pub(super) fn attrs_of(e: &Entry, policy: Overwrite) -> FileAttrs {
    let mode = match (e.kind, policy) {
        (Kind::Dir, _) => DIR_MODE,
        (Kind::File, Overwrite::Refuse) => 0o100_000,
        (Kind::File, _) => FILE_MODE,
    };
    FileAttrs {
        size: e.size,
        mode,
        mtime: e.mtime,
    }
}

impl Session {
    /// A client path, resolved in the Pipe's namespace (the session's home is its root).
    pub(super) fn resolve(&self, path: &str) -> Result<VPath, Refusal> {
        VPath::root().resolve(path).map_err(|e| errors::path(&e))
    }

    pub(super) async fn request(&mut self, id: u32, request: Request<'_>) {
        let request = match request {
            Request::Write {
                handle,
                offset,
                data,
            } => {
                self.queue_write(id, handle, offset, data).await;
                return;
            }
            // Every other reply goes after the replies to the writes before it.
            other => {
                self.write_batch().await;
                other
            }
        };
        let result = match request {
            Request::Open { path, flags, attrs } => self.open(id, path, flags, attrs).await,
            Request::Close { handle } => self.close(id, handle).await,
            Request::Read { .. } => Err(errors::no_reading()),
            // Queued above.
            Request::Write { .. } => Ok(()),
            Request::Fstat { handle } => self.fstat(id, handle),
            Request::Fsetstat { handle, attrs } => self.fsetstat(id, handle, attrs),
            Request::Lstat { path } | Request::Stat { path } => self.stat(id, path).await,
            Request::Setstat { path, attrs } => self.setstat(id, path, attrs).await,
            Request::Opendir { path } => self.opendir(id, path).await,
            Request::Readdir { handle } => self.readdir(id, handle).await,
            Request::Remove { path } => self.change(id, path, Change::Delete).await,
            Request::Mkdir { path, .. } => self.change(id, path, Change::Mkdir).await,
            Request::Rmdir { path } => self.change(id, path, Change::Rmdir).await,
            Request::Realpath { path } => self.realpath(id, path),
            Request::Rename { from, to, posix } => self.rename(id, from, to, posix).await,
            Request::Readlink { .. } | Request::Symlink => Err((
                Status::OpUnsupported,
                "this gateway has no symbolic links".into(),
            )),
            Request::Limits => {
                self.out.extend_from_slice(&response::limits(id));
                Ok(())
            }
            Request::Extended { name } => Err((
                Status::OpUnsupported,
                format!("extension {name} is not supported by this gateway"),
            )),
        };
        if let Err(refusal) = result {
            self.status(id, refusal);
        }
    }

    fn realpath(&mut self, id: u32, path: &str) -> Result<(), Refusal> {
        let p = self.resolve(if path.is_empty() { "." } else { path })?;
        self.out
            .extend_from_slice(&response::realpath(id, p.as_str()));
        Ok(())
    }

    /// `STAT`/`LSTAT`: the catalog entry; an upload in progress (a partial) shows its size,
    /// so a client resuming it knows where to continue.
    async fn stat(&mut self, id: u32, path: &str) -> Result<(), Refusal> {
        let p = self.resolve(path)?;
        let policy = self.login.pipe.overwrite;
        let attrs = match self.ops().entry(&p).await {
            Ok(Some(e)) => attrs_of(&e, policy),
            Ok(None) => match self.ops().upload_size(&p).await {
                Ok(size) => FileAttrs {
                    size,
                    mode: FILE_MODE,
                    mtime: now_secs(),
                },
                Err(e) => return Err(errors::store(&e)),
            },
            Err(e) => return Err(errors::store(&e)),
        };
        self.out.extend_from_slice(&response::attrs(id, &attrs));
        Ok(())
    }

    /// `SETSTAT`: a file's modification time is kept (and delivered to a directory
    /// destination); permissions and owners are accepted and ignored, a size is refused.
    async fn setstat(&mut self, id: u32, path: &str, attrs: Attrs) -> Result<(), Refusal> {
        let p = self.resolve(path)?;
        if attrs.size.is_some() {
            return Err(size_change());
        }
        if let Some((_, mtime)) = attrs.times {
            match self.ops().entry(&p).await {
                Ok(Some(e)) if e.kind == Kind::Dir => {}
                Ok(_) => {
                    let change = Change::SetMtime {
                        path: p,
                        mtime: mtime.into(),
                    };
                    self.ops()
                        .change(&change)
                        .await
                        .map_err(|e| errors::store(&e))?;
                }
                Err(e) => return Err(errors::store(&e)),
            }
        }
        self.ok(id);
        Ok(())
    }

    async fn opendir(&mut self, id: u32, path: &str) -> Result<(), Refusal> {
        let p = self.resolve(path)?;
        match self.ops().entry(&p).await {
            Ok(Some(e)) if e.kind == Kind::Dir => {}
            Ok(Some(_)) => {
                return Err(errors::store(&crate::store::Error::NotADirectory(
                    p.to_string(),
                )));
            }
            Ok(None) => return Err(errors::store(&crate::store::Error::NotFound(p.to_string()))),
            Err(e) => return Err(errors::store(&e)),
        }
        let h = self.new_handle(Handle::Dir {
            path: p,
            after: None,
        })?;
        self.out.extend_from_slice(&response::handle(id, &h));
        Ok(())
    }

    async fn readdir(&mut self, id: u32, handle: &[u8]) -> Result<(), Refusal> {
        let policy = self.login.pipe.overwrite;
        let now = now_secs();
        let number = handle_number(handle).ok_or_else(bad_handle)?;
        let Some(Handle::Dir { path, after }) = self.handles.get(&number) else {
            return Err(bad_handle());
        };
        let (path, after) = (path.clone(), after.clone());
        let page = self
            .ops()
            .list_page(&path, after, NAMES_PER_REPLY)
            .await
            .map_err(|e| errors::store(&e))?;
        let Some((last, _)) = page.last() else {
            return Err((Status::Eof, "end of the listing".into()));
        };
        if let Some(Handle::Dir { after, .. }) = self.handles.get_mut(&number) {
            *after = Some(last.clone());
        }
        let names: Vec<NameEntry> = page
            .iter()
            .map(|(name, e)| NameEntry {
                name: name.clone(),
                long: ls_line(name, e, now, policy),
                attrs: attrs_of(e, policy),
            })
            .collect();
        self.out.extend_from_slice(&response::names(id, &names));
        Ok(())
    }

    async fn change(
        &mut self,
        id: u32,
        path: &str,
        make: impl FnOnce(VPath) -> Change,
    ) -> Result<(), Refusal> {
        let p = self.resolve(path)?;
        if p.is_root() {
            return Err((
                Status::PermissionDenied,
                "the root cannot be changed".into(),
            ));
        }
        self.ops()
            .change(&make(p))
            .await
            .map_err(|e| errors::store(&e))?;
        self.ok(id);
        Ok(())
    }

    /// `RENAME` fails if the target exists (SFTP version 3); `posix-rename@openssh.com`
    /// replaces a file there, as FTP's `RNTO` does.
    async fn rename(&mut self, id: u32, from: &str, to: &str, posix: bool) -> Result<(), Refusal> {
        let (from, to) = (self.resolve(from)?, self.resolve(to)?);
        if !posix && from != to {
            match self.ops().entry(&to).await {
                Ok(Some(_)) => {
                    return Err(errors::store(&crate::store::Error::Exists(to.to_string())));
                }
                Ok(None) => {}
                Err(e) => return Err(errors::store(&e)),
            }
        }
        self.ops()
            .change(&Change::Rename { from, to })
            .await
            .map_err(|e| errors::store(&e))?;
        self.ok(id);
        Ok(())
    }
}

pub(super) fn bad_handle() -> Refusal {
    (Status::Failure, "no such handle in this session".into())
}

pub(super) fn size_change() -> Refusal {
    (
        Status::OpUnsupported,
        "changing a file's size is not supported: upload it again".into(),
    )
}
