//! Admin operations: what `ftpgate sender|pipe|export|apply` ask for.
//!
//! A [`Request`] is executed by [`execute`], the one code path for every operation. The
//! CLI sends the request over `control.sock` when a daemon runs ([`socket`]), or opens the
//! database itself and calls [`execute`] directly when none does. Secrets arrive in
//! requests already prepared by the CLI (passwords as argon2 hashes), and responses never
//! carry a hash or an S3 secret unless the request asked for secrets.

mod protocol;
pub mod socket;
pub mod status;

pub use protocol::{Error, KeyView, PipeChanges, PipeView, Request, Response, SenderView};

use crate::auth::keys::SshKey;
use crate::clock::now_secs;
use crate::names::{Invalid, check_sender_name, random_token};
use crate::net::Cidr;
use crate::store::destination::check_ca_pem;
use crate::store::pipes::PipeSpec;
use crate::store::senders::TlsReuse;
use crate::store::{self, Pipe, Sender, Store, View, Writer};

fn parse_allow(allow: &[String]) -> Result<Vec<Cidr>, Invalid> {
    allow.iter().map(|a| a.parse()).collect()
}

fn sender_view(s: &Sender, pipes: Vec<String>) -> SenderView {
    SenderView {
        name: s.name.clone(),
        enabled: s.enabled,
        require_tls: s.require_tls,
        tls_reuse: s.tls_reuse,
        allow: s.allow.iter().map(ToString::to_string).collect(),
        pipes,
        created: s.created,
        ssh_keys: s
            .ssh_keys
            .iter()
            .filter_map(|l| SshKey::parse(l).ok())
            .map(|k| k.fingerprint)
            .collect(),
    }
}

fn pipe_view(p: &Pipe, senders: Vec<String>) -> PipeView {
    let spec = PipeSpec::of(p, false);
    PipeView {
        id: p.id.clone(),
        name: p.name.clone(),
        dest: spec.dest,
        endpoint: spec.endpoint,
        region: spec.region,
        path_style: spec.path_style,
        access_key: spec.access_key,
        secret_key_set: p.s3.as_ref().is_some_and(|s| !s.secret_key.is_empty()),
        ca_certificates: spec
            .ca_pem
            .as_deref()
            .map_or(0, |pem| check_ca_pem(pem).unwrap_or(0)),
        proxy: spec.proxy.as_ref().map(|u| u.expose().to_string()),
        overwrite: p.overwrite.to_string(),
        create_dirs: p.create_dirs,
        parallel: p.parallel(),
        keep_delivered: crate::duration::format(p.keep_delivered_ms() / 1000),
        enabled: p.enabled,
        senders,
        created: p.created,
    }
}

fn senders_of(r: &impl View, id: &str) -> store::Result<Vec<String>> {
    Ok(r.grants()?
        .into_iter()
        .filter(|(_, p)| p == id)
        .map(|(s, _)| s)
        .collect())
}

fn done(message: String) -> store::Result<Response> {
    Ok(Response::Done { message })
}

/// Carries out `req` against `store`. Blocking: the daemon calls it through
/// `smol::unblock`. Every change is one transaction, committed only if it succeeds.
pub fn execute(store: &Store, req: Request) -> Result<Response, Error> {
    if let Request::PipeTest { id } = req {
        let pipe = store
            .read()?
            .pipe(&id)?
            .ok_or(store::Error::NoSuchPipe(id))?;
        let probe = crate::forward::sink::for_pipe(&pipe, None).and_then(|s| s.probe());
        return match probe {
            Ok(msg) => Ok(Response::Done {
                message: format!("pipe {}: ok: {msg}", pipe.id),
            }),
            Err(e) => Err(Error::runtime(format!(
                "pipe {} ({}): {}",
                pipe.id, pipe.dest, e.message
            ))),
        };
    }
    if let Request::Apply {
        fleet,
        dry_run,
        discard_backlog,
    } = req
    {
        let fleet = crate::fleet::Fleet::parse(&fleet)?;
        let changes = store.write_or_discard(!dry_run, |w| {
            crate::fleet::apply(w, &fleet, discard_backlog)
        })?;
        return Ok(Response::Applied { changes, dry_run });
    }
    if !req.mutates() {
        // A read snapshot: never waits for, nor holds up, the writers.
        let mut response = read(&store.read()?, req)?;
        if let Response::Status { status } = &mut response {
            status::state_file(store, status);
        }
        return Ok(response);
    }
    Ok(store.write(|w| run(w, req))?)
}

/// Most ops one `spool list` page carries.
pub const MAX_PAGE: usize = 10_000;

/// The operations that only look.
fn read(r: &impl View, req: Request) -> store::Result<Response> {
    match req {
        Request::Ping => Ok(Response::Pong),
        Request::SenderList => {
            let mut out = Vec::new();
            for s in r.senders()? {
                out.push(sender_view(&s, r.grants_of(&s.name)?));
            }
            Ok(Response::Senders { senders: out })
        }
        Request::SenderShow { name } => {
            let s = r.existing_sender(&name)?;
            Ok(Response::Sender {
                sender: sender_view(&s, r.grants_of(&name)?),
            })
        }
        Request::SenderKeyList { name } => {
            let s = r.existing_sender(&name)?;
            let keys = s
                .ssh_keys
                .iter()
                .filter_map(|l| SshKey::parse(l).ok())
                .map(|k| KeyView {
                    fingerprint: k.fingerprint.clone(),
                    algorithm: k.algorithm(),
                    comment: k.comment(),
                })
                .collect();
            Ok(Response::Keys { keys })
        }
        Request::PipeList => {
            let mut out = Vec::new();
            for p in r.pipes()? {
                out.push(pipe_view(&p, senders_of(r, &p.id)?));
            }
            Ok(Response::Pipes { pipes: out })
        }
        Request::PipeShow { id } => {
            let p = r.existing_pipe(&id)?;
            Ok(Response::Pipe {
                pipe: pipe_view(&p, senders_of(r, &id)?),
            })
        }
        Request::Export { include_secrets } => Ok(Response::Export {
            toml: crate::fleet::export(r, include_secrets)?,
        }),
        Request::Status => Ok(Response::Status {
            status: status::from_store(r)?,
        }),
        Request::SpoolList { after, limit, pipe } => {
            let limit = limit.unwrap_or(100).clamp(1, MAX_PAGE);
            let (ops, next) = status::ops(r, pipe.as_deref(), after.unwrap_or(0), limit)?;
            Ok(Response::Ops { ops, next })
        }
        _ => unreachable!("execute() sends requests that change state to run()"),
    }
}

/// The operations that change state: one transaction each; an error aborts it.
fn run(w: &Writer, req: Request) -> store::Result<Response> {
    match req {
        Request::SenderAdd {
            name,
            password_hash,
            require_tls,
            allow,
        } => {
            check_sender_name(&name)?;
            let allow = parse_allow(&allow)?;
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
            })?;
            done(format!("added sender {name}"))
        }
        Request::SenderPasswd {
            name,
            password_hash,
        } => {
            let mut s = w.existing_sender(&name)?;
            s.password_hash = password_hash;
            w.put_sender(&s)?;
            done(format!("changed the password of sender {name}"))
        }
        Request::SenderSet {
            name,
            require_tls,
            tls_reuse,
            allow,
            clear_allow,
        } => {
            let mut s = w.existing_sender(&name)?;
            let allow = parse_allow(&allow)?;
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
        Request::SenderKeyAdd { name, keys } => {
            let mut s = w.existing_sender(&name)?;
            if keys.is_empty() {
                return Err(Invalid("no public key given on stdin".into()).into());
            }
            let mut added = Vec::new();
            for line in &keys {
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
        Request::SenderKeyRemove { name, fingerprint } => {
            let mut s = w.existing_sender(&name)?;
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
        Request::SenderRemove { name } => {
            w.remove_sender(&name)?;
            done(format!("removed sender {name}"))
        }
        Request::SenderEnable { name, enabled } => {
            let mut s = w.existing_sender(&name)?;
            s.enabled = enabled;
            w.put_sender(&s)?;
            done(format!(
                "{} sender {name}",
                if enabled { "enabled" } else { "disabled" }
            ))
        }
        Request::Grant { name, pipe } => {
            let new = w.grant(&name, &pipe)?;
            done(if new {
                format!("granted pipe {pipe} to sender {name}")
            } else {
                format!("sender {name} already had pipe {pipe}")
            })
        }
        Request::Revoke { name, pipe } => {
            w.revoke(&name, &pipe)?;
            done(format!("revoked pipe {pipe} from sender {name}"))
        }
        Request::PipeAdd { spec } => {
            let id = match &spec.id {
                Some(id) => {
                    crate::names::check_pipe_id(id)?;
                    if w.pipe(id)?.is_some() {
                        return Err(store::Error::PipeExists(id.clone()));
                    }
                    id.clone()
                }
                None => unused_pipe_id(w)?,
            };
            let mut pipe = spec.build(id.clone(), None, now_secs())?;
            mark(&mut pipe)?;
            w.put_pipe(&pipe)?;
            Ok(Response::Pipe {
                pipe: pipe_view(&pipe, Vec::new()),
            })
        }
        Request::PipeSet { id, changes } => {
            let old = w.existing_pipe(&id)?;
            let mut spec = PipeSpec::of(&old, true);
            let c = changes;
            spec.name = c.name.unwrap_or(spec.name);
            spec.endpoint = c.endpoint.or(spec.endpoint);
            spec.region = c.region.or(spec.region);
            spec.path_style = c.path_style.unwrap_or(spec.path_style);
            spec.access_key = c.access_key.or(spec.access_key);
            spec.secret_key = c.secret_key.or(spec.secret_key);
            match c.ca_pem {
                Some(pem) if pem.is_empty() => spec.ca_pem = None,
                Some(pem) => spec.ca_pem = Some(pem),
                None => {}
            }
            match c.proxy {
                Some(url) if url.is_empty() => spec.proxy = None,
                Some(url) => spec.proxy = Some(url),
                None => {}
            }
            spec.overwrite = c.overwrite.unwrap_or(spec.overwrite);
            spec.create_dirs = c.create_dirs.unwrap_or(spec.create_dirs);
            spec.parallel = c.parallel.or(spec.parallel);
            spec.keep_delivered = c.keep_delivered.or(spec.keep_delivered);
            let mut pipe = spec.build(id.clone(), None, old.created)?;
            pipe.dest_marked = old.dest_marked;
            if c.adopt_destination {
                if pipe.dest.is_s3() {
                    return Err(store::Error::Invalid(crate::names::Invalid(format!(
                        "--adopt-destination applies only to file:// destinations, and pipe {id} delivers to {}",
                        pipe.dest
                    ))));
                }
                if !mark(&mut pipe)? {
                    return Err(store::Error::Invalid(crate::names::Invalid(format!(
                        "{} does not exist: mount the disk (or create the directory) first",
                        pipe.dest
                    ))));
                }
            }
            w.put_pipe(&pipe)?;
            // A changed Pipe gets another chance at what it parked.
            let retried = w.unpark(None, Some(&id), now_secs() * 1000)?;
            done(if retried > 0 {
                format!("updated pipe {id}; {retried} waiting operation(s) will be retried")
            } else {
                format!("updated pipe {id}")
            })
        }
        Request::PipeRemove {
            id,
            discard_backlog,
        } => {
            let b = w.backlog(&id)?;
            w.remove_pipe(&id, discard_backlog)?;
            done(if b.ops > 0 {
                format!(
                    "removed pipe {id} and discarded its {} undelivered file(s), {} byte(s) ({} operation(s))",
                    b.puts, b.bytes, b.ops
                )
            } else {
                format!("removed pipe {id}")
            })
        }
        Request::PipeEnable { id, enabled } => {
            let mut p = w.existing_pipe(&id)?;
            p.enabled = enabled;
            w.put_pipe(&p)?;
            done(format!(
                "{} pipe {id}",
                if enabled { "enabled" } else { "disabled" }
            ))
        }
        Request::SpoolRetry { op_id } => {
            let n = w.unpark(op_id, None, now_secs() * 1000)?;
            done(format!("{n} operation(s) will be retried now"))
        }
        Request::Apply { .. } | Request::PipeTest { .. } => unreachable!("handled by execute"),
        _ => unreachable!("execute() sends requests that only read to read()"),
    }
}

/// Leaves the marker at a `file://` Pipe's root (see `forward::dir`).
fn mark(pipe: &mut Pipe) -> store::Result<bool> {
    crate::forward::dir::mark(pipe).map_err(|e| {
        store::Error::Invalid(crate::names::Invalid(format!(
            "cannot write the destination's marker into {}: {e}",
            pipe.dest
        )))
    })
}

/// A fresh 8-character Pipe id not yet in use.
fn unused_pipe_id(w: &Writer) -> store::Result<String> {
    loop {
        let id = random_token(8);
        if w.pipe(&id)?.is_none() {
            return Ok(id);
        }
    }
}
