//! Sender records and Grants.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::{GRANTS, PIPES, SENDERS};
use super::{Error, Result, View, Writer, all_records, encode, one_record};
use crate::names::{Invalid, invalid};
use crate::net::Cidr;

/// An account for a device or a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub name: String,
    /// argon2id PHC string; never shown, never logged.
    pub password_hash: crate::secret::Secret,
    pub enabled: bool,
    #[serde(default)]
    pub require_tls: bool,
    #[serde(default)]
    pub tls_reuse: TlsReuse,
    /// Source networks the Sender may log in from; empty means anywhere.
    #[serde(default)]
    pub allow: Vec<Cidr>,
    #[serde(default)]
    pub created: u64,
    /// OpenSSH public key lines for SFTP logins (see [`crate::auth::keys`]).
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Seconds without an upload after which the Sender is silent (`sender.silent`);
    /// `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_every: Option<u64>,
    /// When `expect_every` was last set (Unix seconds): a silence is counted from it at
    /// the earliest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expect_since: u64,
}

/// `sender set --expect-every`: a duration (`10m`, `1h`), or `off`.
pub fn parse_expect_every(text: &str) -> Result<Option<u64>, Invalid> {
    if text == "off" {
        return Ok(None);
    }
    match crate::duration::parse(text)? {
        0 => invalid(format!(
            "--expect-every {text}: give a duration such as 10m or 1h, or off"
        )),
        secs => Ok(Some(secs)),
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Sender {
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(ip))
    }
}

/// Pipe ids granted to `name`, in id order.
fn granted(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
    name: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for row in table.range((name, "")..)? {
        let (k, _) = row?;
        let (sender, pipe) = k.value();
        if sender != name {
            break;
        }
        out.push(pipe.to_string());
    }
    Ok(out)
}

fn all_grants(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, _) = row?;
        let (s, p) = k.value();
        out.push((s.to_string(), p.to_string()));
    }
    Ok(out)
}

/// The Sender named `name`.
pub(super) fn get(v: &impl View, name: &str) -> Result<Option<Sender>> {
    one_record(&v.table(SENDERS)?, "senders", name)
}

pub(super) fn all(v: &impl View) -> Result<Vec<Sender>> {
    all_records(&v.table(SENDERS)?, "senders")
}

pub(super) fn grants_of(v: &impl View, name: &str) -> Result<Vec<String>> {
    granted(&v.table(GRANTS)?, name)
}

pub(super) fn grants(v: &impl View) -> Result<Vec<(String, String)>> {
    all_grants(&v.table(GRANTS)?)
}

impl Writer {
    /// Inserts or replaces a Sender.
    pub fn put_sender(&self, s: &Sender) -> Result<()> {
        crate::names::check_sender_name(&s.name)?;
        self.txn
            .open_table(SENDERS)?
            .insert(s.name.as_str(), encode(s).as_slice())?;
        Ok(())
    }

    /// Removes a Sender and its Grants.
    pub fn remove_sender(&self, name: &str) -> Result<()> {
        if self.txn.open_table(SENDERS)?.remove(name)?.is_none() {
            return Err(Error::NoSuchSender(name.to_string()));
        }
        let mut grants = self.txn.open_table(GRANTS)?;
        for pipe in granted(&grants, name)? {
            grants.remove((name, pipe.as_str()))?;
        }
        self.remove_activity(name)
    }

    /// Grants `pipe` to `name`; both must exist. Granting twice is not an error.
    pub fn grant(&self, name: &str, pipe: &str) -> Result<bool> {
        self.existing_sender(name)?;
        if self.txn.open_table(PIPES)?.get(pipe)?.is_none() {
            return Err(Error::NoSuchPipe(pipe.to_string()));
        }
        Ok(self
            .txn
            .open_table(GRANTS)?
            .insert((name, pipe), ())?
            .is_none())
    }

    pub fn revoke(&self, name: &str, pipe: &str) -> Result<()> {
        self.existing_sender(name)?;
        if self.txn.open_table(GRANTS)?.remove((name, pipe))?.is_none() {
            return Err(Error::NotGranted(name.to_string(), pipe.to_string()));
        }
        Ok(())
    }
}

/// Whether a TLS data connection must resume the control connection's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsReuse {
    #[default]
    Required,
    Optional,
}

impl std::str::FromStr for TlsReuse {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "required" => Ok(TlsReuse::Required),
            "optional" => Ok(TlsReuse::Optional),
            _ => invalid(format!(
                "invalid TLS reuse policy {s:?}: use required or optional"
            )),
        }
    }
}

impl std::fmt::Display for TlsReuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsReuse::Required => "required",
            TlsReuse::Optional => "optional",
        })
    }
}
