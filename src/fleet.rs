//! Declarative provisioning: `ftpgate export` writes the Senders, Pipes and Grants as
//! TOML; `ftpgate apply FILE` makes the state match such a file and says what it changed.
//!
//! Senders carry argon2id hashes, never passwords. Pipes carry S3 secrets only when
//! exported with `--include-secrets`; applying a file without a secret keeps the Pipe's
//! current one. Applying the same file twice changes nothing the second time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::auth::check_hash;
use crate::clock::now_secs;
use crate::names::{Invalid, check_sender_name};
use crate::net::Cidr;
use crate::store::hooks::{Hook, Target};
use crate::store::pipes::PipeSpec;
use crate::store::senders::TlsReuse;
use crate::store::{self, Sender, View, Writer};

/// A whole gateway's provisioning.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    #[serde(default, rename = "pipe")]
    pub pipes: Vec<PipeSpec>,
    #[serde(default, rename = "sender")]
    pub senders: Vec<SenderSpec>,
    /// URL hooks. Command hooks run programs on the box: they are set up there, never
    /// carried by a fleet file.
    #[serde(default, rename = "hook", skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookSpec>,
}

/// A URL hook in a fleet file; its secret only with `export --include-secrets` (left
/// out, `apply` keeps the secret the hook has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    pub name: String,
    pub url: String,
    /// Kinds it sends; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::store::events::Kind>,
    #[serde(default = "default_max_pending")]
    pub max_pending: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<crate::secret::Secret>,
}

fn default_max_pending() -> u64 {
    crate::store::hooks::DEFAULT_MAX_PENDING
}

/// A Sender in a fleet file; `pipes` are its Grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSpec {
    pub name: String,
    pub password_hash: crate::secret::Secret,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub require_tls: bool,
    #[serde(default)]
    pub tls_reuse: TlsReuse,
    #[serde(default)]
    pub allow: Vec<Cidr>,
    #[serde(default)]
    pub pipes: Vec<String>,
    /// OpenSSH public keys for SFTP logins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<String>,
    /// `sender set --expect-every`, as a duration (`10m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_every: Option<String>,
}

fn yes() -> bool {
    true
}

impl Fleet {
    /// Parses and checks a fleet file: every name, id, hash and reference, before anything
    /// is changed.
    pub fn parse(text: &str) -> Result<Fleet, Invalid> {
        let fleet: Fleet = toml::from_str(text).map_err(|e| {
            Invalid(format!(
                "fleet file: {}",
                e.to_string().replace('\n', " ").trim()
            ))
        })?;
        let mut ids = BTreeSet::new();
        for p in &fleet.pipes {
            let id =
                p.id.as_deref()
                    .ok_or_else(|| Invalid(format!("fleet file: pipe {:?} has no id", p.name)))?;
            if !ids.insert(id) {
                return Err(Invalid(format!("fleet file: pipe id {id:?} appears twice")));
            }
        }
        let mut names = BTreeSet::new();
        for s in &fleet.senders {
            check_sender_name(&s.name)?;
            check_hash(s.password_hash.expose())
                .map_err(|e| Invalid(format!("sender {}: {}", s.name, e.0)))?;
            for k in &s.ssh_keys {
                crate::auth::keys::SshKey::parse(k)
                    .map_err(|e| Invalid(format!("sender {}: ssh key: {}", s.name, e.0)))?;
            }
            if !names.insert(s.name.as_str()) {
                return Err(Invalid(format!(
                    "fleet file: sender {:?} appears twice",
                    s.name
                )));
            }
            if let Some(p) = s.pipes.iter().find(|p| !ids.contains(p.as_str())) {
                return Err(Invalid(format!(
                    "fleet file: sender {:?} is granted pipe {p:?}, which the file does not define",
                    s.name
                )));
            }
        }
        let mut hooks = BTreeSet::new();
        for h in &fleet.hooks {
            if !hooks.insert(h.name.as_str()) {
                return Err(Invalid(format!(
                    "fleet file: hook {:?} appears twice",
                    h.name
                )));
            }
            h.to_hook(None)
                .check()
                .map_err(|e| Invalid(format!("fleet file: hook {}: {}", h.name, e.0)))?;
        }
        Ok(fleet)
    }
}

impl HookSpec {
    /// The hook this spec describes; without a secret of its own it keeps `old`'s.
    fn to_hook(&self, old: Option<&Hook>) -> Hook {
        let kept = old.and_then(|h| match &h.target {
            Target::Url { secret, .. } => Some(secret.clone()),
            Target::Command { .. } => None,
        });
        Hook {
            name: self.name.clone(),
            target: Target::Url {
                url: self.url.clone(),
                secret: self.secret.clone().or(kept).unwrap_or_default(),
            },
            events: self.events.clone(),
            max_pending: self.max_pending,
            created: old.map_or_else(now_secs, |h| h.created),
        }
    }
}

/// The current state as a fleet file.
pub fn export(w: &impl View, include_secrets: bool) -> store::Result<String> {
    let mut fleet = Fleet::default();
    for p in w.pipes()? {
        fleet.pipes.push(PipeSpec::of(&p, include_secrets));
    }
    for s in w.senders()? {
        fleet.senders.push(SenderSpec {
            pipes: w.grants_of(&s.name)?,
            name: s.name,
            password_hash: s.password_hash,
            enabled: s.enabled,
            require_tls: s.require_tls,
            tls_reuse: s.tls_reuse,
            allow: s.allow,
            ssh_keys: s.ssh_keys,
            expect_every: s.expect_every.map(crate::duration::format),
        });
    }
    for h in w.hooks()? {
        if let Target::Url { url, secret } = h.target {
            fleet.hooks.push(HookSpec {
                name: h.name,
                url,
                events: h.events,
                max_pending: h.max_pending,
                secret: (include_secrets && !secret.is_empty()).then_some(secret),
            });
        }
    }
    let body = toml::to_string(&fleet).expect("fleet specs serialize to TOML");
    let secrets = if include_secrets {
        "S3 secret keys and hook secrets included: keep this file private"
    } else {
        "S3 secret keys and hook secrets left out (use --include-secrets to carry them)"
    };
    Ok(format!(
        "# ftpgate fleet file, {}. Password hashes are argon2id; {secrets}.\n\n{body}",
        crate::store::schema::WRITTEN_BY
    ))
}

/// Makes the state match `fleet` inside `w` and lists the changes, one line each
/// (`+` added, `~` changed, `-` removed). A Pipe the file drops that still holds
/// undelivered uploads is refused unless `discard_backlog` (see [`Writer::remove_pipe`]).
pub fn apply(w: &Writer, fleet: &Fleet, discard_backlog: bool) -> store::Result<Vec<String>> {
    let mut changes = Vec::new();
    let old_pipes = put_pipes(w, fleet, &mut changes)?;
    let old_senders = put_senders(w, fleet, &mut changes)?;
    let kept_senders: BTreeSet<&str> = fleet.senders.iter().map(|s| s.name.as_str()).collect();
    let kept_pipes: BTreeSet<&str> = fleet.pipes.iter().filter_map(|p| p.id.as_deref()).collect();
    sync_grants(w, fleet, (&kept_senders, &kept_pipes), &mut changes)?;
    for name in old_senders
        .iter()
        .filter(|n| !kept_senders.contains(n.as_str()))
    {
        w.remove_sender(name)?;
        changes.push(format!("- sender {name}"));
    }
    for id in old_pipes
        .iter()
        .filter(|id| !kept_pipes.contains(id.as_str()))
    {
        let b = w.backlog(id)?;
        w.remove_pipe(id, discard_backlog)?;
        changes.push(if b.ops > 0 {
            format!(
                "- pipe {id} (discarding {} undelivered file(s), {} byte(s))",
                b.puts, b.bytes
            )
        } else {
            format!("- pipe {id}")
        });
    }
    put_hooks(w, fleet, &mut changes)?;
    Ok(changes)
}

/// Makes the URL hooks match the file's; command hooks are the box's own and stay.
fn put_hooks(w: &Writer, fleet: &Fleet, changes: &mut Vec<String>) -> store::Result<()> {
    let old: BTreeMap<String, Hook> = w
        .hooks()?
        .into_iter()
        .map(|h| (h.name.clone(), h))
        .collect();
    for spec in &fleet.hooks {
        let before = old.get(&spec.name);
        if let Some(Hook {
            target: Target::Command { .. },
            ..
        }) = before
        {
            return Err(store::Error::Invalid(Invalid(format!(
                "fleet file: hook {:?} is a command hook on this gateway: remove it there first, or name the URL hook differently",
                spec.name
            ))));
        }
        let hook = spec.to_hook(before);
        match before {
            Some(b) if *b == hook => continue,
            Some(_) => changes.push(format!("~ hook {}", spec.name)),
            None => changes.push(format!("+ hook {}", spec.name)),
        }
        w.put_hook(&hook)?;
    }
    for (name, h) in &old {
        let in_file = fleet.hooks.iter().any(|s| s.name == *name);
        if !in_file && matches!(h.target, Target::Url { .. }) {
            w.remove_hook(name)?;
            changes.push(format!("- hook {name}"));
        }
    }
    Ok(())
}

/// Adds or changes the file's Pipes; returns the ids there were before.
fn put_pipes(w: &Writer, fleet: &Fleet, changes: &mut Vec<String>) -> store::Result<Vec<String>> {
    let old_pipes: BTreeMap<String, _> =
        w.pipes()?.into_iter().map(|p| (p.id.clone(), p)).collect();
    for spec in &fleet.pipes {
        let id = spec.id.clone().unwrap_or_default();
        let old = old_pipes.get(&id);
        let pipe = pipe_of(spec, &id, old)?;
        match old {
            Some(o) if *o == pipe => continue,
            Some(_) => changes.push(format!("~ pipe {id}")),
            None => changes.push(format!("+ pipe {id} ({})", pipe.dest)),
        }
        w.put_pipe(&pipe)?;
    }
    Ok(old_pipes.into_keys().collect())
}

/// The Pipe `spec` describes, keeping from the one there is (`old`) what a file does
/// not carry: the secret key when left out, the proxy's password when shown as `***`,
/// the creation time and the destination's marker; a new destination gets its marker.
fn pipe_of(spec: &PipeSpec, id: &str, old: Option<&store::Pipe>) -> store::Result<store::Pipe> {
    let old_secret = old
        .and_then(|p| p.s3.as_ref())
        .map(|s| s.secret_key.clone());
    let created = old.map_or_else(now_secs, |p| p.created);
    let mut spec = spec.clone();
    // An export without secrets shows the proxy's password as `***`: keep the one
    // there is, if the rest of the URL is the same.
    if let (Some(given), Some(kept)) = (
        &spec.proxy,
        old.and_then(|p| p.s3.as_ref())
            .and_then(|s| s.proxy.as_ref()),
    ) && crate::store::destination::redact_proxy(kept.expose()) == given.expose()
    {
        spec.proxy = Some(kept.clone());
    }
    let mut pipe = spec.build(id.to_string(), old_secret, created)?;
    match old {
        Some(o) if o.dest == pipe.dest => pipe.dest_marked = o.dest_marked,
        _ => {
            crate::forward::dir::mark(&mut pipe).map_err(|e| {
                store::Error::Invalid(crate::names::Invalid(format!(
                    "pipe {id}: cannot write the destination's marker into {}: {e}",
                    pipe.dest
                )))
            })?;
        }
    }
    Ok(pipe)
}

/// Adds or changes the file's Senders; returns the names there were before.
fn put_senders(w: &Writer, fleet: &Fleet, changes: &mut Vec<String>) -> store::Result<Vec<String>> {
    let old_senders: BTreeMap<String, Sender> = w
        .senders()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    for spec in &fleet.senders {
        let old = old_senders.get(&spec.name);
        let sender = Sender {
            name: spec.name.clone(),
            password_hash: spec.password_hash.clone(),
            enabled: spec.enabled,
            require_tls: spec.require_tls,
            tls_reuse: spec.tls_reuse,
            allow: spec.allow.clone(),
            created: old.map_or_else(now_secs, |s| s.created),
            ssh_keys: spec.ssh_keys.clone(),
            expect_every: match spec.expect_every.as_deref() {
                Some(text) => crate::store::senders::parse_expect_every(text)?,
                None => None,
            },
            expect_since: 0,
        };
        let sender = Sender {
            expect_since: match old {
                Some(o) if o.expect_every == sender.expect_every => o.expect_since,
                _ => now_secs(),
            },
            ..sender
        };
        match old {
            Some(o) if *o == sender => continue,
            Some(_) => changes.push(format!("~ sender {}", spec.name)),
            None => changes.push(format!("+ sender {}", spec.name)),
        }
        w.put_sender(&sender)?;
    }
    Ok(old_senders.into_keys().collect())
}

/// Grants the file's Grants and revokes the others, except those of Senders or Pipes
/// about to be removed (they go with them); `kept` is (Senders, Pipes) of the file.
fn sync_grants(
    w: &Writer,
    fleet: &Fleet,
    kept: (&BTreeSet<&str>, &BTreeSet<&str>),
    changes: &mut Vec<String>,
) -> store::Result<()> {
    let wanted: BTreeSet<(String, String)> = fleet
        .senders
        .iter()
        .flat_map(|s| s.pipes.iter().map(|p| (s.name.clone(), p.clone())))
        .collect();
    let have: BTreeSet<(String, String)> = w.grants()?.into_iter().collect();
    for (s, p) in wanted.difference(&have) {
        w.grant(s, p)?;
        changes.push(format!("+ grant {s} -> {p}"));
    }
    for (s, p) in have.difference(&wanted) {
        if kept.0.contains(s.as_str()) && kept.1.contains(p.as_str()) {
            w.revoke(s, p)?;
            changes.push(format!("- grant {s} -> {p}"));
        }
    }
    Ok(())
}
