//! The outbox under the conditions of a long outage: renames over files while the
//! destination is down, several Pipes of which one is offline, removed Pipes, and a
//! database left by the previous schema.

mod common;

use std::time::{Duration, Instant};

use common::{Gate, PW, Raw, S3_SECRET, S3Server, data, sha256};

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
    drop(sha256(&body));
}
