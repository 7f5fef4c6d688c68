//! `ftpgate sender ...`: accounts for devices and people.

use argh::FromArgs;

use super::{Ctx, Failure, Outcome, on_off, output, read_secret_stdin, unexpected};
use crate::admin::{Request, Response, SenderView};
use crate::auth::{generate_password, hash_password};
use crate::names::check_sender_name;
use crate::store::senders::TlsReuse;

/// manage Senders (device and user accounts)
#[derive(FromArgs)]
#[argh(subcommand, name = "sender")]
pub struct SenderArgs {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Add(Add),
    Passwd(Passwd),
    Set(Set),
    List(List),
    Show(Show),
    Remove(Remove),
    Enable(Enable),
    Disable(Disable),
    Grant(Grant),
    Revoke(Revoke),
    Key(Key),
}

/// manage a Sender's public keys for SFTP logins
#[derive(FromArgs)]
#[argh(subcommand, name = "key")]
struct Key {
    #[argh(subcommand)]
    cmd: KeyCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum KeyCmd {
    Add(KeyAdd),
    List(KeyList),
    Remove(KeyRemove),
}

/// add OpenSSH public keys, one per line on standard input (e.g. < id_ed25519.pub)
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct KeyAdd {
    #[argh(positional)]
    name: String,
}

/// list a Sender's public keys
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct KeyList {
    #[argh(positional)]
    name: String,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// remove a public key by its fingerprint (SHA256:..., as 'sender key list' shows)
#[derive(FromArgs)]
#[argh(subcommand, name = "remove")]
struct KeyRemove {
    #[argh(positional)]
    name: String,
    #[argh(positional)]
    fingerprint: String,
}

/// add a Sender; without --password-stdin a strong password is generated and printed once
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct Add {
    #[argh(positional)]
    name: String,
    /// read the password from standard input
    #[argh(switch)]
    password_stdin: bool,
    /// refuse logins that are not protected by TLS
    #[argh(switch)]
    require_tls: bool,
    /// allowed source network, e.g. 10.1.0.0/16 (repeatable; default: anywhere)
    #[argh(option)]
    allow: Vec<String>,
}

/// set a new password (from standard input, or generated and printed once)
#[derive(FromArgs)]
#[argh(subcommand, name = "passwd")]
struct Passwd {
    #[argh(positional)]
    name: String,
    /// read the password from standard input
    #[argh(switch)]
    password_stdin: bool,
}

/// change a Sender's settings
#[derive(FromArgs)]
#[argh(subcommand, name = "set")]
struct Set {
    #[argh(positional)]
    name: String,
    /// on: refuse logins not protected by TLS
    #[argh(option, from_str_fn(on_off))]
    require_tls: Option<bool>,
    /// required|optional: whether TLS data connections must resume the control session
    #[argh(option)]
    tls_reuse: Option<TlsReuse>,
    /// add an allowed source network (repeatable)
    #[argh(option)]
    allow: Vec<String>,
    /// remove every allowed network first (then anywhere is allowed unless --allow)
    #[argh(switch)]
    clear_allow: bool,
    /// a duration (10m, 1h) without an upload after which the Sender is reported silent
    /// (event sender.silent), or off
    #[argh(option)]
    expect_every: Option<String>,
}

/// list Senders
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct List {
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// show one Sender
#[derive(FromArgs)]
#[argh(subcommand, name = "show")]
struct Show {
    #[argh(positional)]
    name: String,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// remove a Sender and its Grants
#[derive(FromArgs)]
#[argh(subcommand, name = "remove")]
struct Remove {
    #[argh(positional)]
    name: String,
}

/// allow a Sender to log in again
#[derive(FromArgs)]
#[argh(subcommand, name = "enable")]
struct Enable {
    #[argh(positional)]
    name: String,
}

/// refuse a Sender's logins (its uploads already spooled are still delivered)
#[derive(FromArgs)]
#[argh(subcommand, name = "disable")]
struct Disable {
    #[argh(positional)]
    name: String,
}

/// let a Sender upload into a Pipe
#[derive(FromArgs)]
#[argh(subcommand, name = "grant")]
struct Grant {
    #[argh(positional)]
    name: String,
    #[argh(positional)]
    pipe_id: String,
}

/// take a Pipe away from a Sender
#[derive(FromArgs)]
#[argh(subcommand, name = "revoke")]
struct Revoke {
    #[argh(positional)]
    name: String,
    #[argh(positional)]
    pipe_id: String,
}

/// The password to set: from stdin, or generated (and then printed once after success).
fn password(from_stdin: bool) -> Result<(String, bool), Failure> {
    if from_stdin {
        Ok((read_secret_stdin("password", "--password-stdin")?, false))
    } else {
        Ok((generate_password(), true))
    }
}

/// Runs one `sender` subcommand: one arm each, from the arguments to the request and its
/// output, so the verbs read as one table.
pub fn run(ctx: &Ctx, args: SenderArgs) -> Outcome {
    match args.cmd {
        Cmd::Add(a) => {
            check_sender_name(&a.name)?;
            let (pw, generated) = password(a.password_stdin)?;
            let password_hash = hash_password(&pw)?;
            ctx.change(Request::SenderAdd {
                name: a.name.clone(),
                password_hash,
                require_tls: a.require_tls,
                allow: a.allow,
            })?;
            if generated {
                println!("password for {} (shown once, store it now): {pw}", a.name);
            }
            Ok(())
        }
        Cmd::Passwd(a) => {
            check_sender_name(&a.name)?;
            let (pw, generated) = password(a.password_stdin)?;
            let password_hash = hash_password(&pw)?;
            ctx.change(Request::SenderPasswd {
                name: a.name.clone(),
                password_hash,
            })?;
            if generated {
                println!(
                    "new password for {} (shown once, store it now): {pw}",
                    a.name
                );
            }
            Ok(())
        }
        Cmd::Set(a) => {
            if a.require_tls.is_none()
                && a.tls_reuse.is_none()
                && a.allow.is_empty()
                && !a.clear_allow
                && a.expect_every.is_none()
            {
                return Err(Failure::usage(
                    "nothing to change: give --require-tls, --tls-reuse, --allow, --clear-allow or --expect-every",
                ));
            }
            if let Some(text) = &a.expect_every {
                crate::store::senders::parse_expect_every(text).map_err(|e| Failure::usage(e.0))?;
            }
            ctx.change(Request::SenderSet {
                name: a.name,
                require_tls: a.require_tls,
                tls_reuse: a.tls_reuse,
                allow: a.allow,
                clear_allow: a.clear_allow,
                expect_every: a.expect_every,
            })
        }
        Cmd::List(a) => match ctx.request(Request::SenderList)? {
            Response::Senders { senders } => output(a.json, &senders, |s| print_table(s)),
            other => Err(unexpected(other)),
        },
        Cmd::Show(a) => match ctx.request(Request::SenderShow { name: a.name })? {
            Response::Sender { sender } => output(a.json, &sender, |s| {
                println!("name:        {}", s.name);
                println!("enabled:     {}", yes_no(s.enabled));
                println!("require_tls: {}", yes_no(s.require_tls));
                println!("tls_reuse:   {}", s.tls_reuse);
                println!("allow:       {}", list_or(&s.allow, "anywhere"));
                println!("pipes:       {}", list_or(&s.pipes, "none"));
                println!("ssh keys:    {}", list_or(&s.ssh_keys, "none"));
                print_activity(s);
            }),
            other => Err(unexpected(other)),
        },
        Cmd::Remove(a) => ctx.change(Request::SenderRemove { name: a.name }),
        Cmd::Enable(a) => ctx.change(Request::SenderEnable {
            name: a.name,
            enabled: true,
        }),
        Cmd::Disable(a) => ctx.change(Request::SenderEnable {
            name: a.name,
            enabled: false,
        }),
        Cmd::Grant(a) => ctx.change(Request::Grant {
            name: a.name,
            pipe: a.pipe_id,
        }),
        Cmd::Revoke(a) => ctx.change(Request::Revoke {
            name: a.name,
            pipe: a.pipe_id,
        }),
        Cmd::Key(k) => keys(ctx, k.cmd),
    }
}

fn keys(ctx: &Ctx, cmd: KeyCmd) -> Outcome {
    match cmd {
        KeyCmd::Add(a) => {
            check_sender_name(&a.name)?;
            let text = read_secret_stdin("public key", "sender key add")?;
            let keys = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    crate::auth::keys::SshKey::parse(l)
                        .map(|k| k.line())
                        .map_err(|e| Failure::usage(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            ctx.change(Request::SenderKeyAdd { name: a.name, keys })
        }
        KeyCmd::List(a) => match ctx.request(Request::SenderKeyList {
            name: a.name.clone(),
        })? {
            Response::Keys { keys } => output(a.json, &keys, |keys| {
                if keys.is_empty() {
                    println!(
                        "sender {} has no keys: add one with 'ftpgate sender key add {} < id_ed25519.pub'",
                        a.name, a.name
                    );
                }
                for k in keys {
                    println!("{} {} {}", k.fingerprint, k.algorithm, k.comment);
                }
            }),
            other => Err(unexpected(other)),
        },
        KeyCmd::Remove(a) => ctx.change(Request::SenderKeyRemove {
            name: a.name,
            fingerprint: a.fingerprint,
        }),
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(", ")
    }
}

/// A time from `--json` output (RFC 3339, UTC) in the gateway's local time.
fn local(rfc3339: &str) -> String {
    match crate::calendar::parse_iso8601(rfc3339) {
        Some(secs) => crate::localtime::format_minute(secs.max(0) as u64 * 1000),
        None => rfc3339.to_string(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn print_activity(s: &SenderView) {
    let a = &s.activity;
    let login = a.last_login.as_ref().map_or("never".to_string(), |l| {
        let client = l
            .client
            .as_deref()
            .map_or(String::new(), |c| format!(", {c}"));
        format!(
            "{} from {} ({}{client})",
            local(&l.time),
            l.address,
            l.proto
        )
    });
    let upload = a.last_upload.as_ref().map_or("never".to_string(), |u| {
        format!(
            "{} {} ({} bytes, pipe {})",
            local(&u.time),
            u.path,
            u.size,
            u.pipe
        )
    });
    println!("last login:  {login}");
    println!("last upload: {upload}");
    println!(
        "today:       {} uploads, {}",
        a.uploads_today,
        mib(a.bytes_today)
    );
    println!(
        "in total:    {} uploads, {}",
        a.uploads_total,
        mib(a.bytes_total)
    );
    println!(
        "failed logins in the last hour: {}",
        a.failed_logins_last_hour
    );
    match &s.expect_every {
        Some(every) if a.silent => println!("expected every {every}: SILENT"),
        Some(every) => println!("expected every {every}: uploading"),
        None => {}
    }
}

fn print_table(senders: &[SenderView]) {
    if senders.is_empty() {
        println!("no senders yet: add one with 'ftpgate sender add NAME'");
        return;
    }
    println!(
        "{:<20} {:<7} {:<8} {:<16} {:<18} {:>7} {:>10} {:>6}  ALLOW",
        "NAME", "ENABLED", "TLS", "PIPES", "LAST UPLOAD", "TODAY", "BYTES", "FAILED"
    );
    for s in senders {
        let a = &s.activity;
        let last = a
            .last_upload
            .as_ref()
            .map_or("never".to_string(), |u| local(&u.time));
        let last = if a.silent {
            format!("{last} SILENT")
        } else {
            last
        };
        println!(
            "{:<20} {:<7} {:<8} {:<16} {:<18} {:>7} {:>10} {:>6}  {}",
            s.name,
            yes_no(s.enabled),
            if s.require_tls {
                "required"
            } else {
                "optional"
            },
            list_or(&s.pipes, "-"),
            last,
            a.uploads_today,
            mib(a.bytes_today),
            a.failed_logins_last_hour,
            list_or(&s.allow, "anywhere")
        );
    }
}
