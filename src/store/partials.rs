//! Resumable partial uploads: the spool body of an upload that ended badly, kept so the
//! client can continue it (`REST` + `STOR`, or `APPE`) until it expires. A partial is
//! never in the outbox.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::PARTIALS;
use super::{Reader, Result, Writer, decode, encode};
use crate::vfs::VPath;

/// A broken upload's body in `spool/tmp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub body: String,
    /// Bytes durably in the body (fsynced when the partial was recorded).
    pub size: u64,
    /// Seconds since the epoch after which it is deleted.
    pub expires: u64,
}

impl Reader {
    pub fn partial(&self, pipe: &str, path: &VPath) -> Result<Option<Partial>> {
        match self.txn.open_table(PARTIALS)?.get((pipe, path.as_str()))? {
            Some(v) => Ok(Some(decode("partials", path.as_str(), v.value())?)),
            None => Ok(None),
        }
    }

    /// Every partial as (pipe, path, partial).
    pub fn partials(&self) -> Result<Vec<(String, String, Partial)>> {
        let mut out = Vec::new();
        for row in self.txn.open_table(PARTIALS)?.iter()? {
            let (k, v) = row?;
            let (pipe, path) = k.value();
            out.push((
                pipe.to_string(),
                path.to_string(),
                decode("partials", path, v.value())?,
            ));
        }
        Ok(out)
    }
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
