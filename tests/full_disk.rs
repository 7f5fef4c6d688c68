//! A full disk is a state, not a wedge: while the state directory's filesystem is full,
//! uploads get `452` with a sentence and admin commands say what is wrong; once space
//! returns the daemon recovers by itself, and nothing acknowledged is lost. The state
//! directory is a small tmpfs of the test's own (the test needs root to mount it).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

/// STOR that may be refused before (`452` instead of `150`) or during the transfer.
fn try_stor(c: &mut Raw, name: &str, body: &[u8]) -> Reply {
    let mut d = c.epsv();
    let r = c.cmd(&format!("STOR {name}"));
    if r.code != 150 {
        return r;
    }
    let _ = d.write_all(body);
    drop(d);
    c.read()
}

/// Writes a file into `dir` until the filesystem has no room left.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
    path
}

/// A gateway on a `mib` MiB disk with a Pipe into a directory beside it (not on it).
fn small_gateway(mib: u32) -> Option<(Gate, std::path::PathBuf)> {
    let g = Gate::on_small_disk(mib)?;
    let out = g.dir.path().join("delivered");
    g.provision(&out);
    Some((g, out))
}

#[test]
fn a_full_disk_refuses_uploads_clearly_and_the_daemon_recovers_when_space_returns() {
    let Some((g, out)) = small_gateway(48) else {
        return;
    };
    let d = g.serve(&["--spool-min-free", "0"]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("before.bin", &data(100_000, 1)).code, 226);
    g.wait_delivered(20);

    // Something else on the box fills the disk.
    let ballast = fill(g.state());
    let mut refusals = Vec::new();
    for i in 0..5 {
        let r = try_stor(&mut c, &format!("full-{i}.bin"), &data(300_000, 2));
        refusals.push(r);
    }
    for r in &refusals {
        assert_eq!(r.code, 452, "{}", r.text);
        assert!(r.text.to_lowercase().contains("disk"), "{}", r.text);
    }
    // Empty files need no data blocks: they are accepted until the database itself can
    // no longer grow, and then refused the same way (redb fails under the full disk).
    let mut empty = 0;
    let last = loop {
        let r = try_stor(&mut c, &format!("empty-{empty}.bin"), b"");
        if r.code != 226 || empty == 5000 {
            break r;
        }
        empty += 1;
    };
    assert!(
        last.code == 452 && last.text.contains("disk"),
        "after {empty} empty files: {} {}\n{}",
        last.code,
        last.text,
        d.log_text()
    );
    // Status says what is wrong; an admin command that cannot write says why.
    let status = g.run(&["status"]).ok().to_string();
    assert!(status.contains("disk is full"), "{status}");
    let add = g.run_stdin(
        &["sender", "add", "cam2", "--password-stdin"],
        "pw-of-cam-2",
    );
    assert!(
        add.code == 0 || add.stderr.contains("disk"),
        "{}",
        add.stderr
    );
    std::thread::sleep(Duration::from_secs(3));

    // Space returns: within seconds, uploads are accepted again and delivered.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = Raw::login(d.ftp());
    loop {
        let r = try_stor(&mut c, "after.bin", &data(300_000, 3));
        if r.code == 226 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {} {}",
            r.code,
            r.text
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let add = g.run_stdin(
        &["sender", "add", "cam3", "--password-stdin"],
        "pw-of-cam-3",
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    g.wait_delivered(30);
    assert_eq!(
        std::fs::read(out.join("before.bin")).unwrap(),
        data(100_000, 1)
    );
    assert_eq!(
        std::fs::read(out.join("after.bin")).unwrap(),
        data(300_000, 3)
    );
    for i in 0..5 {
        assert!(
            !out.join(format!("full-{i}.bin")).exists(),
            "a refused upload is never delivered"
        );
    }
    for i in 0..empty {
        assert!(
            out.join(format!("empty-{i}.bin")).exists(),
            "acknowledged empty-{i}.bin delivered"
        );
    }
    // No flood: repeated identical errors are logged once with a count.
    let log = d.log_text();
    assert!(
        log.lines().count() < 200,
        "{} log lines:\n{log}",
        log.lines().count()
    );
}

#[test]
fn deliveries_are_recorded_and_their_space_freed_while_the_disk_is_full() {
    // Uploads wait for a destination that is away; meanwhile something else fills the
    // disk. When the destination returns, the gateway must still be able to record the
    // deliveries (which frees their space), however full the disk is.
    let Some((g, out)) = small_gateway(64) else {
        return;
    };
    let d = g.serve(&["--spool-min-free", "0"]);
    // The destination's disk is taken away, and comes back below.
    let away = out.with_extension("away");
    std::fs::rename(&out, &away).unwrap();
    let mut c = Raw::login(d.ftp());
    for i in 0..20 {
        assert_eq!(c.stor(&format!("q{i}.bin"), &data(1_000_000, i)).code, 226);
    }
    let ballast = fill(g.state());
    std::fs::rename(&away, &out).unwrap();
    g.wait_delivered(60);
    for i in 0..20 {
        assert_eq!(
            std::fs::read(out.join(format!("q{i}.bin"))).unwrap(),
            data(1_000_000, i)
        );
    }
    // Their bodies are gone from the spool: with the ballast still there, an upload fits
    // again once the reserve is back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = try_stor(&mut c, "again.bin", &data(100_000, 99));
        if r.code == 226 {
            break;
        }
        assert_eq!(r.code, 452, "{}", r.text);
        assert!(Instant::now() < deadline, "{}\n{}", r.text, d.log_text());
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(ballast);
}

#[test]
fn spool_min_free_holds_while_many_sessions_upload_at_once() {
    let Some((g, out)) = small_gateway(96) else {
        return;
    };
    let d = g.serve(&["--spool-min-free", "48M"]);
    std::fs::rename(&out, out.with_extension("away")).unwrap();
    let addr = d.ftp();
    // Eight sessions start their uploads, then all send at once.
    let together = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let together = together.clone();
            std::thread::spawn(move || {
                let mut c = Raw::login(addr);
                let mut d = c.epsv();
                let r = c.cmd(&format!("STOR big{i}.bin"));
                together.wait();
                if r.code != 150 {
                    return r.code;
                }
                let _ = d.write_all(&data(12 << 20, i as u8));
                drop(d);
                c.read().code
            })
        })
        .collect();
    let codes: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(codes.iter().all(|c| *c == 226 || *c == 452), "{codes:?}");
    assert!(codes.contains(&452), "some did not fit: {codes:?}");
    let st = free_bytes(g.state());
    assert!(
        st >= 47 << 20,
        "{} MiB free, 48 MiB to keep: {codes:?}",
        st >> 20
    );
}
