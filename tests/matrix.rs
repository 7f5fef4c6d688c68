//! The client matrix: every FTP client Debian or PyPI gives us, as a device or a
//! technician would use it, over plain FTP and (where the client can) explicit FTPS. A
//! full client creates a directory, uploads into it, renames the upload, lists it,
//! creates and removes another directory, and is refused the download; an upload-only
//! client (busybox `ftpput`, `ncftpput`, `wput`) uploads into a directory that does not
//! exist yet. Then the bytes at the destination are compared.
//!
//! The table it produces is docs/CLIENTS.md's compatibility table: each row must be there as
//! the matrix found it (`target/client-matrix.md` holds the run's table with versions).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Gate, PW, data};

/// What one client session should have left at the destination.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// MKD, STOR, rename, LIST, MKD+RMD, refused RETR.
    Full,
    /// STOR into a missing directory.
    UploadOnly,
}

struct Client {
    name: &'static str,
    version_cmd: &'static str,
    kind: Kind,
    plain: bool,
    ftps: bool,
    /// Why FTPS is not tried, when it is not.
    note: &'static str,
}

const CLIENTS: &[Client] = &[
    Client {
        name: "curl",
        version_cmd: "curl --version | head -1 | cut -d' ' -f2",
        kind: Kind::Full,
        plain: true,
        ftps: true,
        note: "curl 7.87–7.88 send active-mode FTPS data in clear (refused under PROT P); use passive",
    },
    Client {
        name: "lftp",
        version_cmd: "lftp --version | head -1 | sed 's/.*Version \\([^ ]*\\).*/\\1/'",
        kind: Kind::Full,
        plain: true,
        ftps: true,
        note: "",
    },
    Client {
        name: "python3 ftplib",
        version_cmd: "python3 --version | cut -d' ' -f2",
        kind: Kind::Full,
        plain: true,
        ftps: true,
        note: "stock FTP_TLS does not resume the TLS session on data connections (python/cpython#63699 upstream): offer it (tests/matrix.rs) or `sender set NAME --tls-reuse optional`",
    },
    Client {
        name: "tnftp",
        version_cmd: "dpkg-query -W -f='${Version}' tnftp",
        kind: Kind::Full,
        plain: true,
        ftps: false,
        note: "no TLS in the client",
    },
    Client {
        name: "inetutils-ftp",
        version_cmd: "dpkg-query -W -f='${Version}' inetutils-ftp",
        kind: Kind::Full,
        plain: true,
        ftps: false,
        note: "no TLS in the client; use -p (passive)",
    },
    Client {
        name: "busybox ftpput",
        version_cmd: "busybox 2>&1 | head -1 | cut -d' ' -f2",
        kind: Kind::UploadOnly,
        plain: true,
        ftps: false,
        note: "no TLS, no MKD: the Pipe's --create-dirs (on by default) makes the folders",
    },
    Client {
        name: "ncftpput",
        version_cmd: "dpkg-query -W -f='${Version}' ncftp",
        kind: Kind::UploadOnly,
        plain: true,
        ftps: false,
        note: "no TLS in the client",
    },
    Client {
        name: "wput",
        version_cmd: "dpkg-query -W -f='${Version}' wput",
        kind: Kind::UploadOnly,
        plain: true,
        ftps: false,
        note: "wput 0.6 cannot read TLS 1.3 session tickets, and by default it tries AUTH TLS and fails at login: give it --disable-tls",
    },
];

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The commands of an ftp(1)-style client for a full session under `top`.
fn ftp1_script(port: u16, local: &Path, top: &str, fetched: &Path) -> String {
    format!(
        "open 127.0.0.1 {port}\nuser cam1 {PW}\nbinary\nmkdir {top}\nmkdir {top}/d\nput {} {top}/d/a.bin\nrename {top}/d/a.bin {top}/d/b.bin\nls {top}/d\nmkdir {top}/e\nrmdir {top}/e\nget {top}/d/b.bin {}\nquit\n",
        local.display(),
        fetched.display()
    )
}

/// Runs one client session; returns its output (for the failure message).
fn session(c: &Client, tls: bool, port: u16, local: &Path, top: &str, work: &Path) -> String {
    let fetched = work.join(format!("{top}.fetched"));
    let url = format!("ftp://cam1:{PW}@127.0.0.1:{port}");
    let mut log = String::new();
    let mut step = |(ok, out): (bool, String), want_ok: bool, what: &str| {
        log.push_str(&format!("== {what}: ok={ok}\n{out}\n"));
        assert_eq!(ok, want_ok, "{} {what}:\n{out}", c.name);
    };
    match c.name {
        "curl" => {
            let tls: &[&str] = if tls { &["--ssl-reqd", "-k"] } else { &[] };
            let curl = |args: &[&str]| {
                let mut cmd = Command::new("curl");
                cmd.arg("-sS").args(tls).args(args);
                run(&mut cmd)
            };
            let l = local.to_str().unwrap();
            step(
                curl(&[
                    "--ftp-create-dirs",
                    "-T",
                    l,
                    &format!("{url}/{top}/d/a.bin"),
                ]),
                true,
                "upload",
            );
            let rnfr = format!("RNFR {top}/d/a.bin");
            let rnto = format!("RNTO {top}/d/b.bin");
            let mkd = format!("MKD {top}/e");
            let rmd = format!("RMD {top}/e");
            step(
                curl(&[
                    "-Q",
                    &rnfr,
                    "-Q",
                    &rnto,
                    "-Q",
                    &mkd,
                    "-Q",
                    &rmd,
                    &format!("{url}/"),
                ]),
                true,
                "rename, mkdir, rmdir",
            );
            let (ok, list) = curl(&[&format!("{url}/{top}/d/")]);
            assert!(ok && list.contains("b.bin"), "curl list: {list}");
            step(
                curl(&[
                    "-o",
                    fetched.to_str().unwrap(),
                    &format!("{url}/{top}/d/b.bin"),
                ]),
                false,
                "download",
            );
        }
        "lftp" => {
            let set = if tls {
                "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no"
            } else {
                "set ftp:ssl-allow no"
            };
            let open = format!("{set}; open -u cam1,{PW} -p {port} 127.0.0.1");
            step(
                run(Command::new("lftp").arg("-c").arg(format!(
                    "{open}; mkdir -p {top}/d; put {} -o {top}/d/a.bin; mv {top}/d/a.bin {top}/d/b.bin; cls {top}/d; mkdir {top}/e; rmdir {top}/e",
                    local.display()
                ))),
                true,
                "session",
            );
            step(
                run(Command::new("lftp").arg("-c").arg(format!(
                    "{open}; get {top}/d/b.bin -o {}",
                    fetched.display()
                ))),
                false,
                "download",
            );
        }
        "python3 ftplib" => {
            // Stock FTP_TLS does not resume the control connection's TLS session on data
            // connections (python/cpython#63699 upstream): docs/CLIENTS.md's row says what to do.
            let cls = if tls { "Reuse" } else { "ftplib.FTP" };
            let prot = if tls { "f.prot_p()" } else { "pass" };
            let script = format!(
                r#"
import ftplib, io
class Reuse(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = {cls}()
f.connect("127.0.0.1", {port})
f.login("cam1", "{PW}")
{prot}
f.mkd("{top}"); f.mkd("{top}/d")
f.storbinary("STOR {top}/d/a.bin", open("{local}", "rb"))
f.rename("{top}/d/a.bin", "{top}/d/b.bin")
assert "b.bin" in f.nlst("{top}/d"), f.nlst("{top}/d")
f.mkd("{top}/e"); f.rmd("{top}/e")
try:
    f.retrbinary("RETR {top}/d/b.bin", io.BytesIO().write)
    raise SystemExit("downloaded")
except ftplib.error_perm as e:
    print("refused:", e)
f.quit()
"#,
                local = local.display()
            );
            step(
                run(Command::new("python3").arg("-c").arg(script)),
                true,
                "session",
            );
        }
        "tnftp" | "inetutils-ftp" => {
            let mut cmd = Command::new(c.name);
            cmd.arg("-n");
            if c.name == "inetutils-ftp" {
                cmd.arg("-p");
            }
            let script = ftp1_script(port, local, top, &fetched);
            let out = cmd
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child.stdin.take().unwrap().write_all(script.as_bytes())?;
                    child.wait_with_output()
                })
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(text.contains("b.bin"), "{} listing:\n{text}", c.name);
            log.push_str(&text);
            // ftp(1) reports a refused `get` but exits 0: nothing may have arrived.
            assert!(
                std::fs::metadata(&fetched).map_or(true, |m| m.len() == 0),
                "{} downloaded the file:\n{text}",
                c.name
            );
        }
        "busybox ftpput" => step(
            run(Command::new("busybox").args([
                "ftpput",
                "-u",
                "cam1",
                "-p",
                PW,
                "-P",
                &port.to_string(),
                "127.0.0.1",
                &format!("{top}/d/a.bin"),
                local.to_str().unwrap(),
            ])),
            true,
            "upload",
        ),
        "ncftpput" => step(
            run(Command::new("ncftpput")
                .args(["-u", "cam1", "-p", PW, "-P", &port.to_string(), "-m"])
                .arg("127.0.0.1")
                .arg(format!("{top}/d"))
                .arg(local)),
            true,
            "upload",
        ),
        "wput" => step(
            run(Command::new("wput")
                .args(["-nv", "--binary", "--disable-tls", "-t", "1"])
                .arg(local)
                .arg(format!("{url}/{top}/d/a.bin"))),
            true,
            "upload",
        ),
        other => panic!("no session for {other}"),
    }
    log
}

#[test]
fn every_client_in_the_matrix_uploads_and_the_readme_table_says_so() {
    let g = Gate::provisioned();
    let delivered: PathBuf = g.state().join("delivered");
    let d = g.serve(&[]);
    let port = d.ftp().port();
    let work = tempfile::tempdir().unwrap();
    // ncftpput names the remote file after the local one.
    let local = work.path().join("a.bin");
    let body = data(70_001, 5);
    std::fs::write(&local, &body).unwrap();

    let mut rows = vec![
        "| client | version | plain FTP | explicit FTPS | notes |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    let mut sessions = Vec::new();
    for c in CLIENTS {
        let (_, version) = sh(c.version_cmd);
        let mut cells = Vec::new();
        for (tls, tried) in [(false, c.plain), (true, c.ftps)] {
            if !tried {
                cells.push("–".to_string());
                continue;
            }
            let top = format!(
                "{}-{}",
                c.name.replace(' ', "-"),
                if tls { "ftps" } else { "plain" }
            );
            let log = session(c, tls, port, &local, &top, work.path());
            sessions.push((c, top, log));
            cells.push(match c.kind {
                Kind::Full => "yes".to_string(),
                Kind::UploadOnly => "upload".to_string(),
            });
        }
        rows.push(format!(
            "| {} | {} | {} | {} | {} |",
            c.name,
            version.lines().next().unwrap_or("").trim(),
            cells[0],
            cells[1],
            c.note
        ));
    }
    g.wait_delivered(60);
    for (c, top, log) in &sessions {
        let (want, gone) = match c.kind {
            Kind::Full => ("d/b.bin", vec!["d/a.bin", "e"]),
            Kind::UploadOnly => ("d/a.bin", vec![]),
        };
        let got = std::fs::read(delivered.join(top).join(want))
            .unwrap_or_else(|e| panic!("{}: {top}/{want} not delivered ({e}):\n{log}", c.name));
        assert!(got == body, "{}: {top}/{want} has other bytes", c.name);
        for g in gone {
            assert!(
                !delivered.join(top).join(g).exists(),
                "{}: {top}/{g} is at the destination",
                c.name
            );
        }
    }
    let table = rows.join("\n");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-matrix.md");
    std::fs::write(&out, format!("{table}\n")).unwrap();
    println!("{table}");
    // docs/CLIENTS.md's table has the same rows (the version column may differ by release).
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CLIENTS.md"))
            .unwrap();
    for row in &rows[2..] {
        let cols: Vec<&str> = row.split(" | ").collect();
        let want = format!("{} | ", cols[0]);
        let line = readme
            .lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("docs/CLIENTS.md's table has no row for {}", cols[0]));
        let found: Vec<&str> = line.split(" | ").collect();
        assert_eq!(
            (found.get(2), found.get(3), found.get(4)),
            (cols.get(2), cols.get(3), cols.get(4)),
            "docs/CLIENTS.md's row differs from the matrix:\n  CLIENTS.md: {line}\n  matrix: {row}"
        );
    }
}
