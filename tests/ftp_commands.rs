//! The FTP surface against a running server: the reply every command gets,
//! raw bytes and an FTP client crate, and hostile input.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{Gate, PW, Raw, data};

#[test]
fn reply_codes_of_every_command() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut c = Raw::connect(d.ftp());

    // Before login: only the login, TLS and info commands.
    for (cmd, code) in [
        ("PWD", 530),
        ("LIST", 530),
        ("STOR x", 530),
        ("CWD /", 530),
        ("MKD x", 530),
        ("RETR x", 530),
    ] {
        assert_eq!(c.cmd(cmd).code, code, "{cmd}");
    }
    assert_eq!(c.cmd("SYST").text, "215 UNIX Type: L8");
    let feat = c.cmd("FEAT");
    assert_eq!(feat.code, 211);
    for f in [
        "MDTM",
        "SIZE",
        "MLST type*;size*;modify*;perm*;",
        "REST STREAM",
        "UTF8",
        "EPSV",
        "MFMT",
    ] {
        assert!(
            feat.text.lines().any(|l| l.trim() == f),
            "FEAT lists {f}: {}",
            feat.text
        );
    }
    for f in ["AUTH TLS", "PBSZ", "PROT"] {
        assert!(
            feat.text.lines().any(|l| l.trim() == f),
            "FEAT lists {f} when TLS is available: {}",
            feat.text
        );
    }
    assert_eq!(c.cmd("OPTS UTF8 ON").code, 200);
    assert_eq!(c.cmd("NOOP").code, 200);
    assert_eq!(c.cmd("HELP").code, 214);
    assert_eq!(c.cmd("PASS x").code, 503, "PASS before USER");
    assert_eq!(c.cmd("USER cam1").code, 331);
    assert_eq!(c.cmd(&format!("PASS {PW}")).code, 230);
    assert_eq!(c.cmd("ACCT x").code, 202);

    let cases: &[(&str, u16, &str)] = &[
        ("PWD", 257, "\"/\""),
        ("MKD inbox", 257, "\"/inbox\" created"),
        ("XMKD inbox/sub", 257, ""),
        ("MKD inbox", 550, "already exists"),
        ("MKD nope/deeper", 553, "does not exist"),
        ("CWD inbox", 250, "/inbox"),
        ("XPWD", 257, "\"/inbox\""),
        ("CDUP", 250, "/"),
        ("XCWD inbox/sub", 250, ""),
        ("XCUP", 250, "/inbox"),
        ("CWD /", 250, ""),
        ("CWD missing", 550, "no such"),
        ("TYPE A N", 200, ""),
        ("TYPE L 8", 200, ""),
        ("TYPE I", 200, ""),
        ("TYPE E", 504, ""),
        ("MODE S", 200, ""),
        ("MODE B", 504, ""),
        ("STRU F", 200, ""),
        ("STRU R", 504, ""),
        ("ALLO 1000", 200, ""),
        ("REST 10", 350, "Restarting at 10"),
        ("REST x", 501, ""),
        (
            "RETR anything",
            550,
            "Downloads are disabled on this gateway",
        ),
        ("SITE CHMOD 777 x", 502, "SITE"),
        ("FROB", 502, "FROB: command not implemented"),
        ("SIZE missing", 550, ""),
        ("SIZE inbox", 550, "directory"),
        ("MDTM missing", 550, ""),
        ("RNTO x", 503, "RNFR first"),
        ("RNFR missing", 550, ""),
        ("DELE missing", 550, ""),
        ("RMD missing", 550, ""),
        ("RMD inbox", 550, "not empty"),
        ("ABOR", 225, ""),
        ("PBSZ 0", 503, ""),
        ("PROT P", 503, ""),
        ("CCC", 533, ""),
        ("STAT", 211, "cam1"),
        ("MLST /inbox", 250, "type=dir"),
        ("PORT 127,0,0,1,0,21", 501, "privileged port"),
        ("EPRT |1|127.0.0.2|5000|", 501, "your own address"),
        ("EPRT |5|x|1|", 522, ""),
        ("PORT 1,2,3", 501, ""),
        ("MFMT 20200101000000 missing", 550, ""),
        ("USER other", 503, "REIN"),
    ];
    for (cmd, code, needle) in cases {
        let r = c.cmd(cmd);
        assert_eq!(r.code, *code, "{cmd}: {}", r.text);
        assert!(
            r.text.contains(needle),
            "{cmd}: {:?} should contain {needle:?}",
            r.text
        );
    }

    // Uploads and the commands that see them.
    let body = data(5000, 1);
    let r = c.stor("inbox/a.bin", &body);
    assert_eq!(r.code, 226, "{}", r.text);
    assert!(r.text.contains("5000 bytes"), "{}", r.text);
    assert_eq!(c.cmd("SIZE inbox/a.bin").text, "213 5000");
    assert_eq!(
        c.cmd("MFMT 20200102030405 inbox/a.bin").text,
        "213 Modify=20200102030405; /inbox/a.bin"
    );
    assert_eq!(c.cmd("MDTM inbox/a.bin").text, "213 20200102030405");
    let (r, list) = c.list("LIST -la inbox");
    assert_eq!(r.code, 226);
    assert!(list.contains("  5000 Jan  2  2020 a.bin\r\n"), "{list:?}");
    assert!(
        list.contains("drwx------") && list.contains(" sub\r\n"),
        "{list:?}"
    );
    // The bits promise no download: a file is write-only, never readable.
    assert!(
        list.contains("--w-------   1 ftp      ftp              5000 Jan  2  2020 a.bin"),
        "{list:?}"
    );
    let (_, names) = c.list("NLST inbox");
    assert_eq!(names, "a.bin\r\nsub\r\n");
    let (_, mlsd) = c.list("MLSD inbox");
    assert!(
        mlsd.contains("type=file;size=5000;modify=20200102030405;perm=adfw; a.bin\r\n"),
        "{mlsd:?}"
    );
    let stat = c.cmd("STAT inbox");
    assert_eq!(stat.code, 213);
    assert!(stat.text.contains("a.bin"));
    assert_eq!(
        c.cmd("MLSD inbox/a.bin").code,
        501,
        "MLSD lists directories only (RFC 3659)"
    );
    assert_eq!(c.cmd("LIST").code, 425, "no data connection was prepared");
    assert_eq!(c.cmd("RETR inbox/a.bin").code, 550);

    assert_eq!(c.cmd("RNFR inbox/a.bin").code, 350);
    assert_eq!(c.cmd("RNTO inbox/b.bin").code, 250);
    assert_eq!(c.cmd("RNFR inbox").code, 350);
    assert_eq!(c.cmd("RNTO moved").code, 250);
    assert_eq!(
        c.cmd("SIZE moved/b.bin").text,
        "213 5000",
        "children move with the directory"
    );
    assert_eq!(c.cmd("DELE moved/b.bin").code, 250);
    assert_eq!(c.cmd("XRMD moved/sub").code, 250);
    assert_eq!(c.cmd("RMD moved").code, 250);
    let (_, empty) = c.list("NLST");
    assert_eq!(empty, "");

    // STOU picks a unique name and says it.
    let mut dconn = c.epsv();
    let r = c.cmd("STOU");
    assert_eq!(r.code, 150);
    assert!(r.text.contains("FILE: ftpgate-"), "{}", r.text);
    dconn.write_all(b"unique").unwrap();
    drop(dconn);
    assert_eq!(c.read().code, 226);

    assert_eq!(c.cmd("REIN").code, 220);
    assert_eq!(c.cmd("PWD").code, 530);
    assert_eq!(c.cmd("QUIT").code, 221);
}

#[test]
fn an_ftp_client_crate_uploads_lists_renames_and_deletes() {
    use suppaftp::FtpStream;
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut ftp = FtpStream::connect(d.ftp()).unwrap();
    ftp.login("cam1", PW).unwrap();
    ftp.transfer_type(suppaftp::types::FileType::Binary)
        .unwrap();
    ftp.mkdir("photos").unwrap();
    ftp.cwd("photos").unwrap();
    let body = data(300_000, 7);
    ftp.put_file("shot.jpg", &mut &body[..]).unwrap();
    assert_eq!(ftp.size("shot.jpg").unwrap(), 300_000);
    assert_eq!(ftp.nlst(None).unwrap(), vec!["shot.jpg".to_string()]);
    assert!(ftp.list(None).unwrap()[0].contains("300000"));
    ftp.rename("shot.jpg", "renamed.jpg").unwrap();
    assert!(
        ftp.retr_as_buffer("renamed.jpg").is_err(),
        "downloads are refused"
    );
    ftp.rm("renamed.jpg").unwrap();
    ftp.cdup().unwrap();
    ftp.rmdir("photos").unwrap();
    ftp.quit().unwrap();
}

#[test]
fn hostile_input_gets_clear_answers_and_the_server_stays_up() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());

    // A 1 MB line: one 500, then the session goes on.
    let mut huge = vec![b'A'; 1_000_000];
    huge.extend_from_slice(b"\r\n");
    c.send_bytes(&huge);
    let r = c.read();
    assert_eq!(r.code, 500);
    assert!(r.text.contains("too long"));
    assert_eq!(c.cmd("NOOP").code, 200);

    // NUL bytes, invalid UTF-8, CR inside a line: 500 with a sentence, nothing reflected.
    c.send_bytes(b"MKD a\0b\r\n");
    assert_eq!(c.read().code, 500);
    c.send_bytes(b"MKD \xc3\x28\r\n");
    let r = c.read();
    assert_eq!(r.code, 500);
    assert!(r.text.contains("UTF-8"));
    c.send_bytes(b"MKD evil\rname\r\n");
    let r = c.read();
    assert_eq!(r.code, 500);
    assert!(
        !r.text.contains("evil"),
        "the name is not reflected: {}",
        r.text
    );
    // Telnet IAC sequences are removed; IAC IAC is a literal 0xFF (invalid UTF-8 here).
    c.send_bytes(b"\xff\xf4\xff\xf2NO\xff\xfb\x01OP\r\n");
    assert_eq!(c.read().code, 200);

    // ../ is confined to the Pipe's namespace.
    assert_eq!(c.cmd("CWD ../../../../etc").code, 550);
    assert_eq!(
        c.cmd("MKD ../../../../tmp-escape").text,
        "257 \"/tmp-escape\" created."
    );
    assert_eq!(c.cmd("CWD ../../..").text, "250 Directory changed to /.");
    let r = c.stor("../../../../../outside.txt", b"confined");
    assert!(r.text.contains("Stored /outside.txt"), "{}", r.text);
    assert!(!std::path::Path::new("/outside.txt").exists());

    // PORT/EPRT to another address or a privileged port: refused before any connection.
    let witness = TcpListener::bind("127.0.0.2:0").unwrap();
    witness.set_nonblocking(true).unwrap();
    let wport = witness.local_addr().unwrap().port();
    let r = c.cmd(&format!("PORT 127,0,0,2,{},{}", wport >> 8, wport & 0xff));
    assert_eq!(r.code, 501, "{}", r.text);
    assert_eq!(c.cmd(&format!("EPRT |1|127.0.0.2|{wport}|")).code, 501);
    assert_eq!(
        c.cmd("STOR bounce.txt").code,
        425,
        "no data connection was set up"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(witness.accept().is_err(), "no connection reached 127.0.0.2");
    assert_eq!(c.cmd("PORT 127,0,0,1,0,25").code, 501);

    // A passive connection from another address is closed; the real client still gets in.
    let port = c.epsv_port();
    let sock = std::net::SocketAddr::from(([127, 0, 0, 2], 0));
    let intruder = socket_from(sock, ([127, 0, 0, 1], port).into());
    c.send_bytes(b"STOR pasv.txt\r\n");
    let mut intruder = intruder;
    intruder
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(intruder.read(&mut buf), Ok(0) | Err(_)),
        "the intruder is disconnected"
    );
    let _ = intruder.write_all(b"injected");
    let mut real = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(c.read().code, 150);
    real.write_all(b"genuine").unwrap();
    drop(real);
    assert_eq!(c.read().code, 226);
    assert_eq!(
        c.cmd("SIZE pasv.txt").text,
        "213 7",
        "only the real client's bytes"
    );

    // The server is still up for everyone.
    let mut other = Raw::login(d.ftp());
    assert_eq!(other.cmd("NOOP").code, 200);
}

/// A TCP connection from a chosen local address (bind, then connect).
fn socket_from(local: std::net::SocketAddr, to: std::net::SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&local.into()).unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// An admin change reaches sessions already logged in, before their next command: a
/// disabled or revoked Sender, a changed password or a disabled Pipe closes the session
/// with `421` and a sentence; a changed overwrite policy applies to the next upload.
#[test]
fn admin_changes_reach_open_sessions_before_their_next_command() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);

    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("a.txt", b"one").code, 226);
    g.run(&["pipe", "set", "line1", "--overwrite", "refuse"])
        .ok();
    let r = c.stor_refused("a.txt");
    assert_eq!(r.code, 550, "the new overwrite policy applies: {}", r.text);
    assert_eq!(c.stor("b.txt", b"two").code, 226);

    let change: [&[&str]; 4] = [
        &["sender", "disable", "cam1"],
        &["sender", "revoke", "cam1", "line1"],
        &["pipe", "disable", "line1"],
        &["sender", "passwd", "cam1", "--password-stdin"],
    ];
    let undo: [&[&str]; 4] = [
        &["sender", "enable", "cam1"],
        &["sender", "grant", "cam1", "line1"],
        &["pipe", "enable", "line1"],
        &[],
    ];
    for (change, undo) in change.iter().zip(undo) {
        let mut c = Raw::login(d.ftp());
        assert_eq!(c.cmd("NOOP").code, 200);
        if change.contains(&"passwd") {
            g.run_stdin(change, "a-new-password").ok();
        } else {
            g.run(change).ok();
        }
        let r = c.cmd("NOOP");
        assert_eq!(r.code, 421, "after {change:?}: {}", r.text);
        assert!(r.text.contains("closing"), "{}", r.text);
        c.expect_closed();
        if !undo.is_empty() {
            g.run(undo).ok();
        }
    }
    assert!(d.log_text().contains("access changed"), "{}", d.log_text());
}
