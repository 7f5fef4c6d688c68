//! Resumable partial uploads: the spool body of an upload that ended badly, kept so the
//! client can continue it (`REST` + `STOR`, or `APPE`) until it expires. A partial is
//! never in the outbox.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::PARTIALS;
use super::{Result, View, Writer, decode, encode};
use crate::vfs::VPath;

/// A broken upload's body in `spool/tmp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub body: String,
    /// Bytes durably in the body (fsynced when the partial was recorded).
    pub size: u64,
    /// Seconds since the epoch after which it is deleted.
    pub expires: u64,
    /// Who uploaded it (partials have a bound per Sender); empty in records from before.
    #[serde(default)]
    pub sender: String,
}

pub(super) fn get(v: &impl View, pipe: &str, path: &VPath) -> Result<Option<Partial>> {
    match v.table(PARTIALS)?.get((pipe, path.as_str()))? {
        Some(bytes) => Ok(Some(decode("partials", path.as_str(), bytes.value())?)),
        None => Ok(None),
    }
}

pub(super) fn all(v: &impl View) -> Result<Vec<(String, String, Partial)>> {
    let mut out = Vec::new();
    for row in v.table(PARTIALS)?.iter()? {
        let (k, bytes) = row?;
        let (pipe, path) = k.value();
        out.push((
            pipe.to_string(),
            path.to_string(),
            decode("partials", path, bytes.value())?,
        ));
    }
    Ok(out)
}

impl Writer {
    /// Records a partial; returns the body of one it replaces (to delete).
    pub fn put_partial(&self, pipe: &str, path: &VPath, p: &Partial) -> Result<Option<String>> {
        let old = self.take_partial(pipe, path)?;
        self.txn
            .open_table(PARTIALS)?
            .insert((pipe, path.as_str()), encode(p).as_slice())?;
        Ok(old.map(|o| o.body).filter(|b| *b != p.body))
    }

    /// Removes and returns the partial for a path (when an upload continues it).
    pub fn take_partial(&self, pipe: &str, path: &VPath) -> Result<Option<Partial>> {
        let mut t = self.txn.open_table(PARTIALS)?;
        let old = t.remove((pipe, path.as_str()))?;
        match old {
            Some(v) => Ok(Some(decode("partials", path.as_str(), v.value())?)),
            None => Ok(None),
        }
    }
}
