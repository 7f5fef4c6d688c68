//! Reading the outbox through its indexes: one op, a page of ops, a Pipe's backlog, its
//! oldest and first parked op, what is due, when the next op is due, the last op on a key.

use redb::ReadableTable;

use super::*;

pub(crate) fn op(v: &impl View, id: u64) -> Result<Option<Op>> {
    match v.table(OUTBOX)?.get(id)? {
        Some(bytes) => Ok(Some(read_op(id, bytes.value())?)),
        None => Ok(None),
    }
}

/// Up to `limit` ops after `after` in id order, of one Pipe or all.
pub(crate) fn page(v: &impl View, pipe: Option<&str>, after: u64, limit: usize) -> Result<Vec<Op>> {
    let mut out = Vec::new();
    match pipe {
        None => {
            for row in v.table(OUTBOX)?.range(after.saturating_add(1)..)? {
                if out.len() == limit {
                    break;
                }
                let (k, bytes) = row?;
                out.push(read_op(k.value(), bytes.value())?);
            }
        }
        Some(p) => {
            let ids = v.table(PIPE_OPS)?;
            for row in ids.range((p, after.saturating_add(1))..=(p, u64::MAX))? {
                if out.len() == limit {
                    break;
                }
                let id = row?.0.value().1;
                out.extend(op(v, id)?);
            }
        }
    }
    Ok(out)
}

pub(crate) fn backlog(v: &impl View, pipe: &str) -> Result<Backlog> {
    match v.table(BACKLOG)?.get(pipe)? {
        Some(bytes) => decode("backlog", pipe, bytes.value()),
        None => Ok(Backlog::default()),
    }
}

/// The first op of a Pipe in a (Pipe id, op id) index.
fn first_of(
    v: &impl View,
    index: redb::TableDefinition<(&'static str, u64), ()>,
    pipe: &str,
) -> Result<Option<Op>> {
    let first = v
        .table(index)?
        .range((pipe, 0)..=(pipe, u64::MAX))?
        .next()
        .transpose()?
        .map(|(k, _)| k.value().1);
    match first {
        Some(id) => op(v, id),
        None => Ok(None),
    }
}

/// The oldest queued op of a Pipe.
pub(crate) fn oldest(v: &impl View, pipe: &str) -> Result<Option<Op>> {
    first_of(v, PIPE_OPS, pipe)
}

/// The first parked op of a Pipe (its reason is the Pipe's).
pub(crate) fn first_parked(v: &impl View, pipe: &str) -> Result<Option<Op>> {
    first_of(v, PARKED, pipe)
}

/// Ready ops of a Pipe that may go at `now_ms`: those due by then, then those due further
/// ahead than any backoff (the wall clock went back: see [`crate::backoff::due`]).
pub(crate) fn ready(v: &impl View, pipe: &str, now_ms: u64, limit: usize) -> Result<Vec<u64>> {
    let t = v.table(READY)?;
    let far = now_ms.saturating_add(crate::backoff::FAR_AHEAD_MS);
    let mut ids = Vec::new();
    let due = t.range((pipe, 0, 0)..=(pipe, now_ms, u64::MAX))?;
    let stranded = t.range((pipe, far.saturating_add(1), 0)..=(pipe, u64::MAX, u64::MAX))?;
    for row in due.chain(stranded).take(limit) {
        ids.push(row?.0.value().2);
    }
    Ok(ids)
}

/// When the earliest ready op of a Pipe may go, if it has one: `now_ms` if one was left
/// far ahead by a clock that went back.
pub(crate) fn next_due(v: &impl View, pipe: &str, now_ms: u64) -> Result<Option<u64>> {
    let t = v.table(READY)?;
    let mut all = t.range((pipe, 0, 0)..=(pipe, u64::MAX, u64::MAX))?;
    let Some(first) = all.next().transpose()?.map(|(k, _)| k.value().1) else {
        return Ok(None);
    };
    let last = all
        .next_back()
        .transpose()?
        .map_or(first, |(k, _)| k.value().1);
    let due = |at| crate::backoff::due(at, now_ms);
    Ok(Some(if due(first) || due(last) {
        first.min(now_ms)
    } else {
        first
    }))
}

/// The last queued op on (pipe, key).
pub(crate) fn last_on(v: &impl View, pipe: &str, key: &str) -> Result<Option<u64>> {
    last_in(&v.table(KEY_OPS)?, pipe, key)
}

pub(super) fn last_in(
    t: &impl ReadableTable<(&'static str, &'static str, u64), ()>,
    pipe: &str,
    key: &str,
) -> Result<Option<u64>> {
    Ok(t.range((pipe, key, 0)..=(pipe, key, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, _)| k.value().2))
}
