//! Explicit FTPS (RFC 4217) with real clients: Python's ftplib, curl, lftp and openssl.

mod common;

use std::process::Command;

use common::{Gate, PW, Raw, data};

/// Runs a command; returns (success, stdout+stderr).
fn sh(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run client");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const FTPLIB_TLS: &str = r#"
import ftplib, io, ssl, sys
host, port, pw, name, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Reuse(ftplib.FTP_TLS):
    # Offers the control connection's TLS session on every data connection (stock
    # ftplib does not: python/cpython#63699 upstream, formerly bpo-19500).
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

class NoCloseNotify(Reuse):
    # Sends the data, then drops the TCP connection without TLS close_notify.
    def storbinary(self, cmd, fp, blocksize=8192, callback=None, rest=None):
        self.voidcmd("TYPE I")
        conn = self.transfercmd(cmd, rest)
        conn.sendall(fp.read())
        import socket
        raw = socket.socket(fileno=conn.detach())
        raw.close()
        return self.getresp()

cls = {"reuse": Reuse, "noreuse": ftplib.FTP_TLS, "nonotify": NoCloseNotify, "hup": Reuse}[mode]
ftp = cls(context=ctx)
ftp.connect(host, port, timeout=20)
ftp.auth()
ftp.login(name, pw)
ftp.prot_p()
body = bytes(range(256)) * 4096
if mode == "hup":
    # A transfer, then the daemon reloads its certificate, then this session goes on.
    import os, signal, time
    print("BEFORE", ftp.storbinary("STOR before-hup.bin", io.BytesIO(body)))
    os.kill(int(sys.argv[6]), signal.SIGHUP)
    time.sleep(0.5)
try:
    print(ftp.storbinary("STOR tls-" + mode + ".bin", io.BytesIO(body)))
    print("LIST", len(ftp.nlst()))
except ftplib.all_errors as e:
    print("ERROR", e)
    try:
        print("REPLY", ftp.getresp())
    except ftplib.all_errors as e2:
        print("REPLY", e2)
ftp.close()
"#;

fn ftplib_tls(addr: std::net::SocketAddr, mode: &str) -> String {
    ftplib_tls_with(addr, mode, 0)
}

/// `pid`: the daemon, for the `hup` mode to signal.
fn ftplib_tls_with(addr: std::net::SocketAddr, mode: &str, pid: u32) -> String {
    let (_, out) = sh(Command::new("python3").args([
        "-c",
        FTPLIB_TLS,
        "127.0.0.1",
        &addr.port().to_string(),
        PW,
        "cam1",
        mode,
        &pid.to_string(),
    ]));
    out
}

#[test]
fn python_ftplib_uploads_over_ftps_resuming_the_session() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let out = ftplib_tls(d.ftp(), "reuse");
    assert!(out.contains("226"), "{out}");
    assert!(
        out.contains("LIST 1"),
        "a listing over a second resumed data connection: {out}"
    );
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.cmd("SIZE tls-reuse.bin").text, "213 1048576");
}

#[test]
fn a_data_connection_that_does_not_resume_is_refused_unless_the_sender_is_relaxed() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let out = ftplib_tls(d.ftp(), "noreuse");
    assert!(
        out.contains("REPLY 522") && out.contains("--tls-reuse optional"),
        "{out}"
    );
    assert!(
        d.log_text().contains("did not resume"),
        "the refusal is logged"
    );
    g.run(&["sender", "set", "cam1", "--tls-reuse", "optional"])
        .ok();
    let out = ftplib_tls(d.ftp(), "noreuse");
    assert!(out.contains("226"), "{out}");
    assert!(
        d.log_text()
            .contains("without TLS session reuse (sender cam1 is relaxed)")
    );
}

#[test]
fn a_tls_upload_cut_without_close_notify_is_not_stored() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&[]);
    let out = ftplib_tls(d.ftp(), "nonotify");
    assert!(out.contains("426"), "{out}");
    let mut c = Raw::login(d.ftp());
    let (_, names) = c.list("NLST");
    assert_eq!(names, "", "nothing was stored as a file");
    let ops: serde_json::Value =
        serde_json::from_str(g.run(&["spool", "list", "--json"]).ok()).unwrap();
    assert_eq!(ops, serde_json::json!([]), "nothing is queued for delivery");
}

#[test]
fn curl_and_lftp_upload_over_ftps() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let addr = d.ftp();
    let file = g.state().join("x.bin");
    std::fs::write(&file, data(300_000, 9)).unwrap();
    let (ok, out) = sh(Command::new("curl")
        .args(["-sS", "--ssl-reqd", "-k", "-T"])
        .arg(&file)
        .arg(format!("ftp://cam1:{PW}@{addr}/curl.bin")));
    assert!(ok, "{out}");
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; open -u cam1,{PW} -p {} {}; put {} -o lftp.bin; bye",
        addr.port(),
        addr.ip(),
        file.display()
    );
    let (ok, out) = sh(Command::new("lftp").args(["-c", &script]));
    if !ok {
        // lftp (GnuTLS) may not offer the control session on data connections: say so.
        assert!(
            d.log_text().contains("did not resume"),
            "lftp failed for another reason: {out}"
        );
        g.run(&["sender", "set", "cam1", "--tls-reuse", "optional"])
            .ok();
        let (ok, out) = sh(Command::new("lftp").args(["-c", &script]));
        assert!(ok, "{out}");
        eprintln!(
            "note: lftp needed --tls-reuse optional (it does not resume the control session)"
        );
    }
    let mut c = Raw::login(addr);
    assert_eq!(c.cmd("SIZE curl.bin").text, "213 300000");
    assert_eq!(c.cmd("SIZE lftp.bin").text, "213 300000");
}

#[test]
fn only_tls_1_2_and_1_3_are_spoken() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let connect = format!("127.0.0.1:{}", d.ftp().port());
    let try_version = |flag: &str| {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-starttls",
            "ftp",
            "-connect",
            &connect,
            flag,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ]);
        cmd.stdin(std::process::Stdio::null());
        sh(&mut cmd)
    };
    for old in ["-tls1", "-tls1_1"] {
        let (_, out) = try_version(old);
        assert!(
            !out.contains("Cipher is") || out.contains("Cipher is (NONE)"),
            "{old} must fail: {out}"
        );
    }
    for good in ["-tls1_2", "-tls1_3"] {
        let (_, out) = try_version(good);
        assert!(
            out.contains("Protocol  : TLSv1.") || out.contains("New, TLSv1."),
            "{good} works: {out}"
        );
    }
}

#[test]
fn plaintext_pipelined_after_auth_is_never_executed() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let script = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
f.readline()
s.sendall(b"AUTH TLS\r\nUSER cam1\r\nPASS " + sys.argv[2].encode() + b"\r\nMKD injected\r\n")
print(f.readline().decode().strip())
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    t = ctx.wrap_socket(s, server_hostname="x")
    t.sendall(b"USER cam1\r\n"); print(t.recv(200).decode().strip())
except Exception as e:
    print("handshake:", type(e).__name__)
"#;
    let (_, out) =
        sh(Command::new("python3").args(["-c", script, &d.ftp().port().to_string(), PW]));
    assert!(out.starts_with("234"), "{out}");
    let mut c = Raw::login(d.ftp());
    assert_eq!(
        c.cmd("CWD injected").code,
        550,
        "the pipelined MKD never ran: {out}"
    );
}

#[test]
fn tls_required_refuses_plain_logins_without_revealing_names() {
    let g = Gate::provisioned();
    let d = g.serve(&["--tls", "required"]);
    let mut c = Raw::connect(d.ftp());
    let known = c.cmd("USER cam1");
    let unknown = c.cmd("USER nobody");
    assert_eq!(known.code, 530);
    assert_eq!(known.text, unknown.text);
    assert!(known.text.contains("TLS is required"));
    // Over TLS it works (and clear data is refused).
    let out = ftplib_tls(d.ftp(), "reuse");
    assert!(out.contains("226"), "{out}");
}

#[test]
fn a_sender_that_requires_tls_cannot_log_in_over_plaintext() {
    let g = Gate::provisioned();
    g.run(&["sender", "set", "cam1", "--require-tls", "on"])
        .ok();
    let d = g.serve(&[]);
    let mut c = Raw::connect(d.ftp());
    c.cmd("USER cam1");
    assert_eq!(c.cmd(&format!("PASS {PW}")).code, 530);
    assert!(d.log_text().contains("requires TLS"));
    let out = ftplib_tls(d.ftp(), "reuse");
    assert!(out.contains("226"), "{out}");
}

#[test]
fn the_fingerprint_is_shown_and_sighup_reloads_a_new_certificate() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let before = g.status()["tls_fingerprint"].as_str().unwrap().to_string();
    assert_eq!(before.split(':').count(), 32);
    let generated = g
        .run(&["cert", "generate", "--hostname", "gw2.example"])
        .ok()
        .to_string();
    Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = g.status()["tls_fingerprint"].as_str().unwrap().to_string();
    assert_ne!(before, after);
    assert!(
        generated.contains(&after),
        "status shows the new certificate"
    );
    assert!(d.log_text().contains("reloaded the TLS certificate"));
}

#[test]
fn a_session_opened_before_a_certificate_reload_still_transfers_after_it() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    g.run(&["cert", "generate", "--hostname", "gw2.example"])
        .ok();
    let out = ftplib_tls_with(d.ftp(), "hup", d.pid());
    assert!(out.contains("BEFORE 226"), "{out}");
    assert!(
        d.log_text().contains("reloaded the TLS certificate"),
        "{}",
        d.log_text()
    );
    assert!(
        out.lines().any(|l| l.starts_with("226")),
        "the data connection after the reload resumes the session: {out}"
    );
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.cmd("SIZE tls-hup.bin").text, "213 1048576");
}

const SIBLINGS: &str = r#"
import ftplib, io, ssl, sys
host, port, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Offering(ftplib.FTP_TLS):
    # Offers `offer` (another control connection's TLS session) on its data connections,
    # as rclone does with its one session cache.
    offer = None
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.offer or self.sock.session)
        return conn, size

def session(user, source="127.0.0.1"):
    f = Offering(context=ctx)
    f.connect(host, port, timeout=20, source_address=(source, 0))
    f.auth()
    f.login(user, pw)
    f.prot_p()
    return f

first = session("cam1")
print("FIRST", first.storbinary("STOR first.bin", io.BytesIO(b"a" * 1000)))
for label, user, source in [("SAME", "cam1", "127.0.0.1"), ("OTHER-SENDER", "cam2", "127.0.0.1"), ("OTHER-ADDRESS", "cam1", "127.0.0.2")]:
    f = session(user, source)
    f.offer = first.sock.session
    try:
        print(label, f.storbinary("STOR " + label + ".bin", io.BytesIO(b"b" * 1000)))
    except ftplib.Error as e:
        # The refusal was read as the transfer's own reply (the data connection's
        # handshake completed before the server refused it).
        print(label, "REPLY", e)
    except ftplib.all_errors as e:
        # The data connection failed first: the refusal is the next reply.
        try:
            print(label, "REPLY", f.getresp())
        except ftplib.all_errors as e2:
            print(label, "REPLY", e2)
    f.close()
first.close()
"#;

/// A data connection may resume the TLS session of another live control session of the
/// same Sender from the same address (rclone, FileZilla and WinSCP share one session
/// cache across parallel sessions); another Sender's, or another address's, is refused.
#[test]
fn a_data_connection_may_resume_a_sibling_session_of_the_same_sender_and_address() {
    let g = Gate::provisioned();
    g.run_stdin(&["sender", "add", "cam2", "--password-stdin"], PW)
        .ok();
    g.run(&["sender", "grant", "cam2", "line1"]).ok();
    let d = g.serve(&[]);
    let (_, out) = sh(Command::new("python3").args([
        "-c",
        SIBLINGS,
        "127.0.0.1",
        &d.ftp().port().to_string(),
        PW,
    ]));
    assert!(out.contains("FIRST 226"), "{out}");
    assert!(out.contains("SAME 226"), "same Sender, same address: {out}");
    assert!(out.contains("OTHER-SENDER REPLY 522"), "{out}");
    assert!(out.contains("OTHER-ADDRESS REPLY 522"), "{out}");
}

/// rclone with its default settings (several transfers at once, one TLS session cache)
/// copies a tree over explicit FTPS.
#[test]
fn rclone_copies_a_tree_over_explicit_ftps() {
    let rclone = std::env::var("FTPGATE_RCLONE").unwrap_or_else(|_| "rclone".into());
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let src = g.state().join("tree");
    for i in 0..60 {
        let dir = src.join(format!("cam{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("img{i}.jpg")), data(20_000 + i, i as u8)).unwrap();
    }
    let obscured = Command::new(&rclone)
        .args(["obscure", PW])
        .output()
        .unwrap_or_else(|e| {
            panic!("{rclone}: {e} (scripts/test-all installs it and sets FTPGATE_RCLONE)")
        });
    let obscured = String::from_utf8_lossy(&obscured.stdout).into_owned();
    let (ok, out) = sh(Command::new(&rclone)
        .args(["copy", "--ftp-explicit-tls", "--ftp-no-check-certificate"])
        .arg("--ftp-host=127.0.0.1")
        .arg(format!("--ftp-port={}", d.ftp().port()))
        .arg("--ftp-user=cam1")
        .arg(format!("--ftp-pass={}", obscured.trim()))
        .arg(&src)
        .arg(":ftp:plant"));
    assert!(ok, "{out}\n{}", d.log_text());
    let log = d.log_text();
    assert!(
        !log.contains("did not resume"),
        "no data connection was refused (rclone retries them, so the copy alone can pass): {log}"
    );
    let mut c = Raw::login(d.ftp());
    for i in 0..60 {
        let r = c.cmd(&format!("SIZE /plant/cam{}/img{i}.jpg", i % 3));
        assert_eq!(r.text, format!("213 {}", 20_000 + i), "img{i}");
    }
}
