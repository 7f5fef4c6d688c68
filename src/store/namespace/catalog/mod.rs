//! The catalog: each Pipe's namespace (directories and files with size, mtime and
//! delivery state), changed together with the outbox in one transaction, so what a
//! listing shows and what the forwarder will do never disagree.
//!
//! Coalescing happens here: a `DELE` of an undelivered file cancels its put,
//! a rename of one queues its put again under the new name, a replacing `STOR` swaps its
//! body. Only a put that is the last op on its key and is not being delivered right now
//! is ever rewritten (see [`super`]); everything else is queued in order.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::outbox::{Action, Op};
use super::schema::{ENTRIES, KEEP_BOTH, PARTIALS, REMEMBERED};
use crate::checksum::Checksum;
use crate::store::namespace::Overwrite;
use crate::store::{Error, Result, View, Writer, decode};
use crate::vfs::VPath;

mod change;
mod codec;
pub mod expire;
mod migrate;
mod read;
mod rename;

pub(crate) use read::{entry, list_page, remembered, split};
use read::{has_children, subtree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dir,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    #[default]
    Pending,
    Delivered,
}

/// One name in a Pipe's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    #[serde(default)]
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    #[serde(default)]
    pub state: Delivery,
    /// Spool body of the newest version while it awaits delivery.
    #[serde(default)]
    pub body: Option<String>,
    /// The newest version's checksum (`md5` in version 0.1's records).
    #[serde(default, alias = "md5")]
    pub sum: Option<Checksum>,
    /// Some version of this key has reached (or is being sent to) the destination, so a
    /// delete or rename must be sent there too.
    #[serde(default)]
    pub remote: bool,
    /// Remembered from this steady-clock time (ms) and forgotten one retention window
    /// later: a delivered file, or a directory with nothing under it. `None`: kept until
    /// something changes (undelivered files are never forgotten). See [`expire`].
    #[serde(default)]
    pub kept_since: Option<u64>,
}

/// What an upload adds to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub body: String,
    pub size: u64,
    pub sum: Checksum,
    pub mtime: u64,
    pub sender: String,
}

/// Result of [`Writer::publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Where the file landed (differs from the request under `keep-both`).
    pub path: VPath,
    /// Spool bodies no longer needed (a replaced undelivered version).
    pub freed: Vec<String>,
}

/// Checks that `path`'s parent is a directory.
fn check_parent(v: &impl View, pipe: &str, path: &VPath) -> Result<()> {
    let parent = path.parent().unwrap_or_else(VPath::root);
    match v.entry(pipe, &parent)? {
        Some(e) if e.kind == Kind::Dir => Ok(()),
        Some(_) => Err(Error::NotADirectory(parent.to_string())),
        None => Err(Error::NoParent(path.to_string())),
    }
}

/// Where an upload to `path` may go under `policy`, before any data is accepted:
/// `Ok(path)` or the refusal the client should get. Under keep-both the name is only a
/// candidate until [`Writer::publish`] settles it.
pub(crate) fn check_upload(
    v: &impl View,
    pipe: &str,
    path: &VPath,
    policy: Overwrite,
    create_dirs: bool,
) -> Result<VPath> {
    if path.is_root() {
        return Err(Error::IsADirectory(path.to_string()));
    }
    match check_parent(v, pipe, path) {
        // Missing directories will be made, unless a file stands where one must go.
        Err(Error::NoParent(_)) if create_dirs => {
            for dir in ancestors(path) {
                match v.entry(pipe, &dir)? {
                    Some(e) if e.kind == Kind::File => {
                        return Err(Error::NotADirectory(dir.to_string()));
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        }
        checked => checked?,
    }
    match v.entry(pipe, path)? {
        None => Ok(path.clone()),
        Some(e) if e.kind == Kind::Dir => Err(Error::IsADirectory(path.to_string())),
        Some(_) => match policy {
            Overwrite::Replace => Ok(path.clone()),
            Overwrite::Refuse => Err(Error::OverwriteRefused(path.to_string())),
            Overwrite::KeepBoth => Ok(free_name(v, pipe, path)?.0),
        },
    }
}

/// The directories above `path`, outermost first (`/a/b/c` → `/a`, `/a/b`).
fn ancestors(path: &VPath) -> Vec<VPath> {
    let mut out = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| !d.is_root()) {
        dir = d.parent();
        out.push(d);
    }
    out.reverse();
    out
}

/// `name-N.ext` for the first free N from the suffix last handed out for `path` (so a
/// camera that always sends `img.jpg` costs one look-up, not one per earlier copy), and
/// the N to start from next time.
fn free_name(v: &impl View, pipe: &str, path: &VPath) -> Result<(VPath, u64)> {
    let name = path.name();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let parent = path.parent().unwrap_or_else(VPath::root);
    let start = v
        .table(KEEP_BOTH)?
        .get((pipe, path.as_str()))?
        .map_or(2, |n| n.value());
    for n in start.. {
        let name = format!("{stem}-{n}{ext}");
        // Client names are at most 255 bytes (vfs): the suffix must not make one longer,
        // or the destination would refuse it long after the 226.
        if name.len() > crate::vfs::MAX_NAME {
            return Err(Error::DerivedNameTooLong(path.to_string()));
        }
        let candidate = parent.child(&name);
        if v.entry(pipe, &candidate)?.is_none() {
            return Ok((candidate, n + 1));
        }
    }
    unreachable!("some suffix is free")
}

impl Writer {
    /// Writes the entry at `path`, keeping [`REMEMBERED`] in step with its `kept_since`.
    fn put_entry(&self, pipe: &str, path: &VPath, e: &Entry) -> Result<()> {
        let (parent, name) = split(path.as_str());
        let old = self
            .txn
            .open_table(ENTRIES)?
            .insert((pipe, parent, name), codec::encode(e).as_slice())?
            .map(|v| codec::decode(v.value()).ok().and_then(|o| o.kept_since));
        let mut remembered = self.txn.open_table(REMEMBERED)?;
        if let Some(Some(since)) = old
            && Some(since) != e.kept_since
        {
            remembered.remove((pipe, since, path.as_str()))?;
        }
        if let Some(since) = e.kept_since {
            remembered.insert((pipe, since, path.as_str()), ())?;
        }
        Ok(())
    }

    /// Removes the entry at `path` with its index rows; a directory left with nothing
    /// under it is remembered from now, so it expires like a delivered file.
    fn remove_entry(&self, pipe: &str, path: &VPath) -> Result<()> {
        let (parent, name) = split(path.as_str());
        let old = self
            .txn
            .open_table(ENTRIES)?
            .remove((pipe, parent, name))?
            .map(|v| codec::decode(v.value()).ok().and_then(|o| o.kept_since));
        if let Some(Some(since)) = old {
            self.txn
                .open_table(REMEMBERED)?
                .remove((pipe, since, path.as_str()))?;
        }
        self.txn
            .open_table(KEEP_BOTH)?
            .remove((pipe, path.as_str()))?;
        if parent != "/" && !has_children(&self.txn.open_table(ENTRIES)?, pipe, parent)? {
            let dir = VPath::from_normalised(parent);
            if let Some(mut d) = self.entry(pipe, &dir)?
                && d.kept_since.is_none()
            {
                d.kept_since = Some(self.steady_ms);
                self.put_entry(pipe, &dir, &d)?;
            }
        }
        Ok(())
    }

    /// The queued put that is the last op on (pipe, path) and not in flight, if any.
    fn coalescable_put(&self, pipe: &str, path: &VPath) -> Result<Option<Op>> {
        let Some(id) = self.last_op_on(pipe, path.as_str())? else {
            return Ok(None);
        };
        Ok(self.op(id)?.filter(|op| {
            !op.in_flight && matches!(&op.action, Action::Put { path: p, .. } if p == path.as_str())
        }))
    }

    /// Records an acknowledged upload and queues its delivery; with `create_dirs`, missing
    /// directories above it are made first (and their markers queued), as `MKD` would.
    /// Checks everything before writing anything, so a refusal leaves the transaction
    /// untouched.
    pub fn publish(
        &self,
        pipe: &str,
        path_arg: &VPath,
        policy: Overwrite,
        create_dirs: bool,
        up: Upload,
        now_ms: u64,
    ) -> Result<Published> {
        let path = self.check_upload(pipe, path_arg, policy, create_dirs)?;
        if create_dirs {
            for dir in ancestors(&path) {
                if self.entry(pipe, &dir)?.is_none() {
                    self.mkdir(pipe, &dir, now_ms / 1000)?;
                }
            }
        }
        if policy == Overwrite::KeepBoth && self.entry(pipe, path_arg)?.is_some() {
            // Remember where the suffixes got to, so the next copy starts there.
            let (_, next) = free_name(self, pipe, path_arg)?;
            self.txn
                .open_table(KEEP_BOTH)?
                .insert((pipe, path_arg.as_str()), next)?;
        }
        let old = self.entry(pipe, &path)?;
        let (freed, coalesced) = self.queue_put(pipe, &path, &up, now_ms)?;
        // The destination has, or will get, an older version unless we just replaced it.
        let remote = old
            .as_ref()
            .is_some_and(|e| e.remote || e.state == Delivery::Delivered || !coalesced);
        self.put_entry(
            pipe,
            &path,
            &Entry {
                kind: Kind::File,
                size: up.size,
                mtime: up.mtime,
                state: Delivery::Pending,
                body: Some(up.body),
                sum: Some(up.sum),
                remote,
                kept_since: None,
            },
        )?;
        Ok(Published { path, freed })
    }

    /// Queues the put of `up` at `path`: in place of a queued put of the same path not
    /// yet started (its body is freed and returned), else at the end of the queue.
    /// Returns the freed bodies and whether the put replaced one never tried.
    fn queue_put(
        &self,
        pipe: &str,
        path: &VPath,
        up: &Upload,
        now_ms: u64,
    ) -> Result<(Vec<String>, bool)> {
        let mut freed = Vec::new();
        let mut coalesced = false;
        let put = Action::Put {
            path: path.to_string(),
            body: up.body.clone(),
            size: up.size,
            sum: up.sum,
            mtime: up.mtime,
            sender: up.sender.clone(),
        };
        match self.coalescable_put(pipe, path)? {
            Some(op) => {
                if let Action::Put { body, .. } = &op.action {
                    freed.push(body.clone());
                }
                // A put tried before may have reached the destination (a crash can come
                // between the destination's answer and our record of it).
                coalesced = op.attempts == 0;
                self.rewrite_put(op, put)?;
            }
            None => {
                self.enqueue(pipe, put, now_ms)?;
            }
        }
        self.discard_bodies(&freed)?;
        Ok((freed, coalesced))
    }

    /// Forgets a Pipe's whole namespace: catalog, queued ops, partial uploads, keep-both
    /// suffixes. Returns the spool bodies no longer needed (already in `GARBAGE`).
    pub(crate) fn forget_namespace(&self, pipe: &str) -> Result<Vec<String>> {
        let mut bodies = self.remove_pipe_ops(pipe)?;
        let all = |p| (p, "")..(p, "\u{10FFFF}");
        self.txn
            .open_table(ENTRIES)?
            .retain_in((pipe, "", "")..(pipe, "\u{10FFFF}", ""), |_, _| false)?;
        self.txn
            .open_table(REMEMBERED)?
            .retain_in((pipe, 0, "")..=(pipe, u64::MAX, "\u{10FFFF}"), |_, _| false)?;
        self.txn
            .open_table(KEEP_BOTH)?
            .retain_in(all(pipe), |_, _| false)?;
        let mut partials = Vec::new();
        for row in self
            .txn
            .open_table(PARTIALS)?
            .extract_from_if(all(pipe), |_, _| true)?
        {
            let (k, v) = row?;
            let p: crate::store::partials::Partial = decode("partials", k.value().1, v.value())?;
            partials.push(p.body);
        }
        self.discard_bodies(&partials)?;
        bodies.extend(partials);
        Ok(bodies)
    }

    /// Marks the entry `e` at `path`, which holds a put just delivered, as delivered: from
    /// now on it is remembered for the Pipe's retention window.
    pub(super) fn mark_delivered(&self, pipe: &str, path: &str, mut e: Entry) -> Result<()> {
        e.state = Delivery::Delivered;
        e.body = None;
        e.remote = true;
        e.kept_since = Some(self.steady_ms);
        self.put_entry(pipe, &VPath::from_normalised(path), &e)
    }
}
