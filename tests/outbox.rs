//! The outbox under the conditions of a long outage: renames over files while the
//! destination is down, several Pipes of which one is offline, removed Pipes, and a
//! database left by the previous schema.

mod common;

use std::time::{Duration, Instant};

use common::{Gate, MARKER, PW, Raw, S3_SECRET, S3Server, data, ready_bodies, sha256};

/// A camera replaces its snapshot by uploading to a temporary name and renaming over the
/// old one while the uplink is down: the bucket must end with the newest bytes.
#[test]
fn a_rename_over_a_delivered_file_during_an_outage_keeps_the_new_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("x.jpg", b"first snapshot").code, 226);
    g.wait_delivered(20);
    assert_eq!(s3.get("cell4/x.jpg").unwrap(), b"first snapshot");

    s3.stop();
    assert_eq!(c.stor("x.jpg", b"second snapshot").code, 226);
    assert_eq!(c.stor("x.tmp", b"third snapshot").code, 226);
    assert_eq!(c.cmd("RNFR x.tmp").code, 350);
    assert_eq!(c.cmd("RNTO x.jpg").code, 250);
    s3.resume();
    g.wait_delivered(40);
    assert_eq!(
        s3.get("cell4/x.jpg").as_deref(),
        Some(&b"third snapshot"[..]),
        "the renamed upload is what the bucket holds"
    );
    assert_eq!(s3.keys(), vec!["cell4/x.jpg".to_string()]);
}

/// A second Pipe into a directory, `line1`, beside the `cloud` S3 Pipe; cam1 has both.
fn add_dir_pipe(g: &Gate) -> std::path::PathBuf {
    let out = g.state().join("delivered");
    std::fs::create_dir_all(&out).unwrap();
    let dest = format!("file://{}", out.display());
    g.run(&["pipe", "add", "Line 1", "--dest", &dest, "--id", "line1"])
        .ok();
    g.run(&["sender", "grant", "cam1", "line1"]).ok();
    out
}

fn login_as(addr: std::net::SocketAddr, user: &str) -> Raw {
    let mut c = Raw::connect(addr);
    assert_eq!(c.cmd(&format!("USER {user}")).code, 331);
    assert_eq!(c.cmd(&format!("PASS {PW}")).code, 230);
    c
}

#[test]
fn an_offline_pipe_does_not_hold_up_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let out = add_dir_pipe(&g);
    let d = g.serve(&[]);
    s3.stop();
    let mut cloud = login_as(d.ftp(), "cam1@cloud");
    for i in 0..300 {
        assert_eq!(cloud.stor(&format!("q{i}.bin"), &data(100, 1)).code, 226);
    }
    let mut line = login_as(d.ftp(), "cam1@line1");
    let body = data(5000, 7);
    assert_eq!(line.stor("healthy.bin", &body).code, 226);
    let deadline = Instant::now() + Duration::from_secs(40);
    while std::fs::read(out.join("healthy.bin")).ok().as_deref() != Some(&body[..]) {
        assert!(
            Instant::now() < deadline,
            "the directory pipe's upload was not delivered while s3 is down: {}",
            g.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = g.status();
    let cloud_status = st["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "cloud")
        .unwrap();
    assert_eq!(cloud_status["backlog_ops"], 300, "{st}");
    assert_eq!(cloud_status["state"], "offline", "{st}");
}

/// Copies the state directory `tests/fixtures/NAME` into `g`'s.
fn fixture_state(g: &Gate, name: &str) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(src.join("."))
        .arg(g.state())
        .status()
        .unwrap();
    assert!(copy.success());
}

/// A state directory written by ftpgate 0.1 with schema 2 (made with that release: an
/// `s3://` Pipe whose endpoint was down, a directory, five images, a file replaced, a
/// rename, a delete, and an upload into a Pipe removed afterwards). Its queued puts carry
/// the MD5 that version took (a bare hex `md5`); they are delivered with it as
/// Content-MD5, which s3s-fs checks.
#[test]
fn a_schema_2_database_keeps_and_delivers_its_queued_operations() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::new();
    fixture_state(&g, "v2-state");
    // The fixture's endpoint was never up; point it at the test server.
    g.run(&["pipe", "set", "cloud", "--endpoint", &s3.endpoint()])
        .ok();
    let before: serde_json::Value =
        serde_json::from_str(g.run(&["spool", "list", "--json"]).ok()).unwrap();
    let paths: Vec<&str> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/cam",
            "/cam/img0.jpg",
            "/cam/img1.jpg",
            "/cam/img2.jpg",
            "/cam/img3.jpg",
            "/cam/img4.jpg",
            "/a.txt",
            "/b.txt"
        ],
        "every queued op of the cloud pipe survives the migration; the removed pipe's goes"
    );
    assert_eq!(g.status()["spool_bytes"], 40_111);
    let d = g.serve(&[]);
    g.wait_delivered(30);
    for i in 0..5u8 {
        let want: Vec<u8> = format!("image {i} ").repeat(1000 + i as usize).into_bytes();
        assert_eq!(
            s3.get(&format!("cell4/cam/img{i}.jpg")).as_deref(),
            Some(&want[..])
        );
    }
    assert_eq!(
        s3.get("cell4/a.txt").as_deref(),
        Some(&b"second version of a"[..])
    );
    assert_eq!(s3.get("cell4/b.txt").as_deref(), Some(&b"renamed body"[..]));
    assert!(s3.get("cell4/gone.txt").is_none());
    let ready = ready_bodies(g.state());
    assert!(
        ready.is_empty(),
        "delivered and orphaned bodies are deleted: {ready:?}"
    );
    let mut c = Raw::login(d.ftp());
    let (_, names) = c.list("NLST cam");
    assert_eq!(names.lines().count(), 5, "{names}");
}

/// A state directory written by the release before the compact catalog (schema 3),
/// made with that release: Pipe `cloud` delivered `/cam/day1/d0..d2.txt` and made
/// `/empty`, then its endpoint went down; `/cam/day2/q0.txt` and `q1.txt` were uploaded
/// and `d2.txt` renamed to `renamed.txt`, all four still queued.
#[test]
fn a_schema_3_database_lists_what_it_delivered_and_delivers_its_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::new();
    fixture_state(&g, "v3-state");
    // What that gateway had delivered before its endpoint went down.
    for i in 0..3 {
        s3.bucket()
            .put_object(
                format!("/cell/cam/day1/d{i}.txt"),
                format!("delivered {i}\n").as_bytes(),
            )
            .unwrap();
    }
    g.run(&["pipe", "set", "cloud", "--endpoint", &s3.endpoint()])
        .ok();
    let queued: serde_json::Value =
        serde_json::from_str(g.run(&["spool", "list", "--json"]).ok()).unwrap();
    let ops: Vec<&str> = queued
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["mkdir", "put", "put", "rename"], "{queued}");
    let d = g.serve(&[]);
    g.wait_delivered(30);
    for (key, body) in [
        ("cell/cam/day2/q0.txt", "queued 0\n"),
        ("cell/cam/day2/q1.txt", "queued 1\n"),
        ("cell/cam/day1/renamed.txt", "delivered 2\n"),
    ] {
        assert_eq!(s3.get(key).as_deref(), Some(body.as_bytes()), "{key}");
    }
    assert_eq!(s3.get("cell/cam/day1/d2.txt"), None, "renamed away");
    let mut c = Raw::login(d.ftp());
    let (_, day1) = c.list("NLST cam/day1");
    assert_eq!(
        day1, "d0.txt\r\nd1.txt\r\nrenamed.txt\r\n",
        "what was delivered before the upgrade is still listed"
    );
    assert_eq!(c.cmd("SIZE cam/day1/d0.txt").code, 213);
    let (_, root) = c.list("NLST");
    assert_eq!(root, "cam\r\nempty\r\n");
    let st = g.status();
    assert_eq!(st["remembered"], 6, "5 delivered files and /empty: {st}");
}

#[test]
fn removing_a_pipe_removes_its_namespace_and_queued_uploads() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.cmd("MKD sub").code, 257);
    for i in 0..3 {
        assert_eq!(c.stor(&format!("sub/f{i}"), &data(10_000, i)).code, 226);
    }
    drop(c);
    let st = g.status();
    assert_eq!(st["pipes"][0]["backlog_ops"], 4, "{st}");
    assert_eq!(st["spool_bytes"], 30_000, "{st}");
    // Acknowledged uploads are not thrown away without being asked.
    g.run(&["pipe", "remove", "line1"]).fails(
        1,
        "pipe line1 still holds 3 undelivered file(s), 30000 byte(s)",
    );
    g.run(&["pipe", "remove", "line1"]).fails(
        1,
        "'ftpgate pipe disable line1' stops it without losing anything",
    );
    assert_eq!(
        g.status()["pipes"][0]["backlog_ops"],
        4,
        "nothing was removed"
    );
    let out = g
        .run(&["pipe", "remove", "line1", "--discard-backlog"])
        .ok()
        .to_string();
    assert!(
        out.contains("discarded its 3 undelivered file(s), 30000 byte(s)"),
        "{out}"
    );
    assert_eq!(g.status()["spool_bytes"], 0);
    assert_eq!(
        ready_bodies(g.state()).len(),
        0,
        "the bodies are deleted at once"
    );

    // A new Pipe with the same id starts empty.
    std::fs::create_dir_all(g.state().join("delivered")).unwrap();
    let dest = format!("file://{}", g.state().join("delivered").display());
    g.run(&["pipe", "add", "Again", "--dest", &dest, "--id", "line1"])
        .ok();
    g.run(&["sender", "grant", "cam1", "line1"]).ok();
    let mut c = Raw::login(d.ftp());
    let (_, names) = c.list("NLST");
    assert_eq!(names, "", "nothing inherited");
    assert_eq!(c.cmd("SIZE sub/f0").code, 550);
    g.wait_delivered(10);
    let delivered: Vec<_> = std::fs::read_dir(g.state().join("delivered"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(delivered, [MARKER], "only the marker pipe add left");
}

/// A fleet file without a Pipe that still holds uploads (its destination down): `apply`
/// says what would be lost, in `--dry-run` too, and removes nothing unless told to.
#[test]
fn apply_keeps_a_dropped_pipe_that_holds_undelivered_uploads() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("queued.jpg", &data(1234, 1)).code, 226);
    drop(c);
    let fleet = g.state().join("fleet.toml");
    let text = g.run(&["export"]).ok().to_string();
    // The same fleet without the Pipe (and its grant).
    let senders = &text[text.find("[[sender]]").unwrap()..];
    let without = senders.replace("pipes = [\"line1\"]", "pipes = []");
    std::fs::write(&fleet, &without).unwrap();
    let f = fleet.to_str().unwrap();
    let lost = "pipe line1 still holds 1 undelivered file(s), 1234 byte(s)";
    g.run(&["apply", "--dry-run", f]).fails(1, lost);
    g.run(&["apply", f]).fails(1, lost);
    assert_eq!(g.status()["pipes"][0]["backlog_ops"], 1, "still queued");
    let dry = g
        .run(&["apply", "--dry-run", "--discard-backlog", f])
        .ok()
        .to_string();
    assert!(
        dry.contains("would: - pipe line1 (discarding 1 undelivered file(s), 1234 byte(s))"),
        "{dry}"
    );
    assert_eq!(
        g.status()["pipes"][0]["backlog_ops"],
        1,
        "a dry run changes nothing"
    );
    g.run(&["apply", "--discard-backlog", f]).ok();
    assert_eq!(g.status()["pipes"].as_array().unwrap().len(), 0);
    drop(d);
}

#[test]
fn spool_list_pages_through_a_long_queue() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    for i in 0..230 {
        assert_eq!(c.stor(&format!("p{i:03}"), b"x").code, 226);
    }
    let page = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["spool", "list", "--json"];
        all.extend(args);
        serde_json::from_str::<serde_json::Value>(g.run(&all).ok())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let first = page(&[]);
    assert_eq!(first.len(), 100, "a page is 100 ops by default");
    assert_eq!(first[0]["path"], "/p000");
    let last = first[99]["id"].as_u64().unwrap().to_string();
    let second = page(&["--after", &last, "--limit", "200"]);
    assert_eq!(second.len(), 130);
    assert_eq!(second[0]["path"], "/p100");
    assert_eq!(page(&["--all"]).len(), 230);
    assert_eq!(page(&["--all", "--limit", "7"]).len(), 230);
    let table = g.run(&["spool", "list"]).ok().to_string();
    assert!(
        table.contains(&format!("ftpgate spool list --after {last}")),
        "{table}"
    );
    g.run(&["spool", "list", "--limit", "0"])
        .fails(2, "--limit 0 is out of range");
}

/// STOR, DELE, STOR, rename and STOR again on many keys while deliveries run eight at a
/// time and complete in batches: every key ends with the version that came last.
#[test]
fn order_per_key_holds_under_parallel_delivery_and_batched_completions() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    g.run(&["pipe", "set", "cloud", "--parallel", "8"]).ok();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    for round in 0..3u8 {
        for k in 0..15 {
            let v = |n: u8| format!("key {k} round {round} version {n}").into_bytes();
            assert_eq!(c.stor(&format!("k{k}"), &v(1)).code, 226);
            assert_eq!(c.cmd(&format!("DELE k{k}")).code, 250);
            assert_eq!(c.stor(&format!("k{k}"), &v(2)).code, 226);
            assert_eq!(c.cmd(&format!("RNFR k{k}")).code, 350);
            assert_eq!(c.cmd(&format!("RNTO moved{k}")).code, 250);
            assert_eq!(c.stor(&format!("k{k}"), &v(3)).code, 226);
        }
    }
    g.wait_delivered(60);
    for k in 0..15 {
        let v = |n: u8| format!("key {k} round 2 version {n}").into_bytes();
        assert_eq!(s3.get(&format!("cell4/k{k}")), Some(v(3)), "k{k}");
        assert_eq!(s3.get(&format!("cell4/moved{k}")), Some(v(2)), "moved{k}");
    }
    assert_eq!(s3.keys().len(), 30, "{:?}", s3.keys());
}

/// kill -9 while a batch of completions is being recorded: after the restart every
/// upload is delivered with its newest bytes, none with an older version.
#[test]
fn a_kill_during_delivery_loses_nothing_and_delivers_no_stale_version() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    for k in 0..40 {
        assert_eq!(c.stor(&format!("s{k}"), &data(50_000, 1)).code, 226);
    }
    for k in 0..40 {
        assert_eq!(c.stor(&format!("s{k}"), &data(60_000 + k, 2)).code, 226);
    }
    d.kill9();
    let _d = g.serve(&[]);
    g.wait_delivered(60);
    for k in 0..40 {
        assert_eq!(
            s3.get(&format!("cell4/s{k}")).map(|b| sha256(&b)),
            Some(sha256(&data(60_000 + k, 2))),
            "s{k} has its second version"
        );
    }
}

/// A TCP relay in front of s3s-fs that counts the connections made through it.
struct CountingRelay {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingRelay {
    fn to(target: u16) -> CountingRelay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        CountingRelay { port, accepted }
    }
}

/// A drain of many small operations reuses its HTTP connections: on an ARM box talking
/// TLS to S3, a connection (and a handshake) per request would cost more than the upload.
#[test]
fn deliveries_reuse_their_connections_to_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let relay = CountingRelay::to(s3.port);
    let g = Gate::with_s3(&s3, S3_SECRET);
    let endpoint = format!("http://127.0.0.1:{}", relay.port);
    g.run(&[
        "pipe",
        "set",
        "cloud",
        "--endpoint",
        &endpoint,
        "--parallel",
        "4",
    ])
    .ok();
    s3.stop();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.cmd("MKD dir").code, 257);
    for i in 0..60 {
        assert_eq!(c.stor(&format!("dir/f{i}"), &data(3000, i as u8)).code, 226);
    }
    // The failed attempts while s3s-fs was down connected to the relay; count from here.
    s3.resume();
    let before = relay.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(g.run(&["spool", "retry"]).code, 0);
    g.wait_delivered(60);
    for i in 0..20 {
        assert_eq!(c.cmd(&format!("DELE dir/f{i}")).code, 250);
    }
    g.wait_delivered(30);
    let used = relay.accepted.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(s3.keys().len(), 40, "{:?}", s3.keys());
    assert!(dir.path().join("plant/cell4/dir").is_dir(), "the marker");
    assert!(
        used <= 8,
        "81 requests took {used} connections (4 deliveries at a time)"
    );
}
