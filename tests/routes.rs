//! The ways a plant's network reaches S3: an endpoint signed by the plant's own CA (s3s-fs
//! behind stunnel with a CA this test makes), and an outbound HTTP proxy (tinyproxy). Both
//! are real programs on loopback, installed by scripts/test-all.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn program(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/test-all, which installs it");
}

/// A CA (PEM) and a certificate it signed for `localhost` with its key.
fn private_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Plant 4 private CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), server.pem(), key.serialize_pem())
}

/// stunnel: TLS on a new port in front of `s3`, with `cert` and `key`.
fn tls_terminator(dir: &Path, s3: &S3Server, cert: &str, key: &str) -> (Helper, u16) {
    let port = free_port();
    std::fs::write(dir.join("server.pem"), format!("{cert}{key}")).unwrap();
    let conf = dir.join("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\n[s3]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{}\ncert = {}\n",
            s3.port,
            dir.join("server.pem").display()
        ),
    )
    .unwrap();
    let child = Command::new(program("stunnel4"))
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stunnel4");
    wait_listening(port, "stunnel4");
    (Helper(child), port)
}

/// tinyproxy on a new port, logging every request to `log`.
fn proxy(dir: &Path, port: u16) -> Helper {
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogLevel Info\nLogFile \"{}\"\nMaxClients 20\n",
            dir.join("proxy.log").display()
        ),
    )
    .unwrap();
    let child = Command::new(program("tinyproxy"))
        .args(["-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tinyproxy");
    wait_listening(port, "tinyproxy");
    Helper(child)
}

fn add_pipe(g: &Gate, endpoint: &str, extra: &[&str]) {
    let dest = format!("s3://{BUCKET}/cell4");
    let mut args = vec![
        "pipe",
        "add",
        "Cloud",
        "--dest",
        &dest,
        "--id",
        "cloud",
        "--endpoint",
        endpoint,
        "--path-style",
        "--access-key",
        S3_ACCESS,
        "--secret-key-stdin",
    ];
    args.extend_from_slice(extra);
    g.run_stdin(&args, S3_SECRET).ok();
    g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], PW)
        .ok();
    g.run(&["sender", "grant", "cam1", "cloud"]).ok();
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {secs}s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_endpoint_signed_by_a_private_ca_is_trusted_with_its_ca_file_and_named_without() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("s3"));
    let (ca, cert, key) = private_ca();
    let (_tls, port) = tls_terminator(dir.path(), &s3, &cert, &key);
    let endpoint = format!("https://localhost:{port}");

    // Without the CA file: `pipe test` says the certificate is not trusted.
    let g = Gate::new();
    add_pipe(&g, &endpoint, &[]);
    let out = g.run(&["pipe", "test", "cloud"]);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("not signed by a CA this Pipe trusts") && said.contains("--ca-file"),
        "{said}"
    );

    // With it: uploads are delivered over TLS, and `pipe show` says where trust comes from.
    let ca_file = dir.path().join("plant-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    g.run(&[
        "pipe",
        "set",
        "cloud",
        "--ca-file",
        ca_file.to_str().unwrap(),
    ])
    .ok();
    assert!(
        g.run(&["pipe", "show", "cloud"])
            .ok()
            .contains("1 certificate(s) from --ca-file")
    );
    g.run(&["pipe", "test", "cloud"]).ok();
    let d = g.serve(&[]);
    let body = data(20_000, 7);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("snap.jpg", &body).code, 226);
    g.wait_delivered(30);
    assert_eq!(s3.get("cell4/snap.jpg").as_deref(), Some(&body[..]));

    // A file that is no CA is refused at the command line, with the reason.
    std::fs::write(dir.path().join("not.pem"), "hello").unwrap();
    let bad = g.run(&[
        "pipe",
        "set",
        "cloud",
        "--ca-file",
        dir.path().join("not.pem").to_str().unwrap(),
    ]);
    bad.fails(2, "holds no certificate");
}

#[test]
fn deliveries_go_through_the_proxy_and_a_dead_proxy_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("s3"));
    let port = free_port();
    let p = proxy(dir.path(), port);
    let g = Gate::new();
    let via = format!("http://127.0.0.1:{port}");
    add_pipe(&g, &s3.endpoint(), &["--proxy", &via]);
    // Credentials never on the command line.
    g.run(&[
        "pipe",
        "set",
        "cloud",
        "--proxy",
        &format!("http://plant:hunter2@127.0.0.1:{port}"),
    ])
    .fails(2, "standard input");
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    let body = data(5_000, 3);
    assert_eq!(c.stor("a.jpg", &body).code, 226);
    g.wait_delivered(30);
    assert_eq!(s3.get("cell4/a.jpg").as_deref(), Some(&body[..]));
    let log = std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("127.0.0.1:{}", s3.port)),
        "the proxy did not see the delivery:\n{log}"
    );

    // The proxy goes away: the Pipe is offline, and the reason names the proxy.
    drop(p);
    assert_eq!(c.stor("b.jpg", &body).code, 226);
    wait_for("the Pipe offline, naming the proxy", 30, || {
        g.status()
            .to_string()
            .contains(&format!("via proxy 127.0.0.1:{port}"))
    });
    assert!(s3.get("cell4/b.jpg").is_none());
    let _p = proxy(dir.path(), port);
    g.run(&["spool", "retry"]).ok();
    g.wait_delivered(30);
    assert_eq!(s3.get("cell4/b.jpg").as_deref(), Some(&body[..]));
    drop(d);
}

#[test]
fn the_daemons_https_proxy_and_no_proxy_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&dir.path().join("s3"));
    let port = free_port();
    let _p = proxy(dir.path(), port);
    let g = Gate::new();
    add_pipe(&g, &s3.endpoint(), &[]);
    let via = format!("http://127.0.0.1:{port}");
    let log = || std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default();
    let seen = || log().matches(&format!("127.0.0.1:{}", s3.port)).count();
    let body = data(3_000, 9);
    {
        let d = g.serve_env(&[], &[("HTTP_PROXY", &via), ("HTTPS_PROXY", &via)]);
        let mut c = Raw::login(d.ftp());
        assert_eq!(c.stor("env.jpg", &body).code, 226);
        g.wait_delivered(30);
        assert!(
            seen() > 0,
            "the delivery did not use HTTP_PROXY:\n{}",
            log()
        );
    }
    // NO_PROXY names the endpoint: straight there.
    let before = seen();
    let d = g.serve_env(&[], &[("HTTP_PROXY", &via), ("NO_PROXY", "127.0.0.1")]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("direct.jpg", &body).code, 226);
    g.wait_delivered(30);
    assert_eq!(s3.get("cell4/direct.jpg").as_deref(), Some(&body[..]));
    assert_eq!(seen(), before, "NO_PROXY was ignored:\n{}", log());
}
