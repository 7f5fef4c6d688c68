//! Reading the catalog: one entry, a page of a directory's children, a whole subtree.
//!
//! Entries are keyed (Pipe, parent directory, name), so a directory's children are one
//! contiguous range: a look-up is O(log n) and a listing O(its children + log n),
//! however many entries the Pipe holds elsewhere.

use super::*;

/// The `entries` table, open for reading.
pub(super) trait Table:
    ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>
{
}
impl<T: ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>> Table for T {}

/// (parent directory, name) of a path other than the root: `/a/b` → (`/a`, `b`).
pub(crate) fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) | None => ("/", path.trim_start_matches('/')),
        Some(i) => (&path[..i], &path[i + 1..]),
    }
}

fn decode_entry(path: &str, bytes: &[u8]) -> Result<Entry> {
    codec::decode(bytes).map_err(|detail| Error::Corrupt {
        table: "entries",
        key: path.to_string(),
        detail,
    })
}

pub(super) fn get(t: &impl Table, pipe: &str, path: &str) -> Result<Option<Entry>> {
    let (parent, name) = split(path);
    match t.get((pipe, parent, name))? {
        Some(v) => Ok(Some(decode_entry(path, v.value())?)),
        None => Ok(None),
    }
}

/// Up to `limit` children of `dir` after the name `after` (from the first with `None`),
/// in name order.
pub(super) fn page(
    t: &impl Table,
    pipe: &str,
    dir: &VPath,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Entry)>> {
    let d = dir.as_str();
    let mut out = Vec::new();
    let mut rows = t.range((pipe, d, after.unwrap_or(""))..)?;
    while out.len() < limit {
        let Some(row) = rows.next() else { break };
        let (k, v) = row?;
        let (p, parent, name) = k.value();
        if p != pipe || parent != d {
            break;
        }
        if Some(name) == after {
            continue;
        }
        let path = dir.child(name);
        out.push((name.to_string(), decode_entry(path.as_str(), v.value())?));
    }
    Ok(out)
}

/// Whether `dir` has any child.
pub(super) fn has_children(t: &impl Table, pipe: &str, dir: &str) -> Result<bool> {
    Ok(match t.range((pipe, dir, "")..)?.next() {
        Some(row) => {
            let (k, _) = row?;
            let (p, parent, _) = k.value();
            p == pipe && parent == dir
        }
        None => false,
    })
}

/// `dir` and every path below it (for directory renames), each directory before what it
/// holds.
pub(super) fn subtree(t: &impl Table, pipe: &str, dir: &VPath) -> Result<Vec<(VPath, Entry)>> {
    let mut out = Vec::new();
    if let Some(e) = get(t, pipe, dir.as_str())? {
        out.push((dir.clone(), e));
    }
    let mut i = 0;
    while i < out.len() {
        let (path, e) = &out[i];
        if e.kind == Kind::Dir {
            let path = path.clone();
            let mut after: Option<String> = None;
            loop {
                let children = page(t, pipe, &path, after.as_deref(), 1024)?;
                let Some((last, _)) = children.last() else {
                    break;
                };
                after = Some(last.clone());
                out.extend(children.into_iter().map(|(n, e)| (path.child(&n), e)));
            }
        }
        i += 1;
    }
    // Breadth-first puts every directory before its children already; sort by path so a
    // directory's contents stay together, as the callers' logs and tests expect.
    out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Ok(out)
}

pub(super) fn root_entry() -> Entry {
    Entry {
        kind: Kind::Dir,
        size: 0,
        mtime: 0,
        state: Delivery::Delivered,
        body: None,
        sum: None,
        remote: false,
        kept_since: None,
    }
}

/// The entry at `path` (the root always exists).
pub(crate) fn entry(v: &impl View, pipe: &str, path: &VPath) -> Result<Option<Entry>> {
    if path.is_root() {
        return Ok(Some(root_entry()));
    }
    get(&v.table(ENTRIES)?, pipe, path.as_str())
}

/// Up to `limit` children of `dir` after the name `after`, in name order.
pub(crate) fn list_page(
    v: &impl View,
    pipe: &str,
    dir: &VPath,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Entry)>> {
    page(&v.table(ENTRIES)?, pipe, dir, after, limit)
}

/// How many entries expire in time (delivered files, empty directories), all Pipes.
pub(crate) fn remembered(v: &impl View) -> Result<u64> {
    use redb::ReadableTableMetadata;
    Ok(v.table(REMEMBERED)?.len()?)
}
