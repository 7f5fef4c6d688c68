//! Hooks: where events are sent (a URL, signed; or a local program), and how far each
//! hook has got. A hook keeps no queue of its own: its pending events are the events of
//! the ring after its cursor that it wants, so a hook costs the upload path nothing and
//! its backlog is bounded by the ring (and by its own cap, see `crate::hooks`).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::events::Kind;
use super::schema::{HOOK_STATE, HOOKS};
use super::{Error, Result, View, Writer, all_records, encode, one_record};
use crate::names::{Invalid, invalid};
use crate::secret::Secret;

/// Pending events a hook keeps by default before it drops the oldest.
pub const DEFAULT_MAX_PENDING: u64 = 1000;

/// Where a hook sends its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// POSTed as JSON, signed with HMAC-SHA256 when a secret is set.
    Url {
        url: String,
        #[serde(default, skip_serializing_if = "Secret::is_empty")]
        secret: Secret,
    },
    /// A program on this box, run with the event on its standard input.
    Command { path: String },
}

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub name: String,
    pub target: Target,
    /// The kinds it wants; empty: every kind.
    #[serde(default)]
    pub events: Vec<Kind>,
    /// Pending events kept at most; past it the oldest are dropped and counted.
    pub max_pending: u64,
    pub created: u64,
}

impl Hook {
    pub fn wants(&self, kind: Kind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }

    /// Checks what a technician (or a fleet file) gave.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        crate::names::check_sender_name(&self.name)
            .map_err(|e| Invalid(e.0.replace("sender name", "hook name")))?;
        if self.max_pending == 0 || self.max_pending > super::events::RING {
            return invalid(format!(
                "--max-pending {}: give 1 to {}",
                self.max_pending,
                super::events::RING
            ));
        }
        match &self.target {
            Target::Url { url, .. } => check_url(url),
            Target::Command { path } if !path.starts_with('/') => invalid(format!(
                "--command {path:?}: give the program's absolute path"
            )),
            Target::Command { .. } => Ok(()),
        }
    }
}

/// A hook's URL: `http://` or `https://`, a host, no credentials in it.
pub fn check_url(url: &str) -> std::result::Result<(), Invalid> {
    let parsed = url::Url::parse(url).map_err(|e| Invalid(format!("--url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return invalid(format!(
            "--url {url:?}: give an http:// or https:// address with a host"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return invalid(
            "--url: no user or password in the address (the signature proves who sends)",
        );
    }
    Ok(())
}

/// How far a hook has got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookState {
    /// The id of the last event handled (sent, skipped, or not wanted).
    pub cursor: u64,
    #[serde(default)]
    pub sent: u64,
    /// Events dropped: over the cap, or gone from the ring before they were sent.
    #[serde(default)]
    pub dropped: u64,
    /// Failed attempts in a row.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// When an event was last sent (ms since the epoch).
    #[serde(default)]
    pub last_sent_ms: Option<u64>,
}

/// What asking for a hook that does not exist gets.
pub fn no_such_hook(name: &str) -> Error {
    Error::Invalid(Invalid(format!(
        "no hook {name:?}: see 'ftpgate hook list'"
    )))
}

pub(super) fn all(v: &impl View) -> Result<Vec<Hook>> {
    all_records(&v.table(HOOKS)?, "hooks")
}

pub(super) fn get(v: &impl View, name: &str) -> Result<Option<Hook>> {
    one_record(&v.table(HOOKS)?, "hooks", name)
}

pub(super) fn state(v: &impl View, name: &str) -> Result<HookState> {
    Ok(one_record(&v.table(HOOK_STATE)?, "hook_state", name)?.unwrap_or_default())
}

impl Writer {
    /// Keeps the digest of a new HTTP token (the token itself is never stored).
    pub fn set_http_token_digest(&self, digest: &str) -> Result<()> {
        self.txn
            .open_table(super::schema::META)?
            .insert("http_token_sha256", digest)?;
        Ok(())
    }

    /// Adds or replaces a hook. A new hook starts after the newest event: it sends
    /// what happens from now on.
    pub fn put_hook(&self, h: &Hook) -> Result<()> {
        h.check()?;
        let new = self.txn.open_table(HOOKS)?.get(h.name.as_str())?.is_none();
        self.txn
            .open_table(HOOKS)?
            .insert(h.name.as_str(), encode(h).as_slice())?;
        if new {
            let state = HookState {
                cursor: self.last_event_id()?,
                ..HookState::default()
            };
            self.put_hook_state(&h.name, &state)?;
        }
        Ok(())
    }

    pub fn remove_hook(&self, name: &str) -> Result<()> {
        if self.txn.open_table(HOOKS)?.remove(name)?.is_none() {
            return Err(no_such_hook(name));
        }
        self.txn.open_table(HOOK_STATE)?.remove(name)?;
        Ok(())
    }

    /// Records how far a hook has got (only while it exists).
    pub fn put_hook_state(&self, name: &str, s: &HookState) -> Result<()> {
        if self.txn.open_table(HOOKS)?.get(name)?.is_some() {
            self.txn
                .open_table(HOOK_STATE)?
                .insert(name, encode(s).as_slice())?;
        }
        Ok(())
    }
}
