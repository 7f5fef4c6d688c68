//! The model the namespace test checks against: a plain map of what each Pipe holds as a
//! client sees it, a model destination, and a small deterministic random source.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::outbox::{Action, Op};

/// xorshift64*: small, deterministic, good enough to pick test steps.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub(super) const PIPES: [&str; 2] = ["pipa", "pipb"];
pub(super) const DIRS: [&str; 3] = ["/d", "/e", "/d/f"];
pub(super) const NAMES: [&str; 8] = [
    "/x", "/y", "/d/x", "/d/y", "/e/x", "/d/f/x", "/d/f/z", "/e/z",
];

/// What a Pipe's namespace is, as a client sees it: files with the body that won, and
/// directories.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Namespace {
    pub(super) files: BTreeMap<String, String>,
    pub(super) dirs: BTreeSet<String>,
}

impl Namespace {
    pub(super) fn parent_ok(&self, path: &str) -> bool {
        let parent = &path[..path.rfind('/').unwrap_or(0)];
        parent.is_empty() || self.dirs.contains(parent)
    }

    pub(super) fn is_empty_dir(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        !self
            .files
            .keys()
            .chain(&self.dirs)
            .any(|k| k.starts_with(&prefix))
    }
}

/// The destination: object keys with their body, and directory markers.
#[derive(Debug, Default)]
pub(super) struct Destination {
    pub(super) up: bool,
    pub(super) ns: Namespace,
    /// What the gateway forgot (delivered, then expired) and the destination keeps: no op
    /// will touch it again unless a new upload, rename or MKD replaces it.
    pub(super) forgotten: Namespace,
    /// Forgotten files whose name a client used again: the gateway may have sent a
    /// delete for a put that may have reached the destination, so the old object may be
    /// there or not, unless the namespace says what is there now.
    pub(super) reused: BTreeSet<String>,
    /// Things a real destination would have refused or lost.
    pub(super) violations: Vec<String>,
}

impl Destination {
    /// Carries out one op as S3 would; `Rename` of a missing source that is already at
    /// its target counts as done, as the real sinks do.
    pub(super) fn apply(&mut self, op: &Op) {
        // A directory destination cannot make a file or directory below a file.
        let made = match &op.action {
            Action::Put { path, .. } | Action::MkDir { path } => Some(path),
            Action::Rename { to, .. } => Some(to),
            Action::Delete { .. } | Action::RmDir { .. } => None,
        };
        if let Some(path) = made {
            // A marker replaces a forgotten marker (S3 keeps a file and a marker of the
            // same name side by side).
            if matches!(op.action, Action::MkDir { .. }) {
                self.forgotten.dirs.remove(path);
            }
            let mut above = path.as_str();
            while let Some(i) = above.rfind('/') {
                above = &above[..i];
                // A forgotten file may stand where a directory is made later: S3 keeps
                // both, and a directory destination parks the op with its reason.
                if self.ns.files.contains_key(above) && !self.forgotten.files.contains_key(above) {
                    self.violations
                        .push(format!("op {}: {path} below the file {above}", op.id));
                }
            }
        }
        if !matches!(op.action, Action::MkDir { .. } | Action::RmDir { .. }) {
            for k in op.action.keys() {
                if self.forgotten.files.remove(k).is_some() {
                    self.reused.insert(k.to_string());
                }
            }
        }
        let ns = &mut self.ns;
        match &op.action {
            Action::Put { path, body, .. } => {
                ns.files.insert(path.clone(), body.clone());
            }
            Action::Delete { path } => {
                ns.files.remove(path);
            }
            Action::Rename { from, to } => match ns.files.remove(from) {
                Some(b) => {
                    ns.files.insert(to.clone(), b);
                }
                None if ns.files.contains_key(to) => {}
                None => self
                    .violations
                    .push(format!("op {}: rename of missing {from}", op.id)),
            },
            Action::MkDir { path } => {
                ns.dirs.insert(path.clone());
            }
            Action::RmDir { path } => {
                // What it still holds may only be what the gateway forgot (the sinks
                // leave a directory that is not empty in place).
                let prefix = format!("{path}/");
                let known = ns
                    .files
                    .keys()
                    .filter(|k| !self.forgotten.files.contains_key(*k))
                    .chain(ns.dirs.iter().filter(|d| !self.forgotten.dirs.contains(*d)))
                    .any(|k| k.starts_with(&prefix));
                if known {
                    self.violations.push(format!(
                        "op {}: rmdir {path} while it still holds {:?}",
                        op.id, ns
                    ));
                }
                ns.dirs.remove(path);
            }
        }
    }
}

/// `RNFR from` + `RNTO to` on the model; whether it is allowed.
pub(super) fn model_rename(m: &mut Namespace, from: &str, to: &str) -> bool {
    let is_dir = m.dirs.contains(from);
    if !is_dir && !m.files.contains_key(from) {
        return false;
    }
    if from == to {
        return true;
    }
    if to.starts_with(&format!("{from}/")) || m.dirs.contains(to) || !m.parent_ok(to) {
        return false;
    }
    if is_dir && m.files.contains_key(to) {
        return false;
    }
    if !is_dir {
        let b = m.files.remove(from).unwrap();
        m.files.insert(to.to_string(), b);
        return true;
    }
    let rebase = |k: &str| format!("{to}{}", &k[from.len()..]);
    let prefix = format!("{from}/");
    let moved_dirs: Vec<String> = m
        .dirs
        .iter()
        .filter(|d| *d == from || d.starts_with(&prefix))
        .cloned()
        .collect();
    for d in moved_dirs {
        m.dirs.remove(&d);
        m.dirs.insert(rebase(&d));
    }
    let moved_files: Vec<String> = m
        .files
        .keys()
        .filter(|f| f.starts_with(&prefix))
        .cloned()
        .collect();
    for f in moved_files {
        let b = m.files.remove(&f).unwrap();
        m.files.insert(rebase(&f), b);
    }
    true
}
