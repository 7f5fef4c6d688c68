//! Reading the catalog: one entry, a directory's children, a whole subtree.

use super::*;

pub(super) fn get(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pipe: &str,
    path: &VPath,
) -> Result<Option<Entry>> {
    match t.get((pipe, path.as_str()))? {
        Some(v) => Ok(Some(decode("catalog", path.as_str(), v.value())?)),
        None => Ok(None),
    }
}

/// Direct children of `dir`, in name order.
pub(super) fn children(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pipe: &str,
    dir: &VPath,
) -> Result<Vec<(String, Entry)>> {
    let prefix = if dir.is_root() {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let mut out = Vec::new();
    for row in t.range((pipe, prefix.as_str())..)? {
        let (k, v) = row?;
        let (p, path) = k.value();
        if p != pipe || !path.starts_with(&prefix) {
            break;
        }
        let rest = &path[prefix.len()..];
        if !rest.is_empty() && !rest.contains('/') {
            out.push((rest.to_string(), decode("catalog", path, v.value())?));
        }
    }
    Ok(out)
}

/// Every path at or below `dir` (for directory renames), in key order.
pub(super) fn subtree(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pipe: &str,
    dir: &VPath,
) -> Result<Vec<(VPath, Entry)>> {
    let mut out = Vec::new();
    if let Some(e) = get(t, pipe, dir)? {
        out.push((dir.clone(), e));
    }
    let prefix = format!("{dir}/");
    for row in t.range((pipe, prefix.as_str())..)? {
        let (k, v) = row?;
        let (p, path) = k.value();
        if p != pipe || !path.starts_with(&prefix) {
            break;
        }
        out.push((
            VPath::from_normalised(path),
            decode("catalog", path, v.value())?,
        ));
    }
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
        sender: String::new(),
        remote: false,
    }
}

/// The entry at `path` (the root always exists).
pub(crate) fn entry(v: &impl View, pipe: &str, path: &VPath) -> Result<Option<Entry>> {
    if path.is_root() {
        return Ok(Some(root_entry()));
    }
    get(&v.table(CATALOG)?, pipe, path)
}

pub(crate) fn list(v: &impl View, pipe: &str, dir: &VPath) -> Result<Vec<(String, Entry)>> {
    children(&v.table(CATALOG)?, pipe, dir)
}
