//! What a second upload to an existing path does: the Pipe's overwrite policy.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{Invalid, invalid};

/// How a second upload to an existing path is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    #[default]
    Replace,
    KeepBoth,
    Refuse,
}

impl std::str::FromStr for Overwrite {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "replace" => Ok(Overwrite::Replace),
            "keep-both" => Ok(Overwrite::KeepBoth),
            "refuse" => Ok(Overwrite::Refuse),
            _ => invalid(format!(
                "invalid overwrite policy {s:?}: use replace, keep-both or refuse"
            )),
        }
    }
}

impl fmt::Display for Overwrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overwrite::Replace => "replace",
            Overwrite::KeepBoth => "keep-both",
            Overwrite::Refuse => "refuse",
        })
    }
}
