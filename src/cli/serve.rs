//! `ftpgate serve` and `ftpgate demo`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use argh::FromArgs;

use super::{Ctx, Failure, Outcome};
use crate::daemon::Options;
use crate::ftp::Config as FtpConfig;
use crate::gateway::server::Config as SessionConfig;
use crate::spool::Limits;

/// run the gateway: FTP listeners, spool, and the control socket
#[derive(FromArgs)]
#[argh(subcommand, name = "serve")]
pub struct ServeArgs {
    /// address to listen on, e.g. 0.0.0.0:21 or [::]:21 (repeatable; default 0.0.0.0:21)
    #[argh(option)]
    listen: Vec<SocketAddr>,
    /// passive data port range LO-HI (default 50000-50999)
    #[argh(option, from_str_fn(port_range), default = "50000..=50999")]
    passive_ports: RangeInclusive<u16>,
    /// IPv4 address announced in PASV replies, for NAT (default: the address the client reached)
    #[argh(option)]
    passive_address: Option<Ipv4Addr>,
    /// on|off: allow active mode (PORT/EPRT) back to the client (default on)
    #[argh(option, from_str_fn(super::on_off), default = "true")]
    active: bool,
    /// seconds an idle logged-in control connection is kept (default 300)
    #[argh(option, default = "300")]
    idle_timeout: u64,
    /// seconds a connection has to log in from its start, and a command line to end from its first byte (default 30)
    #[argh(option, default = "30")]
    login_timeout: u64,
    /// most logged-in sessions at once (default 256)
    #[argh(option, default = "256")]
    max_sessions: usize,
    /// most connections waiting to log in at once, half of them from one address (default 64)
    #[argh(option, default = "64")]
    max_unauthenticated: usize,
    /// most sessions from one address (default 32)
    #[argh(option, default = "32")]
    max_sessions_per_ip: usize,
    /// most bytes the spool may hold, e.g. 20G (default: no limit but --spool-min-free)
    #[argh(option, from_str_fn(bytes), default = "0")]
    spool_max_bytes: u64,
    /// most bytes of broken uploads kept for resumption, one sender a quarter of it (default: a quarter of --spool-max-bytes, or 4G)
    #[argh(option, from_str_fn(bytes), default = "0")]
    partial_max_bytes: u64,
    /// free space to keep on the spool's filesystem, e.g. 512M (default 64M)
    #[argh(option, from_str_fn(bytes), default = "64 << 20")]
    spool_min_free: u64,
    /// serve the status page at http://ADDR/ and Prometheus metrics at /metrics, e.g.
    /// 127.0.0.1:9121 (off a loopback address, requests need 'ftpgate http-token')
    #[argh(option)]
    http: Option<SocketAddr>,
    /// the same as --http (the name of earlier releases)
    #[argh(option)]
    metrics: Option<SocketAddr>,
    /// delivered files remembered at most, all Pipes together, oldest forgotten first
    /// (default 150000; each Pipe's --keep-delivered window applies below it)
    #[argh(option, default = "crate::store::catalog::expire::DEFAULT_CAP")]
    keep_delivered_max: u64,
    /// how long a Pipe's destination fails before the event pipe.offline, e.g. 10m
    /// (default 5m)
    #[argh(option, from_str_fn(duration), default = "300")]
    offline_grace: u64,
    /// off|optional|required: explicit FTPS (AUTH TLS) policy (default optional)
    #[argh(option, default = "crate::gateway::tls::Policy::Optional")]
    tls: crate::gateway::tls::Policy,
    /// server certificate chain, PEM (with --key; default: STATE/tls/, generated on first start)
    #[argh(option)]
    cert: Option<std::path::PathBuf>,
    /// the certificate's private key, PEM
    #[argh(option)]
    key: Option<std::path::PathBuf>,
    /// required|optional: must TLS data connections resume the control session (default required)
    #[argh(option, default = "crate::store::senders::TlsReuse::Required")]
    tls_reuse: crate::store::senders::TlsReuse,
    /// address to serve SFTP (SSH) on, e.g. 0.0.0.0:22 (repeatable; default: SFTP off)
    #[argh(option)]
    sftp_listen: Vec<SocketAddr>,
    /// the SSH host key, an OpenSSH private key without passphrase (default: STATE/ssh_host_ed25519_key, made on first start)
    #[argh(option)]
    sftp_host_key: Option<std::path::PathBuf>,
}

/// Parses `LO-HI`.
fn port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let bad =
        || format!("invalid port range {s:?}: use LO-HI, e.g. 50000-50100, with 1024 <= LO <= HI");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (u16, u16) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if lo < 1024 || lo > hi {
        return Err(bad());
    }
    Ok(lo..=hi)
}

/// Parses a byte count with an optional K, M, G or T suffix (powers of 1024).
fn duration(s: &str) -> Result<u64, String> {
    crate::duration::parse(s).map_err(|e| e.0)
}

pub fn bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?}: use a number of bytes, optionally with K, M, G or T");
    let s = s.trim();
    let (num, shift) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 10),
        Some('M') => (&s[..s.len() - 1], 20),
        Some('G') => (&s[..s.len() - 1], 30),
        Some('T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

pub fn run(ctx: &Ctx, a: ServeArgs) -> Outcome {
    if a.cert.is_some() != a.key.is_some() {
        return Err(Failure::usage(
            "--cert and --key go together: give both, or neither to use STATE/tls/",
        ));
    }
    if [a.max_sessions, a.max_unauthenticated, a.max_sessions_per_ip].contains(&0)
        || a.idle_timeout == 0
        || a.login_timeout == 0
    {
        return Err(Failure::usage(
            "--max-sessions, --max-unauthenticated, --max-sessions-per-ip, --idle-timeout and --login-timeout must be at least 1",
        ));
    }
    let ftp = FtpConfig {
        listen: if a.listen.is_empty() {
            vec![SocketAddr::from(([0, 0, 0, 0], 21))]
        } else {
            a.listen
        },
        passive_ports: a.passive_ports,
        passive_address: a.passive_address,
        active: a.active,
        tls: a.tls,
        tls_reuse: a.tls_reuse,
        ..FtpConfig::default()
    };
    let sessions = SessionConfig {
        idle_timeout: Duration::from_secs(a.idle_timeout),
        login_timeout: Duration::from_secs(a.login_timeout),
        max_sessions: a.max_sessions,
        max_unauthenticated: a.max_unauthenticated,
        max_sessions_per_ip: a.max_sessions_per_ip,
        ..SessionConfig::default()
    };
    let cert = a.cert.zip(a.key);
    let limits = Limits {
        max_bytes: a.spool_max_bytes,
        min_free: a.spool_min_free,
        partial_max_bytes: a.partial_max_bytes,
        ..Limits::default()
    };
    crate::daemon::run(
        &ctx.state,
        Options {
            ftp,
            sessions,
            limits,
            http: match (a.http, a.metrics) {
                (Some(_), Some(_)) => {
                    return Err(Failure::usage(
                        "--http and --metrics name the same listener: give one",
                    ));
                }
                (h, m) => h.or(m),
            },
            cert,
            sftp_listen: a.sftp_listen,
            sftp_host_key: a.sftp_host_key,
            keep_delivered_max: a.keep_delivered_max,
            offline_grace: std::time::Duration::from_secs(a.offline_grace),
        },
    )
    .map_err(|e| Failure::runtime(e.to_string()))
}

/// try ftpgate locally: a demo state directory, a Pipe into a local folder, a Sender,
/// and a server on 127.0.0.1:2121
#[derive(FromArgs)]
#[argh(subcommand, name = "demo")]
pub struct DemoArgs {
    /// port to listen on at 127.0.0.1 (default 2121)
    #[argh(option, default = "2121")]
    port: u16,
    /// port to serve SFTP on at 127.0.0.1 (default 2222)
    #[argh(option, default = "2222")]
    sftp_port: u16,
    /// port of the status page at 127.0.0.1 (default 2180)
    #[argh(option, default = "2180")]
    http_port: u16,
}

/// The demo's Pipe into `STATE/delivered/` and its Sender `demo` with a new password,
/// applied as a fleet file; returns the folder and the password.
fn provision_demo(state: &crate::state::StateDir) -> Result<(std::path::PathBuf, String), Failure> {
    let delivered = state.root().join("delivered");
    std::fs::create_dir_all(&delivered)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", delivered.display())))?;
    let delivered = delivered
        .canonicalize()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let password = crate::auth::generate_password();
    let fleet = format!(
        "[[pipe]]\nid = \"demo\"\nname = \"Demo folder\"\ndest = \"file://{}\"\n\n[[sender]]\nname = \"demo\"\npassword_hash = \"{}\"\npipes = [\"demo\"]\n",
        delivered.display(),
        crate::auth::hash_password(&password)?.expose()
    );
    let demo_ctx = Ctx {
        state: state.clone(),
    };
    demo_ctx.request(crate::admin::Request::Apply {
        fleet,
        dry_run: false,
        discard_backlog: false,
    })?;
    Ok((delivered, password))
}

/// What the demo is and how to try it.
fn print_demo(
    state: &crate::state::StateDir,
    delivered: &std::path::Path,
    password: &str,
    addr: SocketAddr,
    sftp_addr: Option<SocketAddr>,
) {
    println!("ftpgate demo");
    println!("  state:     {}", state.root().display());
    println!("  pipe:      demo -> file://{}", delivered.display());
    println!("  sender:    demo   password: {password}");
    match sftp_addr {
        Some(s) => println!("  listening: ftp://{addr}  sftp://{s}"),
        None => println!("  listening: ftp://{addr}"),
    }
    println!();
    println!("Upload a file with:");
    println!("  curl -T /etc/hostname ftp://demo:{password}@{addr}/");
    println!(
        "It is acknowledged once it is safe in {}/spool;",
        state.root().display()
    );
    println!("list it with: curl ftp://demo:{password}@{addr}/");
    if let Some(s) = sftp_addr {
        println!(
            "Over SFTP: sftp -P {} demo@{} (the same password)",
            s.port(),
            s.ip()
        );
    }
    println!("Stop with Ctrl-C.");
}

pub fn demo(ctx: &Ctx, a: DemoArgs, explicit_state: bool) -> Outcome {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::runtime(format!("cannot read the current directory: {e}")))?;
    let state = if explicit_state {
        ctx.state.clone()
    } else {
        crate::state::StateDir::new(cwd.join("demo-state"))
    };
    let (delivered, password) = provision_demo(&state)?;
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port);
    // A build without SFTP (the sftp feature) serves FTP alone.
    let sftp_addr = cfg!(feature = "sftp")
        .then(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.sftp_port));
    print_demo(&state, &delivered, &password, addr, sftp_addr);
    println!(
        "Watch it at http://127.0.0.1:{}/ or with: ftpgate --state {} events --follow",
        a.http_port,
        state.root().display()
    );
    let ftp = FtpConfig {
        listen: vec![addr],
        passive_ports: 52000..=52999,
        ..FtpConfig::default()
    };
    let sessions = SessionConfig {
        login_fail_delay: Duration::from_millis(500),
        ..SessionConfig::default()
    };
    crate::daemon::run(
        &state,
        Options {
            ftp,
            sessions,
            limits: Limits::default(),
            http: Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                a.http_port,
            )),
            cert: None,
            sftp_listen: sftp_addr.into_iter().collect(),
            sftp_host_key: None,
            keep_delivered_max: crate::store::catalog::expire::DEFAULT_CAP,
            offline_grace: std::time::Duration::from_secs(300),
        },
    )
    .map_err(|e| Failure::runtime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ranges() {
        assert_eq!(bytes("512M"), Ok(512 << 20));
        assert_eq!(bytes("20g"), Ok(20 << 30));
        assert_eq!(bytes("1000"), Ok(1000));
        assert!(bytes("x").is_err() && bytes("99999999999T").is_err());
        assert_eq!(port_range("50000-50100"), Ok(50000..=50100));
        assert!(
            port_range("100-200").is_err()
                && port_range("6000-5000").is_err()
                && port_range("abc").is_err()
        );
    }
}
