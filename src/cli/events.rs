//! `ftpgate events`: the newest events of the ring, filtered by Sender, Pipe and kind;
//! `--follow` keeps asking the daemon for newer ones (twice a second, through the
//! control socket) and prints them as they come, until interrupted.

use argh::FromArgs;

use super::{Ctx, Failure, Outcome, print_json, unexpected};
use crate::admin::{Request, Response};
use crate::store::events::{Event, Kind, Query, RING};

/// list recent events (uploads received and delivered, logins, alerts); --follow prints
/// new ones as they happen
#[derive(FromArgs)]
#[argh(subcommand, name = "events")]
pub struct EventsArgs {
    /// only this Sender's events
    #[argh(option)]
    sender: Option<String>,
    /// only this Pipe's events
    #[argh(option)]
    pipe: Option<String>,
    /// only events of this kind (repeatable), e.g. upload.received, upload.delivered,
    /// upload.parked, login.failed, sender.silent, pipe.offline
    #[argh(option)]
    kind: Vec<Kind>,
    /// how many of the newest events to show (default 50)
    #[argh(option, default = "50")]
    limit: usize,
    /// print JSON: an array, or with --follow one object per line
    #[argh(switch)]
    json: bool,
    /// keep printing new events until interrupted (Ctrl-C)
    #[argh(switch)]
    follow: bool,
}

/// How often `--follow` asks for new events.
const POLL: std::time::Duration = std::time::Duration::from_millis(500);

pub fn run(ctx: &Ctx, a: EventsArgs) -> Outcome {
    if a.limit == 0 || a.limit > RING as usize {
        return Err(Failure::usage(format!(
            "--limit {}: give 1 to {RING} (the gateway keeps its newest {RING} events)",
            a.limit
        )));
    }
    let mut query = Query {
        after: None,
        sender: a.sender.clone(),
        pipe: a.pipe.clone(),
        kinds: a.kind.clone(),
        limit: a.limit,
    };
    let (events, last) = fetch(ctx, &query)?;
    if a.json && !a.follow {
        print_json(&events);
        return Ok(());
    }
    print(&events, a.json, a.follow);
    if !a.follow {
        if events.is_empty() {
            println!("no events yet");
        }
        return Ok(());
    }
    query.after = Some(last);
    query.limit = RING as usize;
    let mut warned = false;
    loop {
        std::thread::sleep(POLL);
        match fetch(ctx, &query) {
            Ok((events, last)) => {
                warned = false;
                print(&events, a.json, true);
                // Ids only grow; a smaller one means a new state directory.
                query.after = Some(if last < query.after.unwrap_or(0) {
                    0
                } else {
                    last
                });
            }
            // The daemon restarting: keep following once it is back.
            Err(e) if !warned => {
                eprintln!("events: {} (still trying)", e.message);
                warned = true;
            }
            Err(_) => {}
        }
    }
}

fn fetch(ctx: &Ctx, query: &Query) -> Result<(Vec<Event>, u64), Failure> {
    match ctx.request(Request::Events {
        query: query.clone(),
    })? {
        Response::Events { events, last } => Ok((events, last)),
        other => Err(unexpected(other)),
    }
}

fn print(events: &[Event], json: bool, lines: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for e in events {
        let _ = if json && lines {
            writeln!(
                out,
                "{}",
                serde_json::to_string(e).expect("events serialize")
            )
        } else {
            writeln!(out, "{}", line(e))
        };
    }
    let _ = out.flush();
}

/// One event for people: local time, kind, who, what.
pub fn line(e: &Event) -> String {
    let when = crate::calendar::parse_iso8601(&e.time)
        .map(|s| crate::localtime::format_second(s.max(0) as u64 * 1000))
        .unwrap_or_else(|| e.time.clone());
    let size = e.size.map(|n| format!("{n} bytes"));
    let after = e
        .seconds
        .map(|s| format!("after {}", crate::duration::format(s)));
    let reason = e.reason.as_ref().map(|r| format!("({r})"));
    let fields: [(&str, &Option<String>); 9] = [
        ("sender=", &e.sender),
        ("pipe=", &e.pipe),
        ("", &e.path),
        ("-> ", &e.to),
        ("", &size),
        ("key=", &e.key),
        ("from ", &e.address),
        ("", &after),
        ("", &reason),
    ];
    let mut parts = vec![when, format!("{:<16}", e.kind.as_str())];
    for (label, value) in fields {
        if let Some(v) = value {
            parts.push(format!("{label}{v}"));
        }
    }
    parts.join(" ")
}
