//! Slow and hostile clients: deadlines rather than idle timers, connections that never log
//! in kept apart from devices that do, and password guesses scored before they are checked.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Sends `bytes` one at a time, `every` apart, on a copy of the connection, until the
/// server closes it.
fn trickle(c: &Raw, bytes: &'static [u8], every: Duration) -> std::thread::JoinHandle<()> {
    let mut s = c.stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for b in bytes.iter().cycle() {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    })
}

/// Reads replies until a `421`, which must come within 5 s and say `why`.
fn closed_with(c: &mut Raw, why: &str) {
    let t0 = Instant::now();
    let r = loop {
        let r = c.read();
        if r.code == 421 {
            break r;
        }
    };
    assert!(r.text.contains(why), "{}", r.text);
    let after = t0.elapsed();
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
}

#[test]
fn login_is_due_from_the_connection_start_whatever_trickles_in() {
    let g = Gate::provisioned();
    let d = g.serve(&["--login-timeout", "2"]);
    // One byte every 200 ms, never a line end.
    let mut c = Raw::connect(d.ftp());
    let _t = trickle(&c, b"USER cam1 and so on", Duration::from_millis(200));
    closed_with(&mut c, "Not logged in within 2 seconds");
    // Complete commands that are not a login do not buy time either.
    let mut c = Raw::connect(d.ftp());
    let _t = trickle(&c, b"NOOP\r\n", Duration::from_millis(50));
    closed_with(&mut c, "Not logged in within 2 seconds");
}

#[test]
fn a_started_line_must_end_in_time_and_only_whole_commands_keep_a_session() {
    let g = Gate::provisioned();
    let d = g.serve(&["--login-timeout", "2", "--idle-timeout", "3"]);
    let mut c = Raw::login(d.ftp());
    // A partial line is no activity.
    let _t = trickle(&c, b"NOOP NOOP NOOP", Duration::from_millis(200));
    closed_with(&mut c, "must end within 2 seconds");
    // A real command every second keeps a session beyond the idle timeout.
    let mut c = Raw::login(d.ftp());
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(c.cmd("NOOP").code, 200);
    }
}

#[test]
fn tls_connections_that_never_log_in_are_closed_at_the_login_deadline() {
    let g = Gate::provisioned();
    let d = g.serve(&["--login-timeout", "2"]);
    let script = format!(
        r#"
import ftplib, ssl, time, sys
f = ftplib.FTP_TLS(context=ssl._create_unverified_context(), timeout=20)
f.connect("127.0.0.1", {port})
f.auth()
t0 = time.time()
try:
    f.voidcmd("NOOP"); f.voidcmd("NOOP")
    while True:
        time.sleep(0.5)
        f.voidcmd("NOOP")
except ftplib.error_temp as e:
    print("CLOSED", round(time.time() - t0, 1), e)
"#,
        port = d.ftp().port()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.starts_with("CLOSED") && out.contains("Not logged in within 2 seconds"),
        "{out}"
    );
}

#[test]
fn connections_that_never_log_in_cannot_lock_devices_out() {
    // The field report: a few hundred idle connections from eight addresses took every
    // one of the 256 session slots. Default limits here.
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut held = Vec::new();
    for a in 2..=9 {
        for _ in 0..40 {
            let (c, greeting) = Raw::connect_from(d.ftp(), loopback(a));
            match greeting.code {
                220 => held.push(c),
                421 => {}
                other => panic!("unexpected greeting {other}: {}", greeting.text),
            }
        }
    }
    let waiting = |g: &Gate| g.status()["sessions_waiting"].as_u64().unwrap();
    assert!(
        waiting(&g) <= 64,
        "{} connections waiting to log in",
        waiting(&g)
    );
    assert!(!held.is_empty());
    // Devices on other addresses still get in and log in, and upload.
    for a in [1, 10] {
        let (mut c, greeting) = Raw::connect_from(d.ftp(), loopback(a));
        assert_eq!(greeting.code, 220, "{}", greeting.text);
        assert_eq!(c.cmd("USER cam1").code, 331);
        assert_eq!(c.cmd(&format!("PASS {PW}")).code, 230);
        if a == 1 {
            // (the helper's data connection comes from 127.0.0.1)
            assert_eq!(c.stor("device.bin", b"reading").code, 226);
        }
    }
    assert!(waiting(&g) <= 64);
}

#[test]
fn parallel_guesses_cannot_outrun_the_ban_threshold() {
    // 32 connections from one address, three guesses each, all at once: with a threshold
    // of 10 (the default), at most ten passwords are ever checked.
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let addr = d.ftp();
    let threads: Vec<_> = (0..32)
        .map(|i| {
            std::thread::spawn(move || {
                let (mut c, greeting) = Raw::connect_from(addr, loopback(7));
                let mut checked = 0;
                if greeting.code != 220 {
                    return checked;
                }
                for n in 0..3 {
                    if c.cmd("USER cam1").code != 331 {
                        break;
                    }
                    let r = c.cmd(&format!("PASS guess-{i}-{n}"));
                    match r.code {
                        530 => checked += 1,
                        421 => break,
                        other => panic!("unexpected {other}: {}", r.text),
                    }
                }
                checked
            })
        })
        .collect();
    let checked: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // Ten, and at most one more as the score decays in the seconds this takes.
    assert!(checked <= 11, "{checked} passwords were checked");
    let log = d.log_text();
    assert!(log.matches("login failed").count() <= 11, "{log}");
    // The device itself, from another address, is not affected.
    let mut c = Raw::login(addr);
    assert_eq!(c.stor("ok.bin", b"fine").code, 226);
}

#[test]
fn a_session_is_not_idle_while_it_uploads() {
    // A transfer longer than the idle timeout is activity: the next command is served.
    let g = Gate::provisioned();
    let d = g.serve(&["--idle-timeout", "2"]);
    let mut c = Raw::login(d.ftp());
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR slow.bin").code, 150);
    for _ in 0..6 {
        dconn.write_all(&[7u8; 1000]).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(dconn);
    assert_eq!(c.read().code, 226);
    assert_eq!(
        c.cmd("NOOP").code,
        200,
        "not closed as idle after a long upload"
    );
}
