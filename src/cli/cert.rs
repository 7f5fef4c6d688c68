//! `ftpgate cert generate`.

use argh::FromArgs;

use super::{Ctx, Failure, Outcome};

/// manage the FTPS server certificate
#[derive(FromArgs)]
#[argh(subcommand, name = "cert")]
pub struct CertArgs {
    #[argh(subcommand)]
    cmd: CertCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum CertCmd {
    Generate(Generate),
}

/// generate a new ECDSA P-256 key and self-signed certificate in STATE/tls/
#[derive(FromArgs)]
#[argh(subcommand, name = "generate")]
struct Generate {
    /// a DNS name or IP address the certificate covers (repeatable); the host name and
    /// localhost are always added
    #[argh(option)]
    hostname: Vec<String>,
}

pub fn run(ctx: &Ctx, args: CertArgs) -> Outcome {
    let CertCmd::Generate(g) = args.cmd;
    ctx.state.create().map_err(|e| {
        Failure::runtime(format!("cannot create {}: {e}", ctx.state.root().display()))
    })?;
    let names = crate::cert::default_names(&g.hostname);
    let made = crate::cert::generate(&ctx.state, &names).map_err(|e| match e {
        crate::cert::Error::BadName(_) => Failure::usage(e.to_string()),
        _ => Failure::runtime(e.to_string()),
    })?;
    println!(
        "wrote {} and {}",
        ctx.state.cert_file().display(),
        ctx.state.key_file().display()
    );
    println!("names: {}", made.names.join(", "));
    println!("SHA-256 fingerprint: {}", made.fingerprint);
    println!("a running daemon picks it up on SIGHUP or restart");
    Ok(())
}
