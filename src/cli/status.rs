//! `ftpgate status`, `ftpgate spool list|retry`.

use argh::FromArgs;

use super::{Ctx, Outcome, print_json, unexpected};
use crate::admin::status::{PipeStatus, StatusView};
use crate::admin::{Request, Response};

/// sessions, spool use, and each Pipe's backlog and health
#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
pub struct StatusArgs {
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// the outbox: operations waiting for delivery
#[derive(FromArgs)]
#[argh(subcommand, name = "spool")]
pub struct SpoolArgs {
    #[argh(subcommand)]
    cmd: SpoolCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum SpoolCmd {
    List(List),
    Retry(Retry),
}

/// list waiting operations, oldest first, a page at a time
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct List {
    /// print JSON
    #[argh(switch)]
    json: bool,
    /// operations per page (default 100, at most 10000)
    #[argh(option, default = "100")]
    limit: usize,
    /// start after this operation id (the cursor a previous page printed)
    #[argh(option)]
    after: Option<u64>,
    /// only this Pipe's operations
    #[argh(option)]
    pipe: Option<String>,
    /// every page, printed as it arrives
    #[argh(switch)]
    all: bool,
}

/// Largest page the daemon is asked for.
const MAX_PAGE: usize = 10_000;

/// retry parked or waiting operations now: one, or all
#[derive(FromArgs)]
#[argh(subcommand, name = "retry")]
struct Retry {
    /// the operation id (from 'spool list'); all when left out
    #[argh(positional)]
    op_id: Option<u64>,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

pub fn status(ctx: &Ctx, a: StatusArgs) -> Outcome {
    let s = match ctx.request(Request::Status)? {
        Response::Status { status } => status,
        other => return Err(unexpected(other)),
    };
    if a.json {
        print_json(&s);
        return Ok(());
    }
    print_gateway(&s);
    if s.pipes.is_empty() {
        println!("pipes:    none yet");
    }
    for p in &s.pipes {
        print_pipe(p, s.daemon_running);
    }
    Ok(())
}

/// The gateway's lines of `status`: the daemon, trouble, fingerprints, spool and state.
fn print_gateway(s: &StatusView) {
    match s.uptime_secs {
        Some(up) => println!(
            "daemon:   running for {up}s, {} session(s) ({} not logged in, {} SFTP), {} upload(s) received",
            s.sessions.unwrap_or(0),
            s.sessions_waiting.unwrap_or(0),
            s.sftp_sessions.unwrap_or(0),
            s.uploads_received.unwrap_or(0)
        ),
        None => println!("daemon:   not running (delivery health is known only while it runs)"),
    }
    let free = s
        .spool_free_bytes
        .map(|f| format!(", {} free on disk", mib(f)))
        .unwrap_or_default();
    if let Some(trouble) = &s.trouble {
        println!("TROUBLE:  {trouble}");
    }
    if let Some(fp) = &s.tls_fingerprint {
        println!("tls:      certificate SHA-256 {fp}");
    }
    if let Some(fp) = &s.ssh_fingerprint {
        println!("sftp:     host key {fp}");
    }
    println!(
        "spool:    {} file(s) waiting, {} held{free}",
        s.spool_files,
        mib(s.spool_bytes)
    );
    println!(
        "state:    {} file, {} delivered entries remembered{}",
        mib(s.state_bytes),
        s.remembered,
        s.keep_delivered_max
            .map(|m| format!(" (at most {m})"))
            .unwrap_or_default()
    );
    if let Some(w) = &s.state_warning {
        println!("WARNING:  {w}");
    }
}

/// One Pipe's lines of `status`; what only the daemon knows (deliveries, the last
/// success and error) only while it runs.
fn print_pipe(p: &PipeStatus, daemon_running: bool) {
    println!(
        "pipe {} ({}) -> {}{}",
        p.id,
        p.name,
        p.dest,
        if p.enabled { "" } else { " [disabled]" }
    );
    println!(
        "  state:        {}{}",
        p.state,
        p.parked_reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    println!(
        "  kept:         delivered files listed for {}",
        p.keep_delivered
    );
    if let Some(skew) = p.clock_skew_secs {
        println!(
            "  clock:        the destination's clock is {}s {} this gateway's: requests are signed with its time (set this box's clock)",
            skew.abs(),
            if skew > 0 { "ahead of" } else { "behind" }
        );
    }
    println!(
        "  backlog:      {} op(s), {}{}",
        p.backlog_ops,
        mib(p.backlog_bytes),
        p.oldest_secs
            .map(|a| format!(", oldest {a}s"))
            .unwrap_or_default()
    );
    if daemon_running {
        println!(
            "  delivered:    {} op(s), {}{}",
            p.delivered_ops,
            mib(p.delivered_bytes),
            p.rate_bytes_per_sec
                .map(|r| format!(", {}/s now", mib(r as u64)))
                .unwrap_or_default()
        );
        println!(
            "  last success: {}",
            p.last_success
                .map(|t| format!("{}s ago", crate::clock::now_secs().saturating_sub(t)))
                .unwrap_or_else(|| "never".into())
        );
        if let Some(e) = &p.last_error {
            println!("  last error:   {e}");
        }
    }
}

pub fn spool(ctx: &Ctx, a: SpoolArgs) -> Outcome {
    match a.cmd {
        SpoolCmd::Retry(r) => ctx.change(Request::SpoolRetry { op_id: r.op_id }),
        SpoolCmd::List(l) => list(ctx, l),
    }
}

/// `spool list`: one page, or with `--all` every page as it arrives (the JSON form is
/// then one array, written element by element).
fn list(ctx: &Ctx, l: List) -> Outcome {
    if l.limit == 0 || l.limit > MAX_PAGE {
        return Err(crate::cli::Failure::usage(format!(
            "--limit {} is out of range: give 1 to {MAX_PAGE}",
            l.limit
        )));
    }
    let mut after = l.after;
    let mut first = true;
    if l.json && l.all {
        println!("[");
    }
    loop {
        let (ops, next) = match ctx.request(Request::SpoolList {
            after,
            limit: Some(l.limit),
            pipe: l.pipe.clone(),
        })? {
            Response::Ops { ops, next } => (ops, next),
            other => return Err(unexpected(other)),
        };
        if l.json && l.all {
            for o in &ops {
                let sep = if first { "" } else { "," };
                first = false;
                println!(
                    "{sep}{}",
                    serde_json::to_string(o).expect("views serialize")
                );
            }
        } else if l.json {
            print_json(&ops);
        } else {
            print_ops(&ops, first);
            first = false;
        }
        match next {
            Some(n) if l.all => after = Some(n),
            Some(n) => {
                let hint = format!("more operations wait: ftpgate spool list --after {n}");
                if l.json {
                    eprintln!("{hint}");
                } else {
                    println!("{hint}");
                }
                break;
            }
            None => break,
        }
    }
    if l.json && l.all {
        println!("]");
    }
    Ok(())
}

fn print_ops(ops: &[crate::admin::status::OpView], first_page: bool) {
    if ops.is_empty() {
        if first_page {
            println!("nothing waiting: every upload has been delivered");
        }
        return;
    }
    if first_page {
        println!(
            "{:>8} {:<16} {:<7} {:>12} {:>8} {:>5}  PATH / STATE",
            "ID", "PIPE", "OP", "BYTES", "AGE", "TRIES"
        );
    }
    for o in ops {
        let state = match (&o.parked, &o.last_error) {
            (Some(p), _) => format!("  [parked: {p}]"),
            (None, Some(e)) => format!("  [retrying: {e}]"),
            _ => String::new(),
        };
        println!(
            "{:>8} {:<16} {:<7} {:>12} {:>7}s {:>5}  {}{state}",
            o.id, o.pipe, o.op, o.bytes, o.age_secs, o.attempts, o.path
        );
    }
}
