//! End-to-end integrity: a body damaged on the gateway's disk after its `226` is caught
//! before any destination keeps it (a small S3 PUT, a multipart upload, a directory), and
//! the op is parked with the reason; intact uploads around it are delivered.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Gate, Raw, S3_SECRET, S3Server, data};

/// Flips one byte in the middle of the spool body of `size` bytes (the bodies' names are
/// random; the test's sizes are distinct).
fn damage_body_of_size(state: &Path, size: u64) {
    let body = common::ready_bodies(state)
        .into_iter()
        .find(|p| p.metadata().unwrap().len() == size)
        .unwrap_or_else(|| panic!("no spool body of {size} bytes in spool/ready"));
    let at = (size / 2 + 1) as usize;
    let flipped = std::fs::read(&body).unwrap()[at] ^ 0x20;
    // In place, as a bad sector or a bit flip would: same size, same name.
    let mut f = std::fs::OpenOptions::new().write(true).open(&body).unwrap();
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&[flipped]).unwrap();
    f.sync_all().unwrap();
}

/// The ops `spool list --json` shows parked, as (path, reason).
fn parked(g: &Gate) -> Vec<(String, String)> {
    let ops: serde_json::Value =
        serde_json::from_str(g.run(&["spool", "list", "--json"]).ok()).unwrap();
    ops.as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            let reason = o["parked"].as_str()?;
            Some((o["path"].as_str()?.to_string(), reason.to_string()))
        })
        .collect()
}

/// Waits until exactly `n` ops are parked and nothing else is queued.
fn wait_parked(g: &Gate, n: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let ops: serde_json::Value =
            serde_json::from_str(g.run(&["spool", "list", "--json"]).ok()).unwrap();
        let p = parked(g);
        if p.len() == n && ops.as_array().unwrap().len() == n {
            return p;
        }
        assert!(Instant::now() < deadline, "not parked: {ops}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_body_damaged_in_the_spool_never_reaches_s3() {
    let dir = tempfile::tempdir().unwrap();
    let mut s3 = S3Server::start(dir.path());
    let g = Gate::with_s3(&s3, S3_SECRET);
    let d = g.serve(&[]);
    s3.stop();
    let (small, large, intact) = (data(40_000, 1), data(20 << 20, 2), data(40_001, 3));
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("small.jpg", &small).code, 226);
    assert_eq!(c.stor("large.mp4", &large).code, 226);
    assert_eq!(c.stor("intact.jpg", &intact).code, 226);
    damage_body_of_size(g.state(), small.len() as u64);
    damage_body_of_size(g.state(), large.len() as u64);
    s3.resume();
    let mut p = wait_parked(&g, 2);
    p.sort();
    assert_eq!(p[0].0, "/large.mp4");
    assert_eq!(p[1].0, "/small.jpg");
    for (path, reason) in &p {
        assert!(
            reason.contains("no longer matches its checksum") && reason.contains("CRC32C"),
            "{path}: {reason}"
        );
    }
    assert_eq!(s3.get("cell4/intact.jpg").unwrap(), intact);
    assert!(
        s3.get("cell4/small.jpg").is_none(),
        "damaged: not delivered"
    );
    assert!(
        s3.get("cell4/large.mp4").is_none(),
        "damaged: not completed"
    );
    let open = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload-"))
        .count();
    assert_eq!(open, 0, "the damaged multipart upload is aborted");
    assert!(
        g.status()["pipes"][0]["parked_reason"]
            .as_str()
            .unwrap()
            .contains("disk corruption"),
        "{}",
        g.status()
    );
}

#[test]
fn a_body_damaged_in_the_spool_never_reaches_a_directory() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&[]);
    let (damaged, intact) = (data(300_000, 4), data(300_001, 5));
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("damaged.bin", &damaged).code, 226);
    assert_eq!(c.stor("intact.bin", &intact).code, 226);
    damage_body_of_size(g.state(), damaged.len() as u64);
    let out = g.state().join("delivered");
    g.resume_deliveries();
    let p = wait_parked(&g, 1);
    assert_eq!(p[0].0, "/damaged.bin");
    assert!(p[0].1.contains("disk corruption"), "{}", p[0].1);
    assert_eq!(std::fs::read(out.join("intact.bin")).unwrap(), intact);
    assert!(!out.join("damaged.bin").exists(), "damaged: not placed");
    let staged = std::fs::read_dir(out.join(common::STAGING))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(staged, 0, "the damaged copy is removed from staging");
}
