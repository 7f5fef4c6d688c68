//! Logs an operator can trust: normal sequences log no ERROR or WARN, and what a
//! technician must act on gets one WARN with a sentence that says what to do.

mod common;

use std::process::{Command, Stdio};

use common::{Gate, PW, Raw, S3_SECRET, S3Server, data};

/// The daemon's log lines at WARN or ERROR.
fn alarms(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect()
}

/// Uploads followed at once by `DELE`, by a rename, by a replacing upload, into a
/// directory Pipe and an S3 Pipe, while deliveries run: nothing alarming in the log.
#[test]
fn quick_changes_after_uploads_log_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    for g in [Gate::provisioned(), Gate::with_s3(&s3, S3_SECRET)] {
        let d = g.serve(&[]);
        let mut c = Raw::login(d.ftp());
        for i in 0..40 {
            let name = format!("f{i}.jpg");
            assert_eq!(c.stor(&name, &data(3000 + i, 1)).code, 226);
            match i % 3 {
                0 => assert_eq!(c.cmd(&format!("DELE {name}")).code, 250),
                1 => {
                    assert_eq!(c.cmd(&format!("RNFR {name}")).code, 350);
                    assert_eq!(c.cmd(&format!("RNTO r{name}")).code, 250);
                }
                _ => assert_eq!(c.stor(&name, &data(10, 2)).code, 226),
            }
        }
        g.wait_delivered(30);
        let log = d.log_text();
        assert_eq!(alarms(&log), Vec::<&str>::new(), "{log}");
    }
}

/// GnuTLS clients send the address they connected to as SNI, which TLS forbids; rustls
/// ignores it, and so does the log.
#[test]
fn a_gnutls_client_connecting_by_address_logs_no_warning() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut cli = Command::new("gnutls-cli")
        .args(["--starttls-proto=ftp", "--insecure", "-p"])
        .arg(d.ftp().port().to_string())
        .arg("127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gnutls-cli is installed by scripts/test-all");
    {
        use std::io::Write;
        let stdin = cli.stdin.as_mut().unwrap();
        let _ = stdin.write_all(format!("USER cam1\r\nPASS {PW}\r\nQUIT\r\n").as_bytes());
    }
    let out = cli.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("230"), "logged in over TLS: {text}");
    let log = d.log_text();
    assert_eq!(alarms(&log), Vec::<&str>::new(), "{log}");
}

/// A client that speaks only TLS 1.0/1.1 cannot be served (rustls has neither): one WARN
/// that says so and what to do instead.
#[test]
fn a_client_that_only_speaks_old_tls_gets_one_warning_with_advice() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let out = Command::new("gnutls-cli")
        .args([
            "--starttls-proto=ftp",
            "--insecure",
            "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0",
            "-p",
        ])
        .arg(d.ftp().port().to_string())
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = d.log_text();
    let warns = alarms(&log);
    assert_eq!(warns.len(), 1, "{log}");
    assert!(
        warns[0].contains("TLS 1.2") && warns[0].contains("plain FTP"),
        "{}",
        warns[0]
    );
}

const CLEAR_DATA: &str = r#"
import ftplib, io, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class ClearData(ftplib.FTP_TLS):
    # Asks for PROT P, then sends the data in clear all the same.
    def ntransfercmd(self, cmd, rest=None):
        return ftplib.FTP.ntransfercmd(self, cmd, rest)

ftp = ClearData(context=ctx)
ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=20)
ftp.auth()
ftp.login("cam1", sys.argv[3])
ftp.prot_p()
try:
    print(ftp.storbinary("STOR clear.bin", io.BytesIO(b"x" * 100000)))
except ftplib.all_errors as e:
    print("ERROR", e)
"#;

/// Clear data on a data connection after `PROT P`: refused, and one WARN that says what
/// the client did and what to change.
#[test]
fn clear_data_after_prot_p_gets_one_warning_with_advice() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let out = Command::new("python3")
        .args(["-c", CLEAR_DATA, "127.0.0.1"])
        .arg(d.ftp().port().to_string())
        .arg(PW)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ERROR"), "refused: {text}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = d.log_text();
    let warns = alarms(&log);
    assert_eq!(warns.len(), 1, "{log}");
    assert!(warns[0].contains("clear data"), "{}", warns[0]);
}
