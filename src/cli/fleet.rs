//! `ftpgate export` and `ftpgate apply`.

use argh::FromArgs;

use super::{Ctx, Failure, Outcome, unexpected};
use crate::admin::{Request, Response};

/// print Senders, Pipes and Grants as a fleet file (TOML) on standard output
#[derive(FromArgs)]
#[argh(subcommand, name = "export")]
pub struct ExportArgs {
    /// include S3 secret keys (keep such a file private)
    #[argh(switch)]
    include_secrets: bool,
}

/// make Senders, Pipes and Grants match a fleet file, printing what changes
#[derive(FromArgs)]
#[argh(subcommand, name = "apply")]
pub struct ApplyArgs {
    /// the fleet file ('-' for standard input)
    #[argh(positional)]
    file: String,
    /// print what would change without changing anything
    #[argh(switch)]
    dry_run: bool,
    /// remove Pipes the file drops even if they hold undelivered uploads (lost with them)
    #[argh(switch)]
    discard_backlog: bool,
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> Outcome {
    match ctx.request(Request::Export {
        include_secrets: args.include_secrets,
    })? {
        Response::Export { toml } => {
            print!("{toml}");
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

pub fn apply(ctx: &Ctx, args: ApplyArgs) -> Outcome {
    let text = if args.file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            Failure::runtime(format!(
                "cannot read the fleet file from standard input: {e}"
            ))
        })?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| Failure::usage(format!("cannot read fleet file {}: {e}", args.file)))?
    };
    match ctx.request(Request::Apply {
        fleet: text,
        dry_run: args.dry_run,
        discard_backlog: args.discard_backlog,
    })? {
        Response::Applied { changes, dry_run } => {
            if changes.is_empty() {
                println!("no changes: the state already matches {}", args.file);
            }
            for c in changes {
                println!("{}{c}", if dry_run { "would: " } else { "" });
            }
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}
