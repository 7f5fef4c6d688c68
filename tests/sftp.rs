//! Real SFTP clients against the real server: OpenSSH's `sftp` and `scp`, curl (libssh2)
//! and lftp. Uploads must land at the destination byte for byte; reading back, shells,
//! commands and forwarding must be refused with the server still serving.
//! Only in a build with the `sftp` feature (the default).
#![cfg(feature = "sftp")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Daemon, Gate, PW, data};

/// The daemon with SFTP on an ephemeral loopback port.
fn serve_sftp(g: &Gate) -> Daemon {
    g.serve(&["--sftp-listen", "127.0.0.1:0"])
}

/// A directory for the test's client files, beside the gateway's own.
fn scratch(g: &Gate) -> PathBuf {
    let d = g.state().join("client-side");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An `SSH_ASKPASS` program that answers `password`, so OpenSSH clients log in without a
/// terminal.
fn askpass(dir: &Path, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("askpass.sh");
    std::fs::write(&p, format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// OpenSSH client options for a test server: no host key pinning, password only.
fn openssh(cmd: &str, g: &Gate, password: &str) -> Command {
    let mut c = Command::new(cmd);
    c.env("SSH_ASKPASS", askpass(&scratch(g), password))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            // sftp -b would turn password prompts off.
            "-o",
            "BatchMode=no",
            "-o",
            "LogLevel=ERROR",
        ]);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn delivered(g: &Gate, path: &str) -> Option<Vec<u8>> {
    std::fs::read(g.state().join("delivered").join(path)).ok()
}

/// An `sftp -b` batch against the daemon as cam1.
fn sftp_batch(g: &Gate, d: &Daemon, batch: &str) -> Output {
    let file = scratch(g).join("batch.txt");
    std::fs::write(&file, batch).unwrap();
    openssh("sftp", g, PW)
        .arg("-P")
        .arg(d.sftp().port().to_string())
        .arg("-b")
        .arg(&file)
        .arg("cam1@127.0.0.1")
        .output()
        .expect("run sftp")
}

#[test]
fn openssh_sftp_puts_makes_renames_removes_lists_and_cannot_get() {
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let src = scratch(&g).join("src");
    std::fs::create_dir_all(&src).unwrap();
    let (a, b, big) = (data(10_000, 1), data(5, 2), data(3 << 20, 3));
    std::fs::write(src.join("a.jpg"), &a).unwrap();
    std::fs::write(src.join("b.jpg"), &b).unwrap();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    let out = scratch(&g).join("got");
    let batch = format!(
        "mkdir cams\n\
         put {s}/a.jpg cams/a.jpg\n\
         put {s}/b.jpg cams/b.jpg\n\
         put {s}/big.bin cams/big.bin\n\
         rename cams/b.jpg cams/c.jpg\n\
         put {s}/a.jpg cams/gone.jpg\n\
         rm cams/gone.jpg\n\
         mkdir empty\n\
         rmdir empty\n\
         ls -l cams\n\
         -get cams/a.jpg {o}\n",
        s = src.display(),
        o = out.display()
    );
    let o = sftp_batch(&g, &d, &batch);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // The listing shows what the catalog holds.
    for name in ["a.jpg", "big.bin", "c.jpg"] {
        assert!(t.contains(name), "{name} missing from the listing: {t}");
    }
    assert!(
        !t.contains("gone.jpg") || t.contains("rm cams/gone.jpg"),
        "{t}"
    );
    // Reading back is refused, and says why.
    assert!(t.contains("Permission denied"), "{t}");
    assert!(!out.exists(), "a download produced a file");
    g.wait_delivered(30);
    assert_eq!(delivered(&g, "cams/a.jpg"), Some(a));
    assert_eq!(delivered(&g, "cams/c.jpg"), Some(b));
    assert_eq!(delivered(&g, "cams/big.bin"), Some(big));
    assert_eq!(delivered(&g, "cams/b.jpg"), None);
    assert_eq!(delivered(&g, "cams/gone.jpg"), None);
    assert!(!g.state().join("delivered/empty").exists());
    let log = d.log_text();
    assert!(
        log.contains("upload proto=sftp sender=cam1 pipe=line1 path=/cams/big.bin bytes=3145728"),
        "{log}"
    );
}

#[test]
fn scp_curl_and_lftp_upload_over_sftp() {
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let port = d.sftp().port().to_string();
    let src = scratch(&g).join("up.bin");
    let bytes = data(200_000, 9);
    std::fs::write(&src, &bytes).unwrap();

    let o = openssh("scp", &g, PW)
        .args(["-P", &port])
        .arg(&src)
        .arg("cam1@127.0.0.1:/scp.bin")
        .output()
        .unwrap();
    assert!(o.status.success(), "scp: {}", text(&o));

    let o = Command::new("curl")
        .args(["-sS", "-k", "--ftp-create-dirs", "-u"])
        .arg(format!("cam1:{PW}"))
        .arg("-T")
        .arg(&src)
        .arg(format!("sftp://127.0.0.1:{port}/curl/deep/c.bin"))
        .output()
        .unwrap();
    assert!(o.status.success(), "curl: {}", text(&o));

    let o = Command::new("lftp")
        .arg("-c")
        .arg(format!(
            "set sftp:auto-confirm yes; set net:max-retries 1; open -u cam1,{PW} sftp://127.0.0.1:{port}; put {} -o lftp.bin; mkdir -p lf/x; put {} -o lf/x/l.bin",
            src.display(),
            src.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "lftp: {}", text(&o));

    g.wait_delivered(30);
    for p in ["scp.bin", "curl/deep/c.bin", "lftp.bin", "lf/x/l.bin"] {
        assert_eq!(delivered(&g, p).as_deref(), Some(&bytes[..]), "{p}");
    }
}

#[test]
fn shells_commands_and_forwarding_are_refused_and_the_server_keeps_serving() {
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let port = d.sftp().port().to_string();
    let ssh = |opts: &[&str], cmd: &[&str]| {
        openssh("ssh", &g, PW)
            .args(["-p", &port, "-T"])
            .args(opts)
            .arg("cam1@127.0.0.1")
            .args(cmd)
            .output()
            .unwrap()
    };
    // A command, a shell, and a stdio forward to a port: each refused.
    let o = ssh(&[], &["echo", "hello"]);
    assert!(
        !o.status.success() && !text(&o).contains("hello"),
        "{}",
        text(&o)
    );
    let o = ssh(&[], &[]);
    assert!(!o.status.success(), "a shell was opened: {}", text(&o));
    let o = ssh(&["-W", &format!("127.0.0.1:{}", d.ftp().port())], &[]);
    assert!(!o.status.success(), "a forward was opened: {}", text(&o));
    assert!(
        !text(&o).contains("220"),
        "the FTP banner came through: {}",
        text(&o)
    );
    // Another subsystem.
    let o = ssh(&["-s"], &["netconf"]);
    assert!(!o.status.success(), "{}", text(&o));
    // A wrong password gets nothing.
    let o = openssh("sftp", &g, "wrong")
        .args(["-P", &port, "cam1@127.0.0.1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let log = d.log_text();
    assert!(log.contains("refused a command"), "{log}");
    assert!(log.contains("sftp login failed"), "{log}");
    // Still serving.
    let src = scratch(&g).join("after.bin");
    std::fs::write(&src, b"still here").unwrap();
    let o = sftp_batch(&g, &d, &format!("put {} after.bin\n", src.display()));
    assert!(o.status.success(), "{}", text(&o));
    g.wait_delivered(30);
    assert_eq!(
        delivered(&g, "after.bin").as_deref(),
        Some(&b"still here"[..])
    );
}

#[test]
fn the_host_key_is_made_once_and_shown_in_status() {
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let st = g.status();
    let fp = st["ssh_fingerprint"]
        .as_str()
        .expect("fingerprint in status")
        .to_string();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    assert!(d.log_text().contains(&fp));
    let key = g.state().join("ssh_host_ed25519_key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // What the client sees is the same key: ssh-keygen prints its fingerprint.
    let o = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key)
        .output()
        .unwrap();
    assert!(text(&o).contains(&fp), "{}", text(&o));
    d.stop();
    let d = serve_sftp(&g);
    assert_eq!(g.status()["ssh_fingerprint"].as_str(), Some(fp.as_str()));
    drop(d);
}

/// paramiko's Python (scripts/test-all makes a virtualenv for it).
fn paramiko(args: &[&str]) -> Command {
    let py = std::env::var("FTPGATE_PARAMIKO_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut c = Command::new(py);
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sftp_client.py"
    ))
    .args(args);
    c
}

#[test]
fn paramiko_uploads_with_a_password_into_s3() {
    let s3_dir = tempfile::tempdir().unwrap();
    let s3 = common::S3Server::start(s3_dir.path());
    let g = Gate::with_s3(&s3, common::S3_SECRET);
    let d = serve_sftp(&g);
    let src = scratch(&g).join("p.bin");
    let bytes = data(1 << 20, 4);
    std::fs::write(&src, &bytes).unwrap();
    let (host, port) = ("127.0.0.1", d.sftp().port().to_string());
    let o = paramiko(&[
        "put",
        host,
        &port,
        "cam1",
        PW,
        src.to_str().unwrap(),
        "/pk.bin",
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "paramiko: {}", text(&o));
    g.wait_delivered(30);
    assert_eq!(s3.get("cell4/pk.bin"), Some(bytes));
}

#[test]
fn malformed_packets_get_a_clear_status_or_a_disconnect_and_the_server_lives() {
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let port = d.sftp().port().to_string();
    let o = paramiko(&["hostile", "127.0.0.1", &port, "cam1", PW])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let probe = |name: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("probe {name}: ")))
            .unwrap_or_else(|| panic!("no probe {name}: {t}"))
            .to_string()
    };
    assert_eq!(probe("init"), "type 2");
    assert!(probe("unknown-type").starts_with("status 8 "), "{t}");
    assert!(probe("short-stat").starts_with("status 5 malformed"), "{t}");
    assert_eq!(probe("realpath-escape"), "name /");
    assert!(
        probe("open-read").starts_with("status 3 this gateway only receives"),
        "{t}"
    );
    assert!(
        probe("stray-write").starts_with("status 4 no such handle"),
        "{t}"
    );
    assert!(
        probe("control-char").starts_with("status 4 bad file name"),
        "{t}"
    );
    let ooo = probe("out-of-order");
    assert!(
        ooo.starts_with("status 0 OK | status 0 OK | status 0 Stored /ooo.txt (10 bytes"),
        "{ooo}"
    );
    let gap = probe("gap");
    assert!(
        gap.contains("status 4 bytes 0 to 10 of /holey.txt were never written"),
        "{gap}"
    );
    assert_eq!(probe("huge-length"), "closed");
    assert!(
        d.log_text().contains("protocol error: a packet of"),
        "{}",
        d.log_text()
    );
    // The server is still there for the next client.
    let src = scratch(&g).join("n.bin");
    std::fs::write(&src, b"next").unwrap();
    let o = sftp_batch(&g, &d, &format!("put {} n.bin\n", src.display()));
    assert!(o.status.success(), "{}", text(&o));
    g.wait_delivered(30);
    assert_eq!(
        delivered(&g, "ooo.txt").as_deref(),
        Some(&b"helloworld"[..])
    );
    assert_eq!(delivered(&g, "holey.txt"), None);
}

#[test]
fn kill_9_during_sftp_uploads_delivers_every_acknowledged_file_and_nothing_else() {
    use std::io::{BufRead, BufReader};
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let port = d.sftp().port().to_string();
    let mut child = paramiko(&[
        "put-many",
        "127.0.0.1",
        &port,
        "cam1",
        PW,
        "100000",
        "300000",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 25 {
        let line = lines.next().expect("the client stopped early").unwrap();
        let mut f = line.split_whitespace().skip(1);
        acked.push((f.next().unwrap().into(), f.next().unwrap().into()));
    }
    d.kill9();
    // What the client printed after the kill was acknowledged before it.
    for line in lines.map_while(Result::ok) {
        let mut f = line.split_whitespace().skip(1);
        acked.push((f.next().unwrap().into(), f.next().unwrap().into()));
    }
    let _ = child.wait();
    let _d = serve_sftp(&g);
    g.wait_delivered(60);
    let out = g.state().join("delivered");
    for (name, sha) in &acked {
        let got = std::fs::read(out.join(name.trim_start_matches('/')))
            .unwrap_or_else(|_| panic!("{name} was acknowledged but not delivered"));
        assert_eq!(
            &common::sha256(&got),
            sha,
            "{name} delivered with other bytes"
        );
    }
    // Nothing else, but the one upload whose CLOSE may have been committed as the kill
    // came, before its OK reached the client: complete, never a partial.
    let extra: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != common::STAGING && n != common::MARKER)
        .filter(|n| !acked.iter().any(|(a, _)| a.trim_start_matches('/') == n))
        .collect();
    assert!(
        extra.len() <= 1,
        "delivered but never acknowledged: {extra:?}"
    );
    for n in &extra {
        let len = std::fs::metadata(out.join(n)).unwrap().len();
        assert_eq!(len, 300_000, "{n}: a partial upload was delivered");
    }
}

#[test]
fn a_sender_key_logs_in_with_openssh_and_paramiko_until_it_is_removed() {
    let g = Gate::provisioned();
    let dir = scratch(&g);
    let key = dir.join("id_ed25519");
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cam1@test", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    g.run_stdin(&["sender", "key", "add", "cam1"], &public).ok();
    let listed = g.run(&["sender", "key", "list", "cam1"]).ok().to_string();
    assert!(
        listed.starts_with("SHA256:") && listed.contains("cam1@test"),
        "{listed}"
    );
    let fingerprint = listed.split_whitespace().next().unwrap().to_string();
    // A line that is not a key is refused with a sentence, and nothing changes.
    g.run_stdin(&["sender", "key", "add", "cam1"], "ssh-ed25519 garbage")
        .fails(2, "not an OpenSSH public key");

    let d = serve_sftp(&g);
    let port = d.sftp().port().to_string();
    let src = dir.join("k.bin");
    std::fs::write(&src, data(70_000, 5)).unwrap();
    let batch = dir.join("kb.txt");
    std::fs::write(&batch, format!("put {} by-key.bin\n", src.display())).unwrap();
    let with_key = |g: &Gate| {
        Command::new("sftp")
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .arg("-i")
            .arg(&key)
            .args(["-P", &port, "-b"])
            .arg(&batch)
            .arg("cam1@line1@127.0.0.1")
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(g.state())
            .output()
            .unwrap()
    };
    let o = with_key(&g);
    assert!(o.status.success(), "{}", text(&o));
    let o = paramiko(&[
        "put",
        "127.0.0.1",
        &port,
        "cam1",
        "",
        src.to_str().unwrap(),
        "/by-paramiko-key.bin",
        key.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "paramiko with a key: {}", text(&o));
    g.wait_delivered(30);
    let want = std::fs::read(&src).unwrap();
    assert_eq!(delivered(&g, "by-key.bin").as_deref(), Some(&want[..]));
    assert_eq!(
        delivered(&g, "by-paramiko-key.bin").as_deref(),
        Some(&want[..])
    );
    assert!(d.log_text().contains("with=key"), "{}", d.log_text());

    // Exported and applied like the rest of the Sender.
    let fleet = g.run(&["export"]).ok().to_string();
    assert!(fleet.contains("ssh_keys"), "{fleet}");

    g.run(&["sender", "key", "remove", "cam1", &fingerprint])
        .ok();
    let o = with_key(&g);
    assert!(
        !o.status.success(),
        "a removed key still logs in: {}",
        text(&o)
    );
}

/// rclone's sftp backend (Go's pkg/sftp: many writes in flight, then SETSTAT of the
/// modification time) copies a tree.
#[test]
fn rclone_copies_a_tree_over_sftp() {
    let rclone = std::env::var("FTPGATE_RCLONE").unwrap_or_else(|_| "rclone".into());
    let g = Gate::provisioned();
    let d = serve_sftp(&g);
    let src = scratch(&g).join("tree");
    for i in 0..30 {
        let dir = src.join(format!("cam{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("img{i}.jpg")),
            data(50_000 + i * 9_000, i as u8),
        )
        .unwrap();
    }
    let obscured = Command::new(&rclone)
        .args(["obscure", PW])
        .output()
        .unwrap();
    let obscured = String::from_utf8_lossy(&obscured.stdout).trim().to_string();
    let o = Command::new(&rclone)
        .args(["copy", "--sftp-host=127.0.0.1", "--sftp-user=cam1"])
        .arg(format!("--sftp-port={}", d.sftp().port()))
        .arg(format!("--sftp-pass={obscured}"))
        .args([
            "--sftp-disable-hashcheck",
            "--retries=1",
            "--low-level-retries=1",
        ])
        .arg(&src)
        .arg(":sftp:plant")
        .env("RCLONE_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "rclone: {}", text(&o));
    g.wait_delivered(60);
    for i in 0..30 {
        let rel = format!("cam{}/img{i}.jpg", i % 3);
        let want = std::fs::read(src.join(&rel)).unwrap();
        assert_eq!(delivered(&g, &format!("plant/{rel}")), Some(want), "{rel}");
    }
}
