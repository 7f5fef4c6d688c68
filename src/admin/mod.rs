//! Admin operations: what `ftpgate sender|pipe|export|apply` ask for.
//!
//! A [`Request`] is executed by [`execute`], the one code path for every operation. The
//! CLI sends the request over `control.sock` when a daemon runs ([`socket`]), or opens the
//! database itself and calls [`execute`] directly when none does. Secrets arrive in
//! requests already prepared by the CLI (passwords as argon2 hashes), and responses never
//! carry a hash or an S3 secret unless the request asked for secrets.

mod pipes;
mod protocol;
mod senders;
pub mod socket;
pub mod status;

pub use protocol::{
    ActivityView, Error, KeyView, PipeChanges, PipeView, Request, Response, SenderView,
};

use crate::auth::keys::SshKey;
use crate::clock::now_secs;
use crate::names::Invalid;
use crate::net::Cidr;
use crate::store::destination::check_ca_pem;
use crate::store::pipes::PipeSpec;
use crate::store::{self, Pipe, Sender, Store, View, Writer};

fn parse_allow(allow: &[String]) -> Result<Vec<Cidr>, Invalid> {
    allow.iter().map(|a| a.parse()).collect()
}

fn sender_view(r: &impl View, s: &Sender) -> store::Result<SenderView> {
    Ok(SenderView {
        pipes: r.grants_of(&s.name)?,
        expect_every: s.expect_every.map(crate::duration::format),
        activity: protocol::ActivityView::of(&r.activity(&s.name)?, crate::clock::now_ms()),
        name: s.name.clone(),
        enabled: s.enabled,
        require_tls: s.require_tls,
        tls_reuse: s.tls_reuse,
        allow: s.allow.iter().map(ToString::to_string).collect(),
        created: s.created,
        ssh_keys: s
            .ssh_keys
            .iter()
            .filter_map(|l| SshKey::parse(l).ok())
            .map(|k| k.fingerprint)
            .collect(),
    })
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

fn hook_view(r: &impl View, h: &store::hooks::Hook) -> store::Result<protocol::HookView> {
    use store::hooks::Target;
    let state = r.hook_state(&h.name)?;
    let pending = r
        .events(&store::events::Query {
            after: Some(state.cursor),
            kinds: h.events.clone(),
            limit: store::events::RING as usize,
            ..Default::default()
        })?
        .len() as u64;
    let (url, command, secret_set) = match &h.target {
        Target::Url { url, secret } => (Some(url.clone()), None, !secret.is_empty()),
        Target::Command { path } => (None, Some(path.clone()), false),
    };
    Ok(protocol::HookView {
        name: h.name.clone(),
        url,
        command,
        secret_set,
        events: h.events.iter().map(|k| k.as_str().to_string()).collect(),
        max_pending: h.max_pending,
        pending: pending.min(h.max_pending),
        sent: state.sent,
        dropped: state.dropped,
        failures: state.failures,
        last_error: state.last_error,
        last_sent: state.last_sent_ms.map(crate::calendar::format_rfc3339_ms),
    })
}

fn done(message: String) -> store::Result<Response> {
    Ok(Response::Done { message })
}

/// Carries out `req` against `store`. Blocking: the daemon calls it through
/// `smol::unblock`. Every change is one transaction, committed only if it succeeds.
pub fn execute(store: &Store, req: Request) -> Result<Response, Error> {
    if let Request::HookTest { name } = req {
        let hook = store
            .read()?
            .hook(&name)?
            .ok_or_else(|| store::hooks::no_such_hook(&name))?;
        return match crate::hooks::send(&hook, &crate::hooks::test_event(), &crate::hooks::agent())
        {
            Ok(()) => Ok(Response::Done {
                message: format!("hook {name}: the test event was taken"),
            }),
            Err(e) => Err(Error::runtime(format!("hook {name}: {e}"))),
        };
    }
    if let Request::PipeTest { id } = req {
        let pipe = store
            .read()?
            .pipe(&id)?
            .ok_or(store::Error::NoSuchPipe(id))?;
        let probe = crate::forward::sink_for(&pipe, None).and_then(|s| s.probe());
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
                out.push(sender_view(r, &s)?);
            }
            Ok(Response::Senders { senders: out })
        }
        Request::SenderShow { name } => {
            let s = r.existing_sender(&name)?;
            Ok(Response::Sender {
                sender: sender_view(r, &s)?,
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
        Request::HookList => {
            let mut hooks = Vec::new();
            for h in r.hooks()? {
                hooks.push(hook_view(r, &h)?);
            }
            Ok(Response::Hooks { hooks })
        }
        Request::Events { mut query } => {
            query.limit = query.limit.clamp(1, store::events::RING as usize);
            Ok(Response::Events {
                events: r.events(&query)?,
                last: r.last_event_id()?,
            })
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
        } => senders::add(w, name, password_hash, require_tls, &allow),
        Request::SenderPasswd {
            name,
            password_hash,
        } => senders::passwd(w, &name, password_hash),
        Request::SenderSet {
            name,
            require_tls,
            tls_reuse,
            allow,
            clear_allow,
            expect_every,
        } => senders::set(
            w,
            &name,
            senders::Settings {
                require_tls,
                tls_reuse,
                allow: &allow,
                clear_allow,
                expect_every: expect_every.as_deref(),
            },
        ),
        Request::SenderKeyAdd { name, keys } => senders::add_keys(w, &name, &keys),
        Request::SenderKeyRemove { name, fingerprint } => {
            senders::remove_key(w, &name, &fingerprint)
        }
        Request::SenderRemove { name } => {
            w.remove_sender(&name)?;
            done(format!("removed sender {name}"))
        }
        Request::HookAdd { mut hook } => {
            let replaced = w.hook(&hook.name)?;
            if let Some(old) = &replaced {
                hook.created = old.created;
            }
            w.put_hook(&hook)?;
            done(match replaced {
                Some(_) => format!("replaced hook {}", hook.name),
                None => format!("added hook {}: it sends the events from now on", hook.name),
            })
        }
        Request::HttpToken { digest } => {
            w.set_http_token_digest(&digest)?;
            done("made a new HTTP token (the one before no longer works)".into())
        }
        Request::HookRemove { name } => {
            w.remove_hook(&name)?;
            done(format!("removed hook {name}"))
        }
        Request::SenderEnable { name, enabled } => senders::enable(w, &name, enabled),
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
        Request::PipeAdd { spec } => pipes::add(w, spec),
        Request::PipeSet { id, changes } => pipes::set(w, &id, changes),
        Request::PipeRemove {
            id,
            discard_backlog,
        } => pipes::remove(w, &id, discard_backlog),
        Request::PipeEnable { id, enabled } => pipes::enable(w, &id, enabled),
        Request::SpoolRetry { op_id } => {
            let n = w.unpark(op_id, None, now_secs() * 1000)?;
            done(format!("{n} operation(s) will be retried now"))
        }
        Request::Apply { .. } | Request::PipeTest { .. } => unreachable!("handled by execute"),
        _ => unreachable!("execute() sends requests that only read to read()"),
    }
}
