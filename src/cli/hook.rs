//! `ftpgate hook`: where events are sent (docs/EVENTS.md, "Hooks").

use argh::FromArgs;

use super::{Ctx, Failure, Outcome, output, read_secret_stdin, unexpected};
use crate::admin::{Request, Response};
use crate::store::events::Kind;
use crate::store::hooks::{DEFAULT_MAX_PENDING, Hook, Target};

/// send events to a URL (signed webhooks) or a local program
#[derive(FromArgs)]
#[argh(subcommand, name = "hook")]
pub struct HookArgs {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Add(Add),
    List(List),
    Remove(Remove),
    Test(Test),
}

/// add a hook (or replace the one of that name): --url or --command; without
/// --secret-stdin a URL hook's signing secret is generated and printed once
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct Add {
    #[argh(positional)]
    name: String,
    /// POST each event as JSON to this http:// or https:// address
    #[argh(option)]
    url: Option<String>,
    /// run this program (absolute path) with each event on its standard input
    #[argh(option)]
    command: Option<String>,
    /// only events of this kind (repeatable); all kinds when left out
    #[argh(option)]
    event: Vec<Kind>,
    /// read the HMAC-SHA256 signing secret from standard input
    #[argh(switch)]
    secret_stdin: bool,
    /// events kept waiting at most while the receiver is down; past it the oldest are
    /// dropped and counted (default 1000, at most 4096)
    #[argh(option, default = "DEFAULT_MAX_PENDING")]
    max_pending: u64,
}

/// list hooks: target, events, what is pending, sent, dropped, the last error
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct List {
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// remove a hook (its pending events are not sent)
#[derive(FromArgs)]
#[argh(subcommand, name = "remove")]
struct Remove {
    #[argh(positional)]
    name: String,
}

/// send a hook.test event to the hook now, and say whether it was taken
#[derive(FromArgs)]
#[argh(subcommand, name = "test")]
struct Test {
    #[argh(positional)]
    name: String,
}

pub fn run(ctx: &Ctx, a: HookArgs) -> Outcome {
    match a.cmd {
        Cmd::Add(a) => add(ctx, a),
        Cmd::List(a) => match ctx.request(Request::HookList)? {
            Response::Hooks { hooks } => output(a.json, &hooks, |hooks| {
                if hooks.is_empty() {
                    println!(
                        "no hooks yet: add one with 'ftpgate hook add NAME --url URL' or '--command PATH'"
                    );
                }
                for h in hooks {
                    let target = h.url.as_ref().or(h.command.as_ref()).map_or("-", |t| t);
                    let events = match h.events.is_empty() {
                        true => "all events".to_string(),
                        false => h.events.join(","),
                    };
                    println!(
                        "{} -> {target} ({events}{}): {} pending, {} sent, {} dropped",
                        h.name,
                        if h.secret_set { ", signed" } else { "" },
                        h.pending,
                        h.sent,
                        h.dropped
                    );
                    if let Some(e) = &h.last_error {
                        println!("  failing ({} attempts): {e}", h.failures);
                    }
                }
            }),
            other => Err(unexpected(other)),
        },
        Cmd::Remove(a) => ctx.change(Request::HookRemove { name: a.name }),
        Cmd::Test(a) => ctx.change(Request::HookTest { name: a.name }),
    }
}

fn add(ctx: &Ctx, a: Add) -> Outcome {
    let (target, generated) = match (a.url, a.command) {
        (Some(url), None) => {
            let (secret, generated) = if a.secret_stdin {
                (
                    read_secret_stdin("signing secret", "--secret-stdin")?,
                    false,
                )
            } else {
                (crate::support::random_hex(32), true)
            };
            let secret = secret.into();
            (Target::Url { url, secret }, generated.then_some(()))
        }
        (None, Some(path)) if !a.secret_stdin => (Target::Command { path }, None),
        (None, Some(_)) => {
            return Err(Failure::usage(
                "--secret-stdin is for --url hooks: a program on the box needs no signature",
            ));
        }
        _ => {
            return Err(Failure::usage(
                "give exactly one of --url URL or --command PATH",
            ));
        }
    };
    let hook = Hook {
        name: a.name,
        target,
        events: a.event,
        max_pending: a.max_pending,
        created: crate::clock::now_secs(),
    };
    hook.check()?;
    let secret = match (&hook.target, generated) {
        (Target::Url { secret, .. }, Some(())) => Some(secret.expose().to_string()),
        _ => None,
    };
    ctx.change(Request::HookAdd { hook })?;
    if let Some(secret) = secret {
        println!(
            "signing secret (shown once; the receiver checks X-Ftpgate-Signature with it): {secret}"
        );
    }
    Ok(())
}

/// make a new token for the HTTP listener (needed off loopback: ?token= or a bearer
/// header) and print it once; the one before stops working
#[derive(FromArgs)]
#[argh(subcommand, name = "http-token")]
pub struct HttpTokenArgs {}

pub fn http_token(ctx: &Ctx, _: HttpTokenArgs) -> Outcome {
    let token = crate::support::random_hex(24);
    ctx.change(Request::HttpToken {
        digest: crate::web::digest(&token),
    })?;
    println!("token (shown once): {token}");
    Ok(())
}
