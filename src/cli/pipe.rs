//! `ftpgate pipe ...`: destinations.

use super::route::RouteArgs;
use argh::FromArgs;

use super::sender::{list_or, yes_no};
use super::{Ctx, Outcome, on_off, output, read_secret_stdin, unexpected};
use crate::admin::{PipeChanges, PipeView, Request, Response};
use crate::store::namespace::Overwrite;
use crate::store::pipes::PipeSpec;

/// manage Pipes (destinations: S3 buckets or local directories)
#[derive(FromArgs)]
#[argh(subcommand, name = "pipe")]
pub struct PipeArgs {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Add(Add),
    Set(Set),
    List(List),
    Show(Show),
    Remove(Remove),
    Enable(Enable),
    Disable(Disable),
    Test(Test),
}

/// make a real request to the Pipe's destination with its credentials and say what is wrong
#[derive(FromArgs)]
#[argh(subcommand, name = "test")]
struct Test {
    #[argh(positional)]
    id: String,
}

/// add a Pipe; S3 credentials come from --access-key and --secret-key-stdin, else from
/// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct Add {
    /// a human name for the Pipe
    #[argh(positional)]
    name: String,
    /// s3://BUCKET[/PREFIX] or file:///ABSOLUTE/DIR
    #[argh(option)]
    dest: String,
    /// the Pipe id (4-16 of a-z and 0-9; generated when left out)
    #[argh(option)]
    id: Option<String>,
    /// S3 endpoint, e.g. https://s3.example.com (default: AWS)
    #[argh(option)]
    endpoint: Option<String>,
    /// S3 region (default us-east-1)
    #[argh(option)]
    region: Option<String>,
    /// address buckets as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT
    #[argh(switch)]
    path_style: bool,
    /// S3 access key id
    #[argh(option)]
    access_key: Option<String>,
    /// read the S3 secret key from standard input
    #[argh(switch)]
    secret_key_stdin: bool,
    /// PEM file of the CA(s) that sign the S3 endpoint's certificate (trusted instead of
    /// the public web PKI, for this Pipe only)
    #[argh(option)]
    ca_file: Option<String>,
    /// proxy for the S3 endpoint, http://HOST:PORT (default: the daemon's HTTPS_PROXY,
    /// HTTP_PROXY and NO_PROXY)
    #[argh(option)]
    proxy: Option<String>,
    /// read the proxy URL from standard input (for one with credentials,
    /// http://USER:PASSWORD@HOST:PORT)
    #[argh(switch)]
    proxy_stdin: bool,
    /// replace|keep-both|refuse: what a second upload to the same path does. refuse
    /// and keep-both never replace an object at the destination either, even after the
    /// gateway forgot its name (a conditional write; an S3 server that ignores
    /// If-None-Match, or a directory on NFS, cannot guarantee that)
    #[argh(option, default = "Overwrite::Replace")]
    overwrite: Overwrite,
    /// on|off: an upload into a missing directory creates it, as MKD would (default on;
    /// devices such as busybox ftpput cannot MKD)
    #[argh(option, from_str_fn(on_off), default = "true")]
    create_dirs: bool,
    /// deliveries at once, 1-64 (default 8 for S3, 2 for a directory)
    #[argh(option)]
    parallel: Option<u32>,
    /// how long delivered files stay listed and visible to SIZE, e.g. 0s, 90s, 12h, 7d
    /// (default 1d); undelivered files are always kept
    #[argh(option, from_str_fn(duration))]
    keep_delivered: Option<String>,
}

/// change a Pipe's settings
#[derive(FromArgs)]
#[argh(subcommand, name = "set")]
struct Set {
    #[argh(positional)]
    id: String,
    /// a new human name
    #[argh(option)]
    name: Option<String>,
    /// S3 endpoint URL
    #[argh(option)]
    endpoint: Option<String>,
    /// S3 region
    #[argh(option)]
    region: Option<String>,
    /// on|off: path-style bucket addressing
    #[argh(option, from_str_fn(on_off))]
    path_style: Option<bool>,
    /// S3 access key id
    #[argh(option)]
    access_key: Option<String>,
    /// read a new S3 secret key from standard input
    #[argh(switch)]
    secret_key_stdin: bool,
    /// PEM file of the CA(s) that sign the S3 endpoint's certificate; off: the public web
    /// PKI again
    #[argh(option)]
    ca_file: Option<String>,
    /// proxy for the S3 endpoint, http://HOST:PORT; off: the daemon's environment again
    #[argh(option)]
    proxy: Option<String>,
    /// read the proxy URL (with its credentials) from standard input
    #[argh(switch)]
    proxy_stdin: bool,
    /// replace|keep-both|refuse (see pipe add --help)
    #[argh(option)]
    overwrite: Option<Overwrite>,
    /// on|off: an upload into a missing directory creates it
    #[argh(option, from_str_fn(on_off))]
    create_dirs: Option<bool>,
    /// deliveries at once, 1-64
    #[argh(option)]
    parallel: Option<u32>,
    /// how long delivered files stay listed, e.g. 0s, 90s, 12h, 7d
    #[argh(option, from_str_fn(duration))]
    keep_delivered: Option<String>,
    /// after replacing a file:// destination's disk: take it as this Pipe's destination
    /// (writes the marker that proves the right disk is mounted)
    #[argh(switch)]
    adopt_destination: bool,
}

/// list Pipes
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct List {
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// show one Pipe
#[derive(FromArgs)]
#[argh(subcommand, name = "show")]
struct Show {
    #[argh(positional)]
    id: String,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// remove a Pipe and its Grants (refused while it holds undelivered uploads; 'pipe
/// disable' stops a Pipe without losing anything)
#[derive(FromArgs)]
#[argh(subcommand, name = "remove")]
struct Remove {
    #[argh(positional)]
    id: String,
    /// remove it even if it holds undelivered uploads: they are lost
    #[argh(switch)]
    discard_backlog: bool,
}

/// accept uploads into a Pipe again
#[derive(FromArgs)]
#[argh(subcommand, name = "enable")]
struct Enable {
    #[argh(positional)]
    id: String,
}

/// refuse logins into a Pipe
#[derive(FromArgs)]
#[argh(subcommand, name = "disable")]
struct Disable {
    #[argh(positional)]
    id: String,
}

pub fn run(ctx: &Ctx, args: PipeArgs) -> Outcome {
    match args.cmd {
        Cmd::Add(a) => add(ctx, a),
        Cmd::Set(a) => {
            let route =
                RouteArgs::from_args(&a.ca_file, &a.proxy, a.proxy_stdin, a.secret_key_stdin)?;
            let secret_key = if a.secret_key_stdin {
                Some(read_secret_stdin("S3 secret key", "--secret-key-stdin")?.into())
            } else {
                None
            };
            let changes = PipeChanges {
                name: a.name,
                endpoint: a.endpoint,
                region: a.region,
                path_style: a.path_style,
                access_key: a.access_key,
                secret_key,
                ca_pem: route.ca_pem,
                proxy: route.proxy,
                overwrite: a.overwrite,
                create_dirs: a.create_dirs,
                parallel: a.parallel,
                keep_delivered: a.keep_delivered,
                adopt_destination: a.adopt_destination,
            };
            ctx.change(Request::PipeSet { id: a.id, changes })
        }
        Cmd::List(a) => match ctx.request(Request::PipeList)? {
            Response::Pipes { pipes } => output(a.json, &pipes, |p| print_table(p)),
            other => Err(unexpected(other)),
        },
        Cmd::Show(a) => match ctx.request(Request::PipeShow { id: a.id })? {
            Response::Pipe { pipe } => output(a.json, &pipe, print_pipe),
            other => Err(unexpected(other)),
        },
        Cmd::Remove(a) => ctx.change(Request::PipeRemove {
            id: a.id,
            discard_backlog: a.discard_backlog,
        }),
        Cmd::Enable(a) => ctx.change(Request::PipeEnable {
            id: a.id,
            enabled: true,
        }),
        Cmd::Disable(a) => ctx.change(Request::PipeEnable {
            id: a.id,
            enabled: false,
        }),
        Cmd::Test(a) => ctx.change(Request::PipeTest { id: a.id }),
    }
}

fn add(ctx: &Ctx, a: Add) -> Outcome {
    let s3 = a.dest.starts_with("s3://");
    let env = |name: &str| {
        if s3 {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        } else {
            None
        }
    };
    let route = RouteArgs::from_args(&a.ca_file, &a.proxy, a.proxy_stdin, a.secret_key_stdin)?;
    let secret_key = if a.secret_key_stdin {
        Some(read_secret_stdin("S3 secret key", "--secret-key-stdin")?.into())
    } else {
        env("AWS_SECRET_ACCESS_KEY").map(Into::into)
    };
    let spec = PipeSpec {
        id: a.id,
        name: a.name,
        dest: a.dest,
        endpoint: a.endpoint,
        region: a.region,
        path_style: a.path_style,
        access_key: a.access_key.or_else(|| env("AWS_ACCESS_KEY_ID")),
        secret_key,
        ca_pem: route.ca_pem.filter(|p| !p.is_empty()),
        proxy: route.proxy.filter(|p| !p.is_empty()),
        overwrite: a.overwrite,
        create_dirs: a.create_dirs,
        enabled: true,
        parallel: a.parallel,
        keep_delivered: a.keep_delivered,
    };
    match ctx.request(Request::PipeAdd { spec })? {
        Response::Pipe { pipe } => {
            println!("added pipe {} ({}) -> {}", pipe.id, pipe.name, pipe.dest);
            println!("grant it with: ftpgate sender grant NAME {}", pipe.id);
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

/// Checks a duration argument (`--keep-delivered 12h`) as argh reads it.
fn duration(text: &str) -> Result<String, String> {
    crate::duration::parse(text)
        .map(|_| text.to_string())
        .map_err(|e| e.0)
}

fn print_pipe(p: &PipeView) {
    println!("id:         {}", p.id);
    println!("name:       {}", p.name);
    println!("dest:       {}", p.dest);
    if p.region.is_some() {
        println!("endpoint:   {}", p.endpoint.as_deref().unwrap_or("AWS"));
        println!("region:     {}", p.region.as_deref().unwrap_or(""));
        println!("path_style: {}", yes_no(p.path_style));
        println!("access_key: {}", p.access_key.as_deref().unwrap_or(""));
        println!(
            "secret_key: {}",
            if p.secret_key_set {
                "set (hidden)"
            } else {
                "not set"
            }
        );
        println!(
            "ca:         {}",
            match p.ca_certificates {
                0 => "the public web PKI".to_string(),
                n => format!("{n} certificate(s) from --ca-file"),
            }
        );
        println!(
            "proxy:      {}",
            p.proxy.as_deref().unwrap_or("from the environment, if set")
        );
    }
    println!("overwrite:  {}", p.overwrite);
    println!("create_dirs: {}", yes_no(p.create_dirs));
    println!("parallel:   {}", p.parallel);
    println!("keep_delivered: {}", p.keep_delivered);
    println!("enabled:    {}", yes_no(p.enabled));
    println!("senders:    {}", list_or(&p.senders, "none"));
}

fn print_table(pipes: &[PipeView]) {
    if pipes.is_empty() {
        println!("no pipes yet: add one with 'ftpgate pipe add NAME --dest URL'");
        return;
    }
    println!(
        "{:<16} {:<24} {:<8} {:<40} SENDERS",
        "ID", "NAME", "ENABLED", "DEST"
    );
    for p in pipes {
        println!(
            "{:<16} {:<24} {:<8} {:<40} {}",
            p.id,
            p.name,
            yes_no(p.enabled),
            p.dest,
            list_or(&p.senders, "-")
        );
    }
}
