//! `RNFR`/`RNTO`: renaming a file (its queued put follows it when it can) or a whole
//! directory (every entry below it moves, in the same transaction).

use super::*;

impl Writer {
    /// Renames a file or a whole directory. An existing file at `to` is replaced.
    pub fn rename(&self, pipe: &str, from: &VPath, to: &VPath, now: u64) -> Result<Vec<String>> {
        let e = self
            .entry(pipe, from)?
            .ok_or_else(|| Error::NotFound(from.to_string()))?;
        if from.is_root() || to.is_root() {
            return Err(Error::IsADirectory("/".into()));
        }
        if from == to {
            return Ok(Vec::new());
        }
        if to.is_within(from) {
            return Err(Error::IntoItself(from.to_string()));
        }
        check_parent(self, pipe, to)?;
        let mut freed = Vec::new();
        match self.entry(pipe, to)? {
            Some(t) if t.kind == Kind::Dir => return Err(Error::IsADirectory(to.to_string())),
            Some(_) if e.kind == Kind::Dir => return Err(Error::Exists(to.to_string())),
            Some(_) => freed.extend(self.delete(pipe, to, now)?),
            None => {}
        }
        if e.kind == Kind::File {
            self.move_file(pipe, from, to, e, now)?;
            return Ok(freed);
        }
        let tree = subtree(&self.txn.open_table(ENTRIES)?, pipe, from)?;
        // The table must be closed before the calls below open it again.
        for (path, entry) in &tree {
            if entry.kind == Kind::Dir {
                let dest = path.rebase(from, to);
                self.put_entry(pipe, &dest, entry)?;
                self.enqueue(
                    pipe,
                    Action::MkDir {
                        path: dest.to_string(),
                    },
                    now * 1000,
                )?;
            }
        }
        for (path, entry) in &tree {
            if entry.kind == Kind::File {
                self.move_file(pipe, path, &path.rebase(from, to), entry.clone(), now)?;
            }
        }
        for (path, entry) in tree.iter().rev() {
            if entry.kind == Kind::Dir {
                self.remove_dir(pipe, path, now)?;
            }
        }
        Ok(freed)
    }

    fn move_file(
        &self,
        pipe: &str,
        from: &VPath,
        to: &VPath,
        mut e: Entry,
        now: u64,
    ) -> Result<()> {
        match self.coalescable_put(pipe, from)? {
            Some(op) => {
                // The undelivered put goes to the new name, queued again behind whatever
                // is already queued there (a delete of the file it replaces, say); an
                // older delivered version at the old name must go.
                let maybe_sent = op.attempts > 0;
                let mut action = self.remove_op(op.id)?.action;
                if let Action::Put { path, .. } = &mut action {
                    *path = to.to_string();
                }
                self.enqueue(pipe, action, now * 1000)?;
                if e.remote || maybe_sent {
                    self.enqueue(
                        pipe,
                        Action::Delete {
                            path: from.to_string(),
                        },
                        now * 1000,
                    )?;
                }
                e.remote = false;
            }
            None => {
                self.enqueue(
                    pipe,
                    Action::Rename {
                        from: from.to_string(),
                        to: to.to_string(),
                    },
                    now * 1000,
                )?;
                e.remote = true;
            }
        }
        self.remove_entry(pipe, from)?;
        self.put_entry(pipe, to, &e)
    }
}
