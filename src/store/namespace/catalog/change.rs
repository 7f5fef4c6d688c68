//! The changes a client makes besides uploads and renames: `MKD`, `RMD`, `DELE` (which
//! cancels an undelivered put instead of queueing a delete where it can) and `MFMT`.

use super::*;

impl Writer {
    pub fn mkdir(&self, pipe: &str, path: &VPath, now: u64) -> Result<()> {
        if self.entry(pipe, path)?.is_some() {
            return Err(Error::Exists(path.to_string()));
        }
        check_parent(self, pipe, path)?;
        self.put_entry(
            pipe,
            path,
            &Entry {
                kind: Kind::Dir,
                size: 0,
                mtime: now,
                state: Delivery::Pending,
                body: None,
                sum: None,
                remote: true,
                // Kept one window from its making, then forgotten if it holds nothing.
                kept_since: Some(self.steady_ms),
            },
        )?;
        self.enqueue(
            pipe,
            Action::MkDir {
                path: path.to_string(),
            },
            now * 1000,
        )?;
        Ok(())
    }

    pub fn rmdir(&self, pipe: &str, path: &VPath, now: u64) -> Result<()> {
        match self.entry(pipe, path)? {
            None => return Err(Error::NotFound(path.to_string())),
            Some(e) if e.kind != Kind::Dir => return Err(Error::NotADirectory(path.to_string())),
            Some(_) if path.is_root() => return Err(Error::NotEmpty(path.to_string())),
            Some(_) => {}
        }
        if has_children(&self.txn.open_table(ENTRIES)?, pipe, path.as_str())? {
            return Err(Error::NotEmpty(path.to_string()));
        }
        self.remove_dir(pipe, path, now)
    }

    /// Deletes a file; returns spool bodies freed by cancelling its undelivered put.
    pub fn delete(&self, pipe: &str, path: &VPath, now: u64) -> Result<Vec<String>> {
        let e = match self.entry(pipe, path)? {
            None => return Err(Error::NotFound(path.to_string())),
            Some(e) if e.kind == Kind::Dir => return Err(Error::IsADirectory(path.to_string())),
            Some(e) => e,
        };
        let mut freed = Vec::new();
        let mut must_send = e.remote || e.state == Delivery::Delivered;
        match self.coalescable_put(pipe, path)? {
            Some(op) => {
                must_send |= op.attempts > 0;
                if let Action::Put { body, .. } = &self.remove_op(op.id)?.action {
                    freed.push(body.clone());
                }
                self.discard_bodies(&freed)?;
            }
            // A put is in flight or queued behind other ops: the object may appear.
            None => must_send |= e.state == Delivery::Pending,
        }
        if must_send {
            self.enqueue(
                pipe,
                Action::Delete {
                    path: path.to_string(),
                },
                now * 1000,
            )?;
        }
        self.remove_entry(pipe, path)?;
        Ok(freed)
    }

    /// Removes an (empty) directory and queues the removal of its marker.
    pub(super) fn remove_dir(&self, pipe: &str, path: &VPath, now: u64) -> Result<()> {
        self.remove_entry(pipe, path)?;
        self.enqueue(
            pipe,
            Action::RmDir {
                path: path.to_string(),
            },
            now * 1000,
        )?;
        Ok(())
    }

    /// `MFMT`: sets a file's modification time (and that of its queued put).
    pub fn set_mtime(&self, pipe: &str, path: &VPath, mtime: u64) -> Result<()> {
        let mut e = self
            .entry(pipe, path)?
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        if e.kind == Kind::Dir {
            return Err(Error::IsADirectory(path.to_string()));
        }
        e.mtime = mtime;
        self.put_entry(pipe, path, &e)?;
        if let Some(op) = self.coalescable_put(pipe, path)? {
            let mut action = op.action.clone();
            if let Action::Put { mtime: m, .. } = &mut action {
                *m = mtime;
            }
            self.rewrite_put(op, action)?;
        }
        Ok(())
    }
}
