//! The changes to Senders a technician asks for: add, password, settings, SSH keys,
//! enable and disable. Each runs inside the caller's transaction.

use super::{done, parse_allow};
use crate::auth::keys::SshKey;
use crate::clock::now_secs;
use crate::names::{Invalid, check_sender_name};
use crate::secret::Secret;
use crate::store::senders::TlsReuse;
use crate::store::{self, Sender, View, Writer};

use super::Response;

pub(super) fn add(
    w: &Writer,
    name: String,
    password_hash: Secret,
    require_tls: bool,
    allow: &[String],
) -> store::Result<Response> {
    check_sender_name(&name)?;
    let allow = parse_allow(allow)?;
    if w.sender(&name)?.is_some() {
        return Err(store::Error::SenderExists(name));
    }
    w.put_sender(&Sender {
        name: name.clone(),
        password_hash,
        enabled: true,
        require_tls,
        tls_reuse: TlsReuse::default(),
        allow,
        created: now_secs(),
        ssh_keys: Vec::new(),
        expect_every: None,
        expect_since: 0,
    })?;
    done(format!("added sender {name}"))
}

pub(super) fn passwd(w: &Writer, name: &str, password_hash: Secret) -> store::Result<Response> {
    let mut s = w.existing_sender(name)?;
    s.password_hash = password_hash;
    w.put_sender(&s)?;
    done(format!("changed the password of sender {name}"))
}

/// What `sender set` changes; `None` keeps the current value.
pub(super) struct Settings<'a> {
    pub require_tls: Option<bool>,
    pub tls_reuse: Option<TlsReuse>,
    pub allow: &'a [String],
    pub clear_allow: bool,
    /// A duration or `off`.
    pub expect_every: Option<&'a str>,
}

/// `sender set`: allowed networks are added to (or cleared first), the rest replaced.
pub(super) fn set(w: &Writer, name: &str, set: Settings) -> store::Result<Response> {
    let Settings {
        require_tls,
        tls_reuse,
        allow,
        clear_allow,
        expect_every,
    } = set;
    let mut s = w.existing_sender(name)?;
    let allow = parse_allow(allow)?;
    if let Some(text) = expect_every {
        s.expect_every = crate::store::senders::parse_expect_every(text)?;
        s.expect_since = now_secs();
    }
    if clear_allow {
        s.allow.clear();
    }
    for net in allow {
        if !s.allow.contains(&net) {
            s.allow.push(net);
        }
    }
    s.require_tls = require_tls.unwrap_or(s.require_tls);
    s.tls_reuse = tls_reuse.unwrap_or(s.tls_reuse);
    w.put_sender(&s)?;
    done(format!("updated sender {name}"))
}

/// Adds SSH public keys (lines of `authorized_keys`); a key the Sender has is skipped.
pub(super) fn add_keys(w: &Writer, name: &str, keys: &[String]) -> store::Result<Response> {
    let mut s = w.existing_sender(name)?;
    if keys.is_empty() {
        return Err(Invalid("no public key given on stdin".into()).into());
    }
    let mut added = Vec::new();
    for line in keys {
        let k = SshKey::parse(line)?;
        if crate::auth::keys::find(&s.ssh_keys, k.blob()).is_none() {
            s.ssh_keys.push(k.line());
            added.push(k.fingerprint);
        }
    }
    w.put_sender(&s)?;
    match added.is_empty() {
        true => done(format!("sender {name} already has that key")),
        false => done(format!("added key {} to sender {name}", added.join(", "))),
    }
}

pub(super) fn remove_key(w: &Writer, name: &str, fingerprint: &str) -> store::Result<Response> {
    let mut s = w.existing_sender(name)?;
    let before = s.ssh_keys.len();
    s.ssh_keys
        .retain(|l| SshKey::parse(l).map_or(true, |k| k.fingerprint != fingerprint));
    if s.ssh_keys.len() == before {
        return Err(Invalid(format!(
            "sender {name} has no key {fingerprint}: see 'ftpgate sender key list {name}'"
        ))
        .into());
    }
    w.put_sender(&s)?;
    done(format!("removed key {fingerprint} from sender {name}"))
}

pub(super) fn enable(w: &Writer, name: &str, enabled: bool) -> store::Result<Response> {
    let mut s = w.existing_sender(name)?;
    s.enabled = enabled;
    w.put_sender(&s)?;
    done(format!(
        "{} sender {name}",
        if enabled { "enabled" } else { "disabled" }
    ))
}
