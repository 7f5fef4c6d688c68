//! What a technician sees per device: the event ring (`ftpgate events`), per-Sender
//! activity (`sender list|show`), `--expect-every` silences, failed logins and bans, all
//! through the real binary, real clients and a real S3 server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn json(run: &str) -> Value {
    serde_json::from_str(run).unwrap_or_else(|e| panic!("{e}: {run}"))
}

fn events(g: &Gate, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", "--json", "--limit", "4096"];
    all.extend_from_slice(args);
    json(g.run(&all).ok()).as_array().unwrap().clone()
}

fn sender(g: &Gate, name: &str) -> Value {
    json(g.run(&["sender", "show", name, "--json"]).ok())
}

/// Waits until `check` holds, or fails saying `what`.
fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {secs}s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// A camera's upload (busybox `ftpput`), then a rename and a delete: each is an event
/// with the right size, checksum, key and ETag; the Sender's activity counts it; both
/// survive a restart.
#[test]
fn a_camera_upload_is_an_event_and_the_senders_activity_and_both_survive_a_restart() {
    assert!(have("busybox"), "busybox is installed by scripts/test-all");
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    let file = g.state().join("snap.jpg");
    let bytes = data(70_001, 3);
    std::fs::write(&file, &bytes).unwrap();
    let out = Command::new("busybox")
        .args(["ftpput", "-u", "cam1", "-p", PW, "-P"])
        .arg(d.ftp().port().to_string())
        .args(["127.0.0.1", "snap.jpg"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    g.wait_delivered(20);

    let crc = format!("{:08x}", crc32c::crc32c(&bytes));
    let all = events(&g, &[]);
    let received = of_kind(&all, "upload.received");
    assert_eq!(received.len(), 1, "{all:?}");
    let r = received[0];
    assert_eq!(r["sender"], "cam1");
    assert_eq!(r["pipe"], "cloud");
    assert_eq!(r["path"], "/snap.jpg");
    assert_eq!(r["size"], 70_001);
    assert_eq!(r["crc32c"], crc.as_str());
    assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
    wait_for(10, "upload.delivered", || {
        !of_kind(&events(&g, &[]), "upload.delivered").is_empty()
    });
    let all = events(&g, &[]);
    let delivered = of_kind(&all, "upload.delivered")[0].clone();
    assert_eq!(delivered["key"], "cell4/snap.jpg");
    assert_eq!(delivered["size"], 70_001);
    assert_eq!(delivered["crc32c"], crc.as_str());
    let (head, _) = s3.bucket().head_object("/cell4/snap.jpg").unwrap();
    let etag = head.e_tag.unwrap();
    assert_eq!(delivered["etag"], etag.trim_matches('"'), "{delivered}");
    assert!(
        delivered["id"].as_u64() > r["id"].as_u64(),
        "ids grow: {all:?}"
    );

    // Logins are recorded in batches, within a second or so.
    wait_for(5, "the login recorded", || {
        sender(&g, "cam1")["activity"]["last_login"] != Value::Null
    });
    let a = &sender(&g, "cam1")["activity"];
    assert_eq!(a["uploads_today"], 1, "{a}");
    assert_eq!(a["bytes_today"], 70_001);
    assert_eq!(a["uploads_total"], 1);
    assert_eq!(a["last_upload"]["path"], "/snap.jpg");
    assert_eq!(a["last_upload"]["size"], 70_001);
    assert_eq!(a["last_login"]["address"], "127.0.0.1");
    assert_eq!(a["last_login"]["proto"], "ftp");
    let listed = json(g.run(&["sender", "list", "--json"]).ok());
    assert_eq!(listed[0]["activity"], *a);
    let table = g.run(&["sender", "list"]).ok().to_string();
    assert!(table.contains("LAST UPLOAD"), "{table}");

    // A rename and a delete, each an event in its own commit.
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.cmd("RNFR snap.jpg").code, 350);
    assert_eq!(c.cmd("RNTO kept.jpg").code, 250);
    assert_eq!(c.cmd("DELE kept.jpg").code, 250);
    let all = events(&g, &["--sender", "cam1"]);
    let renamed = of_kind(&all, "file.renamed");
    assert_eq!(renamed.len(), 1, "{all:?}");
    assert_eq!(renamed[0]["path"], "/snap.jpg");
    assert_eq!(renamed[0]["to"], "/kept.jpg");
    assert_eq!(of_kind(&all, "file.deleted")[0]["path"], "/kept.jpg");
    let only = events(&g, &["--kind", "file.deleted", "--kind", "file.renamed"]);
    assert_eq!(only.len(), 2, "{only:?}");

    // Everything above survives a restart.
    assert_eq!(d.stop(), 0);
    // Read from the state file with no daemon running: what stopping left there.
    let before = (events(&g, &[]), sender(&g, "cam1")["activity"].clone());
    let _d = g.serve(&[]);
    let after = (events(&g, &[]), sender(&g, "cam1")["activity"].clone());
    assert_eq!(before.0, after.0);
    assert_eq!(before.1["uploads_total"], after.1["uploads_total"]);
    assert_eq!(before.1["last_upload"], after.1["last_upload"]);
    assert_eq!(before.1["last_login"], after.1["last_login"]);
    // And with no daemon running, the CLI reads the same from the state file.
    let human = g.run(&["events"]).ok().to_string();
    assert!(human.contains("upload.delivered"), "{human}");
    assert!(human.contains("key=cell4/snap.jpg"), "{human}");
}

/// `--expect-every`: a Sender quiet for longer is `sender.silent` (once), and its next
/// upload is `sender.back`; `events --follow` prints them as they happen.
#[test]
fn expect_every_reports_a_silent_sender_once_and_its_return() {
    let g = Gate::provisioned();
    g.run(&["sender", "set", "cam1", "--expect-every", "2s"])
        .ok();
    g.run(&["sender", "set", "cam1", "--expect-every", "0s"])
        .fails(2, "give a duration");
    let d = g.serve(&[]);
    let mut follow = Command::new(BIN)
        .args(["--state"])
        .arg(g.state())
        .args(["events", "--follow", "--json", "--limit", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    wait_for(10, "sender.silent", || {
        !of_kind(&events(&g, &[]), "sender.silent").is_empty()
    });
    assert_eq!(sender(&g, "cam1")["activity"]["silent"], true);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        of_kind(&events(&g, &[]), "sender.silent").len(),
        1,
        "said once while it stays silent"
    );
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("back.jpg", &data(1000, 1)).code, 226);
    let all = events(&g, &["--sender", "cam1"]);
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let back = kinds
        .iter()
        .position(|k| *k == "sender.back")
        .expect("sender.back");
    assert_eq!(kinds[back - 1], "upload.received", "{kinds:?}");
    assert_eq!(sender(&g, "cam1")["activity"]["silent"], false);

    // The follower printed the silence and the return, one JSON object per line.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|k| k == "sender.back") && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(json(&line)["kind"].as_str().unwrap().to_string());
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen.iter().any(|k| k == "sender.silent"), "{seen:?}");
    assert!(seen.iter().any(|k| k == "sender.back"), "{seen:?}");
    g.run(&["sender", "set", "cam1", "--expect-every", "off"])
        .ok();
    assert_eq!(sender(&g, "cam1")["expect_every"], Value::Null);
}

/// Failed logins are events (never with the password) and counted on the Sender; an
/// address that keeps failing is banned, once; `CLNT` names the client of a login.
#[test]
fn failed_logins_and_bans_are_events_and_clnt_names_the_client() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let wrong = "not-the-password-42";
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let addr = d.ftp();
            std::thread::spawn(move || {
                let mut c = Raw::connect(addr);
                if c.cmd("USER cam1@line1").code == 331 {
                    let _ = c.cmd(&format!("PASS {wrong}"));
                }
            })
        })
        .collect();
    for t in tries {
        t.join().unwrap();
    }
    wait_for(10, "address.banned", || {
        !of_kind(&events(&g, &[]), "address.banned").is_empty()
    });
    let all = events(&g, &[]);
    let failed = of_kind(&all, "login.failed");
    assert!(failed.len() >= 10, "{all:?}");
    assert_eq!(failed[0]["sender"], "cam1");
    assert_eq!(failed[0]["pipe"], "line1");
    assert_eq!(failed[0]["address"], "127.0.0.1");
    assert_eq!(failed[0]["reason"], "wrong password");
    assert_eq!(of_kind(&all, "address.banned").len(), 1, "{all:?}");
    let a = &sender(&g, "cam1")["activity"];
    assert_eq!(
        a["failed_logins_last_hour"].as_u64(),
        Some(failed.len() as u64),
        "{a}"
    );
    let everything = format!(
        "{}{}{}",
        g.run(&["events", "--json", "--limit", "4096"]).ok(),
        g.run(&["events"]).ok(),
        g.run(&["sender", "list", "--json"]).ok()
    );
    assert!(!everything.contains(wrong), "a password in the output");
    assert!(!everything.contains(PW));

    // A client that names itself, from another loopback address (this one is banned).
    let (mut c, hello) = Raw::connect_from(d.ftp(), "127.0.0.7".parse().unwrap());
    assert_eq!(hello.code, 220);
    assert_eq!(c.cmd("CLNT PLC-Cam firmware 2.1").code, 200);
    assert_eq!(c.cmd("USER cam1").code, 331);
    assert_eq!(c.cmd(&format!("PASS {PW}")).code, 230);
    wait_for(5, "the login recorded", || {
        sender(&g, "cam1")["activity"]["last_login"]["address"] == "127.0.0.7"
    });
    let login = &sender(&g, "cam1")["activity"]["last_login"];
    assert_eq!(login["client"], "PLC-Cam firmware 2.1", "{login}");
}

/// `events` refuses bad filters with a usage error that says what is allowed.
#[test]
fn events_arguments_are_checked() {
    let g = Gate::provisioned();
    g.run(&["events", "--kind", "upload.lost"]).fails(
        2,
        "unknown event kind \"upload.lost\": use one of upload.received",
    );
    g.run(&["events", "--limit", "0"])
        .fails(2, "give 1 to 4096");
    let out = g.run(&["events"]).ok().to_string();
    assert!(out.contains("no events yet"), "{out}");
}

/// A destination failing for longer than `--offline-grace` is `pipe.offline`, and
/// `pipe.online` once it delivers again; a spool past 80 % of `--spool-max-bytes` is
/// `spool.high`, and `spool.ok` once delivered.
#[test]
fn an_offline_pipe_and_a_filling_spool_are_events_and_so_is_their_end() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&["--offline-grace", "1s", "--spool-max-bytes", "1M"]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("big.bin", &data(900_000, 5)).code, 226);
    wait_for(20, "pipe.offline and spool.high", || {
        let all = events(&g, &[]);
        !of_kind(&all, "pipe.offline").is_empty() && !of_kind(&all, "spool.high").is_empty()
    });
    let all = events(&g, &[]);
    let offline = of_kind(&all, "pipe.offline")[0];
    assert_eq!(offline["pipe"], "line1");
    assert!(
        offline["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{offline}"
    );
    assert!(of_kind(&all, "spool.high")[0]["bytes"].as_u64() >= Some(900_000));
    g.resume_deliveries();
    wait_for(40, "pipe.online and spool.ok", || {
        let all = events(&g, &[]);
        !of_kind(&all, "pipe.online").is_empty() && !of_kind(&all, "spool.ok").is_empty()
    });
    let all = events(&g, &[]);
    assert_eq!(of_kind(&all, "pipe.offline").len(), 1, "said once: {all:?}");
    assert_eq!(of_kind(&all, "spool.high").len(), 1, "said once: {all:?}");
    drop(c);
}

/// A state file that would not fit twice in the free space beside it is `state.large`
/// (on a small file system of the test's own; needs root to mount it).
#[test]
fn a_state_file_with_no_room_to_grow_is_an_event() {
    let Some(g) = Gate::on_small_disk(16) else {
        return;
    };
    g.provision(&g.state().join("delivered"));
    let d = g.serve(&[]);
    let state_bytes = std::fs::metadata(g.state().join("ftpgate.redb"))
        .unwrap()
        .len();
    // Leave less than twice the state file free.
    let free = free_bytes(g.state());
    let filler = g.state().join("filler");
    std::fs::write(&filler, vec![0u8; (free - state_bytes) as usize]).unwrap();
    wait_for(20, "state.large", || {
        !of_kind(&events(&g, &[]), "state.large").is_empty()
    });
    let e = &of_kind(&events(&g, &[]), "state.large")[0].clone();
    assert!(e["bytes"].as_u64() >= Some(state_bytes), "{e}");
    std::fs::remove_file(&filler).unwrap();
    drop(d);
}
