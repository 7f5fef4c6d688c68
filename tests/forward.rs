//! Forwarding to a real S3-compatible server (s3s-fs on loopback) and to a directory:
//! bytes and metadata, namespace changes, outages, bad credentials, order per key,
//! crashes during delivery, and multipart with flat memory.

mod common;

use std::time::{Duration, Instant};

use common::{Gate, MARKER, Raw, S3_SECRET, S3Server, STAGING, data, ready_bodies, sha256};

#[test]
fn uploads_reach_s3_with_their_bytes_and_metadata_and_changes_follow() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    let body = data(777_777, 5);
    assert_eq!(c.cmd("MKD cam").code, 257);
    assert_eq!(
        c.cmd("MFMT 20250102030405 cam").code,
        550,
        "MFMT is for files"
    );
    assert_eq!(c.stor("cam/one.jpg", &body).code, 226);
    g.wait_delivered(20);
    assert_eq!(
        sha256(&s3.get("cell4/cam/one.jpg").expect("delivered")),
        sha256(&body)
    );
    let (head, _) = s3.bucket().head_object("/cell4/cam/one.jpg").unwrap();
    let meta = head.metadata.unwrap_or_default();
    assert_eq!(
        meta.get("sender").map(String::as_str),
        Some("cam1"),
        "{meta:?}"
    );
    assert_eq!(meta.get("pipe").map(String::as_str), Some("cloud"));
    assert!(meta.get("gateway").is_some_and(|g| !g.is_empty()));
    assert!(meta.get("mtime").is_some_and(|m| m.parse::<u64>().is_ok()));
    // s3s-fs keeps a directory marker (`cell4/cam/`) as a directory.
    assert!(
        dir.path().join("plant/cell4/cam").is_dir(),
        "MKD made a directory marker"
    );

    // Rename a file, then the whole directory, then delete and remove.
    assert_eq!(c.cmd("RNFR cam/one.jpg").code, 350);
    assert_eq!(c.cmd("RNTO cam/two.jpg").code, 250);
    assert_eq!(c.cmd("RNFR cam").code, 350);
    assert_eq!(c.cmd("RNTO archive").code, 250);
    g.wait_delivered(20);
    assert_eq!(s3.keys(), vec!["cell4/archive/two.jpg".to_string()]);
    assert!(!dir.path().join("plant/cell4/cam/one.jpg").exists());
    assert_eq!(
        sha256(&s3.get("cell4/archive/two.jpg").unwrap()),
        sha256(&body)
    );
    assert_eq!(c.cmd("DELE archive/two.jpg").code, 250);
    assert_eq!(c.cmd("RMD archive").code, 250);
    g.wait_delivered(20);
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());
    assert!(
        !dir.path().join("plant/cell4/archive").exists(),
        "RMD removed the marker"
    );

    let status = g.status();
    let pipe = &status["pipes"][0];
    assert_eq!(pipe["state"], "online");
    assert!(pipe["delivered_ops"].as_u64().unwrap() >= 6);
    assert!(g.run(&["pipe", "test", "cloud"]).ok().contains("ok"));
}

#[test]
fn an_outage_queues_uploads_and_delivers_them_all_when_s3_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    s3.stop();
    let mut c = Raw::login(d.ftp());
    for i in 0..50 {
        assert_eq!(
            c.stor(&format!("f{i}.bin"), &data(10_000 + i, i as u8))
                .code,
            226,
            "accepted while offline"
        );
    }
    let (_, names) = c.list("NLST");
    assert_eq!(names.lines().count(), 50, "listed while offline");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(g.status()["pipes"][0]["state"], "offline");
    assert!(
        g.status()["pipes"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    let r = g.run(&["pipe", "test", "cloud"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);

    s3.resume();
    g.wait_delivered(40);
    for i in 0..50 {
        assert_eq!(
            sha256(&s3.get(&format!("cell4/f{i}.bin")).unwrap()),
            sha256(&data(10_000 + i, i as u8)),
            "f{i}"
        );
    }
    assert!(
        ready_bodies(g.state()).is_empty(),
        "delivered bodies are deleted"
    );
}

#[test]
fn wrong_credentials_park_with_a_reason_until_the_pipe_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, "not-the-secret");
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("a.txt", b"abc").code, 226);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let st = g.status();
        if st["pipes"][0]["state"] == "parked" {
            let reason = st["pipes"][0]["parked_reason"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                reason.contains("secret key is wrong") || reason.contains("access denied"),
                "{reason}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not parked: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(g.run(&["spool", "list"]).ok().contains("parked"));
    assert!(g.run(&["status"]).ok().contains("parked"));
    let parked: serde_json::Value =
        serde_json::from_str(g.run(&["events", "--kind", "upload.parked", "--json"]).ok()).unwrap();
    assert_eq!(parked.as_array().unwrap().len(), 1, "parked once: {parked}");
    assert_eq!(parked[0]["path"], "/a.txt");
    assert!(
        parked[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("secret key is wrong") || r.contains("access denied")),
        "{parked}"
    );
    let r = g.run(&["pipe", "test", "cloud"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(s3.get("cell4/a.txt").is_none());

    let fixed = g.run_stdin(&["pipe", "set", "cloud", "--secret-key-stdin"], S3_SECRET);
    assert!(fixed.ok().contains("will be retried"), "{}", fixed.stdout);
    g.wait_delivered(20);
    assert_eq!(s3.get("cell4/a.txt").unwrap(), b"abc");
}

/// A `refuse` Pipe never overwrites at the destination, even once the gateway has
/// forgotten the name (a conditional write): the second upload is parked with the
/// reason, and the first camera's object stays.
#[test]
fn a_pipe_that_refuses_overwrites_keeps_an_object_whose_name_it_forgot() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    g.run(&[
        "pipe",
        "set",
        "cloud",
        "--overwrite",
        "refuse",
        "--keep-delivered",
        "0s",
    ])
    .ok();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("a.txt", b"first").code, 226);
    g.wait_delivered(20);
    let deadline = Instant::now() + Duration::from_secs(40);
    while c.cmd("SIZE a.txt").code != 550 {
        assert!(Instant::now() < deadline, "a.txt was never forgotten");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        c.stor("a.txt", b"second").code,
        226,
        "a forgotten name is new"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while g.status()["pipes"][0]["state"] != "parked" {
        assert!(Instant::now() < deadline, "{}", g.status());
        std::thread::sleep(Duration::from_millis(100));
    }
    let reason = g.status()["pipes"][0]["parked_reason"].to_string();
    assert!(
        reason.contains("already exists at the destination"),
        "{reason}"
    );
    assert_eq!(s3.get("cell4/a.txt").unwrap(), b"first");
}

#[test]
fn spool_retry_sends_a_parked_operation_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    // The endpoint's keys were rotated behind the gateway's back: a permanent failure.
    s3.stop();
    s3.secret = "rotated".into();
    s3.resume();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("b.txt", b"bee").code, 226);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while g.status()["pipes"][0]["state"] != "parked" {
        assert!(
            std::time::Instant::now() < deadline,
            "{}\n{}",
            g.status(),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        g.status()["pipes"][0]["parked_reason"]
            .as_str()
            .unwrap()
            .contains("secret key is wrong")
    );
    // Someone puts the old key back on the endpoint; nothing changed on the gateway.
    s3.stop();
    s3.secret = S3_SECRET.into();
    s3.resume();
    assert!(g.run(&["spool", "retry"]).ok().contains("1 operation"));
    g.wait_delivered(20);
    assert_eq!(s3.get("cell4/b.txt").unwrap(), b"bee");
}

#[test]
fn operations_on_one_key_arrive_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    s3.stop();
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("a", b"old bytes").code, 226);
    assert_eq!(c.cmd("DELE a").code, 250);
    assert_eq!(c.stor("a", b"new bytes").code, 226);
    s3.resume();
    g.wait_delivered(40);
    assert_eq!(s3.get("cell4/a").unwrap(), b"new bytes");
}

#[test]
fn a_crash_during_delivery_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    let files: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| (format!("c{i}.bin"), data(300_000 + i * 1000, i as u8)))
        .collect();
    for (name, body) in &files {
        assert_eq!(c.stor(name, body).code, 226);
    }
    // Kill it while the forwarder is busy.
    d.kill9();
    let _d = g.serve(&[]);
    g.wait_delivered(60);
    for (name, body) in &files {
        assert_eq!(
            sha256(&s3.get(&format!("cell4/{name}")).unwrap()),
            sha256(body),
            "{name}"
        );
    }
}

#[test]
fn a_200_mib_upload_goes_multipart_with_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    // glibc raises its mmap threshold after argon2 frees its 19 MiB, and then keeps freed
    // part buffers in per-thread arenas; a fixed threshold (as the systemd unit sets, and
    // as musl behaves in the static builds) returns them.
    let d = g.serve_env(&[], &[("MALLOC_MMAP_THRESHOLD_", "131072")]);
    let mut c = Raw::login(d.ftp());
    let hwm = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    // First a 20 MiB file (multipart too), then ten times that: the peak must not move
    // with the size.
    let small = data(20 << 20, 41);
    assert_eq!(c.stor("small.bin", &small).code, 226);
    g.wait_delivered(60);
    let after_small = hwm();
    let body = data(200 << 20, 42);
    assert_eq!(c.stor("big.bin", &body).code, 226);
    g.wait_delivered(120);
    assert_eq!(sha256(&s3.get("cell4/big.bin").unwrap()), sha256(&body));
    let after_big = hwm();
    // A multipart object's ETag (`...-N`) is in its delivery's event.
    let delivered: serde_json::Value = serde_json::from_str(
        g.run(&["events", "--kind", "upload.delivered", "--json"])
            .ok(),
    )
    .unwrap();
    let (head, _) = s3.bucket().head_object("/cell4/big.bin").unwrap();
    let big = &delivered.as_array().unwrap()[1];
    assert_eq!(big["key"], "cell4/big.bin", "{delivered}");
    assert_eq!(big["etag"], head.e_tag.unwrap().trim_matches('"'), "{big}");
    assert!(big["etag"].as_str().unwrap().contains('-'), "{big}");
    eprintln!("daemon VmHWM: {after_small} KiB after 20 MiB, {after_big} KiB after 200 MiB");
    assert!(
        after_big < after_small + 8 * 1024,
        "peak RSS grew with the file size: {after_small} -> {after_big} KiB"
    );
}

#[test]
fn directory_pipes_get_whole_files_only() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.cmd("MKD sub").code, 257);
    let body = data(123_456, 1);
    assert_eq!(c.stor("sub/x.bin", &body).code, 226);
    assert_eq!(c.cmd("MFMT 20200102030405 sub/x.bin").code, 213);
    g.wait_delivered(20);
    let out = g.state().join("delivered");
    assert_eq!(std::fs::read(out.join("sub/x.bin")).unwrap(), body);
    let names: Vec<String> = std::fs::read_dir(out.join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["x.bin".to_string()], "no temporary files left");
    assert_eq!(c.cmd("RNFR sub/x.bin").code, 350);
    assert_eq!(c.cmd("RNTO y.bin").code, 250);
    assert_eq!(c.cmd("RMD sub").code, 250);
    g.wait_delivered(20);
    assert_eq!(std::fs::read(out.join("y.bin")).unwrap(), body);
    assert!(!out.join("sub").exists());
}

/// A destination on a disk that is not mounted is an empty directory on the box's own
/// disk. The Pipe holds its uploads instead of filling that, says why in `status` and
/// `pipe test`, delivers when the disk is back, and takes a replaced disk only when told.
#[test]
fn a_destination_whose_disk_is_not_mounted_holds_its_uploads() {
    let g = Gate::provisioned();
    let out = g.state().join("delivered");
    let disk = g.state().join("usb-disk");
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("a.jpg", b"first").code, 226);
    g.wait_delivered(20);
    // Unmounted: the mountpoint is there, empty.
    std::fs::rename(&out, &disk).unwrap();
    std::fs::create_dir(&out).unwrap();
    assert_eq!(c.stor("b.jpg", b"second").code, 226);
    let why = "destination not mounted?";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = g.status();
        let err = st["pipes"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if err.contains(why) {
            assert!(err.contains("--adopt-destination"), "{err}");
            break;
        }
        assert!(Instant::now() < deadline, "no word of the mount: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(g.status()["pipes"][0]["backlog_ops"], 1, "b.jpg is kept");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written onto the box's own disk"
    );
    g.run(&["pipe", "test", "line1"]).fails(1, why);
    // Mounted again: delivered.
    std::fs::remove_dir(&out).unwrap();
    std::fs::rename(&disk, &out).unwrap();
    g.wait_delivered(30);
    assert_eq!(std::fs::read(out.join("b.jpg")).unwrap(), b"second");
    // A new, empty disk: held until a technician adopts it.
    std::fs::rename(&out, &disk).unwrap();
    std::fs::create_dir(&out).unwrap();
    assert_eq!(c.stor("c.jpg", b"third").code, 226);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!out.join("c.jpg").exists());
    g.run(&["pipe", "set", "line1", "--adopt-destination"]).ok();
    g.wait_delivered(30);
    assert_eq!(std::fs::read(out.join("c.jpg")).unwrap(), b"third");
}

/// A gateway whose clock is three hours behind (no real-time clock, no NTP on the plant
/// LAN): S3 refuses its signatures (`RequestTimeTooSkewed`). The gateway signs with the
/// endpoint's time from its answer and delivers, and `status` says the clocks differ.
#[test]
fn a_gateway_with_a_wrong_clock_still_delivers_to_s3() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start_with_clock(dir.path(), "+3h");
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    let body = data(10_000, 3);
    assert_eq!(c.stor("skewed.jpg", &body).code, 226);
    g.wait_delivered(30);
    // The test's own S3 client has the machine's clock too: read s3s-fs's file.
    let stored = std::fs::read(s3.root.join(common::BUCKET).join("cell4/skewed.jpg")).unwrap();
    assert_eq!(stored, body);
    let st = g.status();
    let skew = st["pipes"][0]["clock_skew_secs"].as_i64().unwrap_or(0);
    assert!((3 * 3600 - 60..=3 * 3600 + 60).contains(&skew), "{st}");
    assert!(d.log_text().contains("clock is"), "{}", d.log_text());
}

#[test]
fn prometheus_metrics_count_sessions_uploads_and_backlog() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = g.serve(&["--metrics", &addr]);
    s3.stop();
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("m.bin", &data(1000, 1)).code, 226);
    let mut bad = Raw::connect(d.ftp());
    bad.cmd("USER cam1");
    assert_eq!(bad.cmd("PASS nope").code, 530);
    let scrape = || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let m = scrape();
    assert!(m.starts_with("HTTP/1.0 200 OK"), "{m}");
    for line in [
        "ftpgate_sessions 2",
        "ftpgate_uploads_total 1",
        "ftpgate_received_bytes_total 1000",
        "ftpgate_logins_total{result=\"ok\"} 1",
        "ftpgate_logins_total{result=\"failed\"} 1",
        "ftpgate_backlog_ops{pipe=\"cloud\"} 1",
        "ftpgate_sender_uploads_total{sender=\"cam1\"} 1",
        "ftpgate_sender_received_bytes_total{sender=\"cam1\"} 1000",
        "ftpgate_sender_silent{sender=\"cam1\"} 0",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }
    s3.resume();
    g.wait_delivered(30);
    let m = scrape();
    assert!(
        m.lines()
            .any(|l| l == "ftpgate_backlog_ops{pipe=\"cloud\"} 0"),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l == "ftpgate_delivered_ops_total{pipe=\"cloud\"} 1"),
        "{m}"
    );
    // Failed logins reach the Sender's activity with the next batch of events.
    assert!(
        m.lines()
            .any(|l| l == "ftpgate_sender_failed_logins_last_hour{sender=\"cam1\"} 1"),
        "{m}"
    );
}

#[test]
fn directory_pipes_touch_no_name_a_client_could_own() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let out = g.state().join("delivered");
    let mut c = Raw::login(d.ftp());
    // Names that look like the gateway's old temporary and probe files are a client's.
    let tmp_like = data(1000, 1);
    assert_eq!(c.stor(".x.jpg.ftpgate-tmp", &tmp_like).code, 226);
    assert_eq!(c.stor(".ftpgate-probe", b"mine").code, 226);
    g.wait_delivered(20);
    assert_eq!(c.stor("x.jpg", &data(2000, 2)).code, 226);
    // The longest legal name (255 bytes) and a name the destination can never hold (a
    // directory is in its place): the first is delivered, the second parked, and the
    // Pipe goes on behind both.
    let long = "n".repeat(255);
    assert_eq!(c.stor(&long, b"long").code, 226);
    std::fs::create_dir_all(out.join("taken/inner")).unwrap();
    assert_eq!(c.stor("taken", b"cannot land").code, 226);
    assert_eq!(c.stor("after.bin", b"still delivered").code, 226);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.join("after.bin").exists() {
        assert!(
            Instant::now() < deadline,
            "the Pipe stopped: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    g.run(&["pipe", "test", "line1"]).ok();
    assert_eq!(
        std::fs::read(out.join(".x.jpg.ftpgate-tmp")).unwrap(),
        tmp_like
    );
    assert_eq!(std::fs::read(out.join("x.jpg")).unwrap(), data(2000, 2));
    assert_eq!(std::fs::read(out.join(".ftpgate-probe")).unwrap(), b"mine");
    assert_eq!(std::fs::read(out.join(&long)).unwrap(), b"long");
    let list = g.run(&["spool", "list", "--all"]).ok().to_string();
    assert!(
        list.contains("taken") && list.to_lowercase().contains("directory"),
        "the op that cannot land is parked with its reason: {list}"
    );
    // The gateway's only names in the destination are its staging directory, empty, and
    // the marker that proves the right disk is mounted: both end in DEL.
    let staging = out.join(STAGING);
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| *n != STAGING && *n != MARKER)
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| !n.contains('\u{7f}') && !n.contains('\u{fffd}')),
        "nothing of the gateway's left behind: {names:?}"
    );
}

#[test]
fn a_directory_delivery_cut_short_by_a_crash_leaves_nothing_behind() {
    let g = Gate::provisioned();
    let out = g.state().join("delivered");
    // What a daemon killed in the middle of a delivery leaves: its temporary file.
    let staging = out.join(STAGING);
    std::fs::create_dir_all(&staging).unwrap();
    let leftover = staging.join("tmp-0badc0de-123456");
    std::fs::write(&leftover, data(5000, 3)).unwrap();
    let d = g.serve(&[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while leftover.exists() {
        assert!(
            Instant::now() < deadline,
            "the leftover was not swept: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.log_text()
            .contains("cleaned up 1 leftover(s) of interrupted deliveries"),
        "{}",
        d.log_text()
    );
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("after.bin", b"delivered").code, 226);
    g.wait_delivered(20);
    assert_eq!(std::fs::read(out.join("after.bin")).unwrap(), b"delivered");
}

/// Multipart uploads s3s-fs holds open (it keeps one `.upload-ID.json` per upload).
fn open_uploads(s3_root: &std::path::Path) -> usize {
    std::fs::read_dir(s3_root)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(".upload-") && n.ends_with(".json")
        })
        .count()
}

#[test]
fn a_multipart_upload_cut_by_an_outage_or_a_crash_is_not_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let mut d = g.serve(&[]);
    let body = data(60 << 20, 7);
    let mut c = Raw::login(d.ftp());
    // The destination goes away in the middle of a multipart upload: its abort fails too.
    s3.stop();
    assert_eq!(c.stor("outage.bin", &body).code, 226);
    s3.resume();
    let journal = g.state().join("multipart/cloud");
    let written_down = || {
        std::fs::read_dir(&journal).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_none() && !e.file_name().is_empty())
        })
    };
    // Cut once the upload is open at S3 and written down: cut between S3 opening it and
    // the gateway hearing back, no gateway can know of it (the lifecycle rule's case).
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_uploads(dir.path()) == 0 || !written_down() {
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    s3.stop();
    std::thread::sleep(Duration::from_secs(2));
    s3.resume();
    g.wait_delivered(120);
    // The upload the outage cut is aborted by the running daemon (within 10 s) ...
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_uploads(dir.path()) > 0 || written_down() {
        assert!(
            Instant::now() < deadline,
            "the upload the outage cut is still open: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // ... and the daemon is killed in the middle of another: the next one must clean up
    // after it.
    assert_eq!(c.stor("crash.bin", &body).code, 226);
    // Killed once the upload is open at S3 and written down (an upload opened in the
    // instant before it is written down is the lifecycle rule's, see docs/OPERATING.md).
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_uploads(dir.path()) == 0 || !written_down() {
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    d.kill9();
    d = g.serve(&[]);
    g.wait_delivered(120);
    assert_eq!(sha256(&s3.get("cell4/outage.bin").unwrap()), sha256(&body));
    assert_eq!(sha256(&s3.get("cell4/crash.bin").unwrap()), sha256(&body));
    let deadline = Instant::now() + Duration::from_secs(40);
    while open_uploads(dir.path()) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} multipart upload(s) left open: {}",
            open_uploads(dir.path()),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(d);
}
