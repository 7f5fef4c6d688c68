//! Power loss, simulated: the state directory, and the Pipe's destination directory in
//! it, live on a FUSE file system that keeps writes in memory until they are fsynced
//! (tests/powerloss/lazyfs.py, in the manner of LazyFS). Killing it loses whatever was not
//! fsynced, as a power cut would; a killed process alone loses nothing the kernel already
//! has. Devices upload under load while deliveries run, the power is cut twice, and after
//! each reboot every upload that got `226` is at the destination intact (a delivery
//! settled before the cut included), nothing else is, and the database opens.
//!
//! Needs /dev/fuse, root (to mount) and Python's `mfusepy` (scripts/test-all installs it
//! and sets FTPGATE_FUSE_PYTHON); skipped with a line saying why where they are missing,
//! unless FTPGATE_REQUIRE_FUSE=1 (the test command sets it where this user may mount it).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The bytes uploaded under `name`: a function of the name, so any delivered file can be
/// checked.
fn content(name: &str) -> Vec<u8> {
    let n: usize = name.bytes().map(|b| b as usize).sum();
    name.bytes()
        .cycle()
        .take(20_000 + n * 37 % 50_000)
        .collect()
}

fn skip(why: &str) -> bool {
    if std::env::var("FTPGATE_REQUIRE_FUSE").is_ok_and(|v| v == "1") {
        panic!("power-loss test required but cannot run: {why}");
    }
    eprintln!("SKIPPED power-loss test: {why}");
    true
}

fn python() -> String {
    std::env::var("FTPGATE_FUSE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn mounted(at: &Path) -> bool {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(at.to_str().unwrap()))
}

/// Mounts `backing` at `at` through the power-cut file system; says why it could not.
fn power_on(backing: &Path, at: &Path) -> Result<Child, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powerloss/lazyfs.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(backing)
        .arg(at)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start lazyfs: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !mounted(at) {
        if Instant::now() > deadline || child.try_wait().is_ok_and(|s| s.is_some()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "lazyfs could not mount {} (needs root)",
                at.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// Cuts the power: the file system loses what was not fsynced, the daemon dies with it.
fn power_cut(fs: &mut Child, daemon: Daemon, at: &Path) {
    let _ = fs.kill();
    let _ = fs.wait();
    daemon.kill9();
    let _ = Command::new("umount").arg("-l").arg(at).status();
}

#[test]
fn every_upload_acknowledged_before_a_power_cut_is_delivered_intact() {
    if !Path::new("/dev/fuse").exists() && skip("this machine has no /dev/fuse") {
        return;
    }
    let has_fuse = Command::new(python())
        .args(["-c", "import mfusepy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_fuse && skip("Python's mfusepy is not installed (scripts/test-all installs it)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("disk");
    let state = dir.path().join("state");
    // The destination is on the same power-cut file system: a delivery recorded as done
    // before the power cut must still be there, whole, after it.
    let out = state.join("delivered");
    for d in [&backing, &state] {
        std::fs::create_dir(d).unwrap();
    }
    let mut fs = match power_on(&backing, &state) {
        Ok(fs) => fs,
        Err(why) => {
            skip(&why);
            return;
        }
    };
    let g = Gate::mounted(dir, state.clone());
    g.provision(&out);

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..2 {
        let d = g.serve(&[]);
        let stop = Arc::new(AtomicBool::new(false));
        let devices: Vec<_> = (0..4)
            .map(|t| {
                let (acked, stop, addr) = (acked.clone(), stop.clone(), d.ftp());
                std::thread::spawn(move || {
                    let Ok(mut c) = std::panic::catch_unwind(|| Raw::login(addr)) else {
                        return;
                    };
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let name = format!("r{round}-t{t}-{i}.bin");
                        let body = content(&name);
                        // The power goes out under some of these: those are simply lost.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            c.stor(&name, &body)
                        }));
                        match r {
                            Ok(r) if r.code == 226 => acked.lock().unwrap().push(name),
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(4));
        power_cut(&mut fs, d, &state);
        stop.store(true, Ordering::Relaxed);
        for t in devices {
            let _ = t.join();
        }
        fs = power_on(&backing, &state).expect("mounting again after the power cut");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 8,
        "too few uploads to mean anything: {acked:?}"
    );

    // After the last reboot: the database opens, and everything acknowledged arrives.
    let d = g.serve(&[]);
    g.wait_delivered(120);
    // A delivery the power cut interrupted left its temporary file in the directory's
    // staging area (a name no client can produce); the restarted daemon sweeps it.
    let staging = out.join(STAGING);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            Instant::now() < deadline,
            "leftover temporary files were not swept: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut delivered: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if e.path() == staging || e.file_name() == MARKER {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        delivered.insert(name, std::fs::read(e.path()).unwrap());
    }
    for name in &acked {
        let got = delivered
            .get(name)
            .unwrap_or_else(|| panic!("{name} got 226 and was lost: {}", d.log_text()));
        assert!(got == &content(name), "{name} delivered damaged");
    }
    for (name, bytes) in &delivered {
        assert!(
            bytes == &content(name),
            "{name} was delivered but is not what was sent (a broken upload?)"
        );
    }
    eprintln!(
        "power-loss: {} uploads acknowledged over two power cuts, all delivered intact ({} files delivered)",
        acked.len(),
        delivered.len()
    );
    drop(d);
    let _ = fs.kill();
    let _ = fs.wait();
    drop(g);
}
