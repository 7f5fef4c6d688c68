//! The command line: argh definitions, one file per command group, and the
//! translation of outcomes into exit codes: 0 ok, 1 runtime failure, 2 usage error.
//! Errors are one line on stderr that names the problem and the fix.

mod cert;
mod events;
mod fleet;
mod hook;
mod pipe;
mod route;
mod sender;
mod serve;
mod status;

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use argh::{EarlyExit, FromArgs};

use crate::admin::{self, Request, Response, socket::dispatch};
use crate::state::{DEFAULT_STATE_DIR, StateDir};

/// ftpgate: an FTP, FTPS and SFTP ingestion gateway. Devices upload; the gateway spools every file
/// durably and forwards it to S3 or a directory.
#[derive(FromArgs)]
struct Args {
    /// state directory (default: $FTPGATE_STATE, else /var/lib/ftpgate)
    #[argh(option)]
    state: Option<PathBuf>,
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Serve(serve::ServeArgs),
    Demo(serve::DemoArgs),
    Sender(sender::SenderArgs),
    Pipe(pipe::PipeArgs),
    Status(status::StatusArgs),
    Events(events::EventsArgs),
    Hook(hook::HookArgs),
    HttpToken(hook::HttpTokenArgs),
    Spool(status::SpoolArgs),
    Cert(cert::CertArgs),
    Export(fleet::ExportArgs),
    Apply(fleet::ApplyArgs),
}

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub usage: bool,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            usage: true,
        }
    }
    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            usage: false,
        }
    }
}

impl From<admin::Error> for Failure {
    fn from(e: admin::Error) -> Failure {
        Failure {
            message: e.message,
            usage: e.usage,
        }
    }
}

impl From<crate::names::Invalid> for Failure {
    fn from(e: crate::names::Invalid) -> Failure {
        Failure::usage(e.0)
    }
}

type Outcome = Result<(), Failure>;

/// Everything a command needs besides its own arguments.
pub struct Ctx {
    pub state: StateDir,
}

impl Ctx {
    /// Runs an admin request through the daemon or directly.
    pub fn request(&self, req: Request) -> Result<Response, Failure> {
        Ok(dispatch(&self.state, req)?)
    }

    /// Runs a request whose answer is a sentence, and prints it.
    pub fn change(&self, req: Request) -> Outcome {
        match self.request(req)? {
            Response::Done { message } => {
                println!("{message}");
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }
}

pub fn unexpected(r: Response) -> Failure {
    Failure::runtime(format!("unexpected answer from the daemon: {r:?}"))
}

/// Prints `value` as JSON (`--json`), else for people with `human`.
pub fn output<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> Outcome {
    if json {
        print_json(value);
    } else {
        human(value);
    }
    Ok(())
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("views serialize")
    );
}

/// Reads a secret from standard input: the first line, without its line ending.
/// Refuses a terminal (the secret would echo) and an empty or missing value.
pub fn read_secret_stdin(what: &str, flag: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Failure::usage(format!(
            "{flag} reads the {what} from standard input, which is a terminal: pipe it in, e.g. printf '%s' \"$SECRET\" | ftpgate ... {flag}"
        )));
    }
    let mut buf = Vec::new();
    stdin
        .lock()
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| {
            Failure::runtime(format!("cannot read the {what} from standard input: {e}"))
        })?;
    let text = String::from_utf8(buf)
        .map_err(|_| Failure::usage(format!("the {what} on standard input is not valid UTF-8")))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(Failure::usage(format!(
            "no {what} on standard input: {flag} expects it there, e.g. printf '%s' \"$SECRET\" | ftpgate ... {flag}"
        )));
    }
    Ok(line.to_string())
}

/// Parses `on`/`off` for flags such as `--require-tls on`.
pub fn on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("expected on or off, got {value:?}")),
    }
}

/// Folds argh's multi-line error text into one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_args() -> Result<Args, ExitCode> {
    let raw: Vec<OsString> = std::env::args_os().collect();
    let mut args = Vec::with_capacity(raw.len());
    for a in raw.iter().skip(1) {
        match a.to_str() {
            Some(s) => args.push(s),
            None => {
                eprintln!("ftpgate: argument {a:?} is not valid UTF-8: use UTF-8 names and paths");
                return Err(ExitCode::from(2));
            }
        }
    }
    match Args::from_args(&["ftpgate"], &args) {
        Ok(a) => Ok(a),
        Err(EarlyExit {
            output,
            status: Ok(()),
        }) => {
            print!("{output}");
            Err(ExitCode::SUCCESS)
        }
        Err(EarlyExit {
            output,
            status: Err(()),
        }) => {
            eprintln!(
                "ftpgate: {} (see 'ftpgate help')",
                one_line(&output).trim_end_matches('.')
            );
            Err(ExitCode::from(2))
        }
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let explicit_state = args.state.is_some() || std::env::var_os("FTPGATE_STATE").is_some();
    let root = args
        .state
        .or_else(|| std::env::var_os("FTPGATE_STATE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let ctx = Ctx {
        state: StateDir::new(root),
    };
    let outcome = match args.command {
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Demo(a) => serve::demo(&ctx, a, explicit_state),
        Command::Sender(a) => sender::run(&ctx, a),
        Command::Pipe(a) => pipe::run(&ctx, a),
        Command::Status(a) => status::status(&ctx, a),
        Command::Events(a) => events::run(&ctx, a),
        Command::Hook(a) => hook::run(&ctx, a),
        Command::HttpToken(a) => hook::http_token(&ctx, a),
        Command::Spool(a) => status::spool(&ctx, a),
        Command::Cert(a) => cert::run(&ctx, a),
        Command::Export(a) => fleet::export(&ctx, a),
        Command::Apply(a) => fleet::apply(&ctx, a),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("ftpgate: {}", one_line(&f.message));
            ExitCode::from(if f.usage { 2 } else { 1 })
        }
    }
}
