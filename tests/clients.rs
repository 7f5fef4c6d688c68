//! Real FTP clients against the real server: curl, lftp and Python's ftplib, in the
//! modes legacy devices use. Each upload must land in the catalog with the right size.

mod common;

use std::process::Command;

use common::{Gate, PW, Raw, client, data, have};

#[test]
fn curl_uploads_passive_active_and_with_created_directories() {
    assert!(have("curl"), "curl is installed by scripts/test-all");
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let addr = d.ftp();
    let file = g.state().join("cam.jpg");
    std::fs::write(&file, data(123_457, 3)).unwrap();
    let url = |p: &str| format!("ftp://cam1:{PW}@{addr}/{p}");
    client(
        Command::new("curl")
            .args(["-sS", "-T"])
            .arg(&file)
            .arg(url("passive.jpg")),
    );
    client(
        Command::new("curl")
            .args(["-sS", "--ftp-create-dirs", "-T"])
            .arg(&file)
            .arg(url("2026/11/23/cam.jpg")),
    );
    client(
        Command::new("curl")
            .args(["-sS", "--ftp-port", "127.0.0.1", "-T"])
            .arg(&file)
            .arg(url("active.jpg")),
    );
    client(
        Command::new("curl")
            .args(["-sS", "--disable-epsv", "-T"])
            .arg(&file)
            .arg(url("pasv.jpg")),
    );
    let listing = client(Command::new("curl").args(["-sS"]).arg(url("")));
    assert!(
        listing.contains("passive.jpg")
            && listing.contains("active.jpg")
            && listing.contains(" 2026"),
        "{listing}"
    );
    let mut c = Raw::login(addr);
    for p in [
        "passive.jpg",
        "2026/11/23/cam.jpg",
        "active.jpg",
        "pasv.jpg",
    ] {
        assert_eq!(c.cmd(&format!("SIZE {p}")).text, "213 123457", "{p}");
    }
    // curl cannot download through the gateway.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(url("passive.jpg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn lftp_mirrors_a_directory_tree() {
    assert!(have("lftp"), "lftp is installed by scripts/test-all");
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let addr = d.ftp();
    let tree = g.state().join("tree");
    let files = [
        ("a.txt", 10),
        ("sub/b.bin", 70_000),
        ("sub/deeper/c.bin", 1),
        ("sub/deeper/empty.dat", 0),
        ("z/y/x/w.csv", 4096),
    ];
    for (path, size) in files {
        let p = tree.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data(size, size as u8)).unwrap();
    }
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; open -u cam1,{PW} -p {} {}; mirror -R {} /mirror; bye",
        addr.port(),
        addr.ip(),
        tree.display()
    );
    client(Command::new("lftp").args(["-c", &script]));
    let mut c = Raw::login(addr);
    for (path, size) in files {
        assert_eq!(
            c.cmd(&format!("SIZE /mirror/{path}")).text,
            format!("213 {size}"),
            "{path}"
        );
    }
}

const FTPLIB: &str = r#"
import ftplib, io, sys
host, port, pw, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=20)
ftp.login("cam1", pw)
ftp.set_pasv(mode != "active")
ftp.voidcmd("TYPE A N")
ftp.voidcmd("ALLO 100")
ftp.mkd("ftplib-" + mode)
ftp.cwd("ftplib-" + mode)
body = bytes(range(256)) * 40 + b"\r\nline two\n"
print(ftp.storbinary("STOR data.bin", io.BytesIO(body)))
print(ftp.storlines("STOR text.txt", io.BytesIO(b"one\ntwo\n")))
names = ftp.nlst()
assert sorted(names) == ["data.bin", "text.txt"], names
try:
    ftp.retrbinary("RETR data.bin", lambda b: None)
    sys.exit("RETR was allowed")
except ftplib.error_perm as e:
    assert str(e).startswith("550"), e
ftp.quit()
"#;

fn ftplib(host: &str, addr: std::net::SocketAddr, mode: &str) {
    client(Command::new("python3").args(["-c", FTPLIB, host, &addr.port().to_string(), PW, mode]));
}

#[test]
fn python_ftplib_passive_active_and_epsv() {
    let g = Gate::provisioned();
    let d = g.serve(&["--listen", "127.0.0.1:0", "--listen", "[::1]:0"]);
    let v4 = d.ftp();
    ftplib("127.0.0.1", v4, "passive");
    ftplib("127.0.0.1", v4, "active");
    // Over IPv6 ftplib uses EPSV for passive and EPRT for active mode.
    let log = d.log_text();
    let v6: std::net::SocketAddr = log
        .split("ftp=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    ftplib("::1", v6, "epsv");
    ftplib("::1", v6, "eprt");
    let mut c = Raw::login(v4);
    for dir in ["passive", "active", "epsv", "eprt"] {
        assert_eq!(
            c.cmd(&format!("SIZE ftplib-{dir}/data.bin")).text,
            "213 10251",
            "{dir}: bytes stored exactly as sent"
        );
        // storlines sends CRLF line endings; TYPE A stores them untouched.
        assert_eq!(
            c.cmd(&format!("SIZE ftplib-{dir}/text.txt")).text,
            "213 10",
            "{dir}"
        );
    }
}

/// busybox `ftpput`, the uploader of many cameras and NVRs, has no `MKD`: with
/// `--create-dirs on` (the default for new Pipes) an upload into a missing nested
/// directory creates it and is delivered under that key; with it off, `553` as before.
#[test]
fn busybox_ftpput_into_a_missing_nested_directory_is_delivered() {
    assert!(have("busybox"), "busybox is installed by scripts/test-all");
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let file = g.state().join("snap.jpg");
    let bytes = data(70_001, 9);
    std::fs::write(&file, &bytes).unwrap();
    let ftpput = |remote: &str| {
        Command::new("busybox")
            .args(["ftpput", "-u", "cam1", "-p", PW, "-P"])
            .arg(d.ftp().port().to_string())
            .arg("127.0.0.1")
            .arg(remote)
            .arg(&file)
            .output()
            .expect("run busybox")
    };
    let out = ftpput("cam7/2026-11-24/snap.jpg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    g.wait_delivered(20);
    let delivered = g.state().join("delivered/cam7/2026-11-24/snap.jpg");
    assert_eq!(
        std::fs::read(&delivered).expect("delivered under the key"),
        bytes
    );
    let mut c = Raw::login(d.ftp());
    assert_eq!(
        c.cmd("CWD /cam7/2026-11-24").code,
        250,
        "the directories are listed"
    );

    g.run(&["pipe", "set", "line1", "--create-dirs", "off"])
        .ok();
    let out = ftpput("cam8/snap.jpg");
    assert!(
        !out.status.success(),
        "a missing directory is refused again"
    );
    let shown: serde_json::Value =
        serde_json::from_str(g.run(&["pipe", "show", "line1", "--json"]).ok()).unwrap();
    assert_eq!(shown["create_dirs"], false);
}
