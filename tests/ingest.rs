//! Upload behaviour a plant engineer relies on: durability across kill -9, overwrite
//! policies, quotas, resuming broken uploads, login limits, session limits, shutdown.

mod common;

use ftpgate::store::View;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Gate, Raw, data};
/// The checksum text a `226` gives for these bytes.
fn crc_text(b: &[u8]) -> String {
    format!("CRC32C {:08x}", crc32c::crc32c(b))
}

#[test]
fn every_acknowledged_upload_survives_kill_9_and_no_broken_upload_is_queued() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&[]);
    let addr = d.ftp();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sizes = |name: &str| -> usize { 1000 + (name.len() * 7919 % 300_000) };
    let mut threads = Vec::new();
    for t in 0..4 {
        let acked = acked.clone();
        threads.push(std::thread::spawn(move || {
            let mut c = Raw::login(addr);
            for i in 0.. {
                let name = format!("t{t}-f{i}.bin");
                let body = data(1000 + (name.len() * 7919 % 300_000), (t * 31 + i) as u8);
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    c.stor(&name, &body).code == 226
                }));
                match ok {
                    Ok(true) => acked.lock().unwrap().push(name),
                    _ => return,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    d.kill9();
    for t in threads {
        let _ = t.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "uploads were acknowledged before the kill: {}",
        acked.len()
    );

    // Restart: recovery runs, then look at what the store says.
    let d = g.serve(&[]);
    assert!(
        d.log_text().contains("not closed cleanly"),
        "the start-up says why it takes longer: {}",
        d.log_text()
    );
    let mut c = Raw::login(d.ftp());
    for name in &acked {
        let r = c.cmd(&format!("SIZE {name}"));
        assert_eq!(r.text, format!("213 {}", sizes(name)), "{name} survived");
    }
    drop(c);
    assert_eq!(d.stop(), 0);
    let store = ftpgate::store::Store::open(&g.state().join("ftpgate.redb")).unwrap();
    let r = store.read().unwrap();
    let ready: HashMap<String, std::path::PathBuf> = common::ready_bodies(g.state())
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    let mut queued = HashMap::new();
    for op in r.ops_page(None, 0, usize::MAX).unwrap() {
        if let ftpgate::store::outbox::Action::Put {
            path,
            body,
            size,
            sum,
            ..
        } = op.action
        {
            let bytes = std::fs::read(&ready[&body]).expect("every queued put has its body");
            assert_eq!(bytes.len() as u64, size, "{path}: the whole body");
            assert_eq!(
                sum,
                ftpgate::checksum::Checksum::Crc32c(crc32c::crc32c(&bytes)),
                "{path}: the body's checksum"
            );
            assert_eq!(
                size as usize,
                sizes(path.trim_start_matches('/')),
                "{path}: no partial upload is queued"
            );
            queued.insert(path, body);
        }
    }
    for name in &acked {
        assert!(
            queued.contains_key(&format!("/{name}")),
            "{name} is queued for delivery"
        );
    }
    assert!(
        std::fs::read_dir(g.state().join("spool/tmp"))
            .unwrap()
            .count()
            <= 4,
        "only recorded partials remain in tmp/"
    );
}

#[test]
fn overwrite_policies_through_ftp() {
    let g = Gate::provisioned();
    g.run(&["pipe", "set", "line1", "--overwrite", "keep-both"])
        .ok();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("img.jpg", b"one").code, 226);
    let r = c.stor("img.jpg", b"two!");
    assert!(r.text.contains("Stored /img-2.jpg"), "{}", r.text);
    assert_eq!(c.cmd("SIZE img.jpg").text, "213 3");
    assert_eq!(c.cmd("SIZE img-2.jpg").text, "213 4");

    g.run(&["pipe", "set", "line1", "--overwrite", "refuse"])
        .ok();
    let mut c = Raw::login(d.ftp());
    let _data = c.epsv();
    let r = c.cmd("STOR img.jpg");
    assert_eq!(r.code, 550, "refused before any data: {}", r.text);
    assert!(r.text.contains("refuses overwrites"));

    g.run(&["pipe", "set", "line1", "--overwrite", "replace"])
        .ok();
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("img.jpg", b"three").code, 226);
    assert_eq!(c.cmd("SIZE img.jpg").text, "213 5");
}

#[test]
fn a_full_spool_answers_452_and_keeps_what_it_accepted() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&["--spool-max-bytes", "1M"]);
    let mut c = Raw::login(d.ftp());
    let first = data(600_000, 1);
    assert_eq!(c.stor("first.bin", &first).code, 226);
    // The second does not fit: refused while receiving, and not stored.
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR second.bin").code, 150);
    let _ = dconn.write_all(&data(600_000, 2));
    drop(dconn);
    let r = c.read();
    assert_eq!(r.code, 452, "{}", r.text);
    assert_eq!(c.cmd("SIZE second.bin").code, 550, "nothing of it is kept");
    assert_eq!(
        c.cmd("SIZE first.bin").text,
        "213 600000",
        "what was accepted is kept"
    );
    assert_eq!(
        c.stor("third.bin", &data(500_000, 3)).code,
        452,
        "600k + 500k do not fit in 1M"
    );
    assert_eq!(
        c.stor("small.bin", &data(100_000, 4)).code,
        226,
        "what still fits is accepted"
    );
}

#[test]
fn too_little_free_disk_refuses_before_any_data() {
    let g = Gate::provisioned();
    let d = g.serve(&["--spool-min-free", "1000000T"]);
    let mut c = Raw::login(d.ftp());
    let _data = c.epsv();
    let r = c.cmd("STOR x.bin");
    assert_eq!(r.code, 452, "{}", r.text);
    assert!(r.text.contains("disk is almost full"), "{}", r.text);
    assert_eq!(c.cmd("NOOP").code, 200, "the session goes on");
}

#[test]
fn broken_uploads_resume_with_rest_and_appe_and_are_never_queued() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    let whole = data(400_000, 9);

    // ABOR in the middle: 426 then 226, the part is kept but not listed as a file.
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR cam.bin").code, 150);
    dconn.write_all(&whole[..150_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.send_bytes(b"\xff\xf4\xff\xf2ABOR\r\n");
    let r = c.read();
    assert_eq!(r.code, 426, "{}", r.text);
    assert_eq!(c.read().code, 226);
    drop(dconn);
    assert_eq!(
        c.cmd("SIZE cam.bin").text,
        "213 150000",
        "SIZE reports what a resuming client needs"
    );
    let (_, names) = c.list("NLST");
    assert_eq!(names, "", "a partial is not a file");

    // REST + STOR continues it.
    assert_eq!(c.cmd("REST 150000").code, 350);
    let r = c.stor("cam.bin", &whole[150_000..]);
    assert_eq!(r.code, 226, "{}", r.text);
    assert!(
        r.text.contains(&crc_text(&whole)),
        "the checksum covers the whole file: {}",
        r.text
    );

    // A data connection that breaks: 426; APPE continues.
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR plc.csv").code, 150);
    dconn.write_all(&whole[..100_000]).unwrap();
    let s2 = socket2::SockRef::from(&dconn);
    s2.set_linger(Some(Duration::ZERO)).unwrap();
    drop(dconn); // RST
    let r = c.read();
    assert!(r.code == 426 || r.code == 226, "{}", r.text);
    if r.code == 426 {
        let r = c.stor_appe("plc.csv", &whole[100_000..]);
        assert_eq!(r.code, 226, "{}", r.text);
        assert!(r.text.contains(&crc_text(&whole)), "{}", r.text);
    }
    assert_eq!(c.cmd("REST 999999").code, 350);
    let _dc = c.epsv();
    assert_eq!(
        c.cmd("STOR nothing.bin").code,
        554,
        "cannot resume what does not exist"
    );
}

trait Appe {
    fn stor_appe(&mut self, name: &str, data: &[u8]) -> common::Reply;
}

impl Appe for Raw {
    fn stor_appe(&mut self, name: &str, data: &[u8]) -> common::Reply {
        let mut d = self.epsv();
        let r = self.cmd(&format!("APPE {name}"));
        assert_eq!(r.code, 150, "{}", r.text);
        d.write_all(data).unwrap();
        drop(d);
        self.read()
    }
}

#[test]
fn three_failed_logins_close_the_connection_and_unknown_names_look_the_same() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut c = Raw::connect(d.ftp());
    assert_eq!(c.cmd("USER nobody").text, "331 Password required.");
    let unknown = c.cmd("PASS x");
    assert_eq!(c.cmd("USER cam1").text, "331 Password required.");
    let wrong = c.cmd("PASS wrong");
    assert_eq!(
        unknown.text, wrong.text,
        "an unknown name is indistinguishable"
    );
    assert_eq!(unknown.code, 530);
    c.cmd("USER cam1");
    let last = c.cmd("PASS wrong-again");
    assert_eq!(last.code, 530);
    let mut buf = [0u8; 16];
    use std::io::Read;
    assert_eq!(
        c.stream.read(&mut buf).unwrap_or(0),
        0,
        "closed after three failures"
    );
    let log = d.log_text();
    assert!(
        log.contains("reason: unknown sender") && log.contains("reason: wrong password"),
        "{log}"
    );
    assert!(!log.contains("wrong-again"), "passwords are never logged");
}

#[test]
fn session_limits_and_idle_timeout() {
    let g = Gate::provisioned();
    let d = g.serve(&["--max-sessions-per-ip", "2", "--idle-timeout", "1"]);
    let _a = Raw::connect(d.ftp());
    let _b = Raw::connect(d.ftp());
    let mut third = std::net::TcpStream::connect(d.ftp()).unwrap();
    let mut s = String::new();
    use std::io::Read;
    third.read_to_string(&mut s).unwrap();
    assert!(
        s.starts_with("421 Too many sessions from your address"),
        "{s}"
    );
    drop((_a, _b));
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Raw::login(d.ftp());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.read().code, 421, "idle timeout");
}

#[test]
fn sigterm_lets_a_running_upload_finish() {
    let g = Gate::provisioned();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    let mut idle = Raw::login(d.ftp());
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR during.bin").code, 150);
    dconn.write_all(&data(10_000, 1)).unwrap();
    let pid = d.pid();
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(idle.read().code, 421, "idle sessions are told and closed");
    dconn.write_all(&data(10_000, 2)).unwrap();
    drop(dconn);
    let r = c.read();
    assert_eq!(r.code, 226, "{}", r.text);
    assert!(
        std::net::TcpStream::connect(d.ftp()).is_err() || d.log_text().contains("received"),
        "no new sessions"
    );
}

#[test]
fn refusals_leak_no_quota_and_a_failed_resume_takes_its_partial_with_it() {
    let g = Gate::provisioned();
    g.hold_deliveries();
    let d = g.serve(&["--spool-max-bytes", "1M", "--partial-max-bytes", "1M"]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("first.bin", &data(600_000, 1)).code, 226);
    // Uploads refused half-way for the quota: the chunk that did not fit is not counted.
    for i in 0..6 {
        let mut dconn = c.epsv();
        assert_eq!(c.cmd(&format!("STOR no{i}.bin")).code, 150);
        let _ = dconn.write_all(&data(600_000, 2));
        drop(dconn);
        assert_eq!(c.read().code, 452);
    }
    let spool_bytes = |g: &Gate| g.status()["spool_bytes"].as_u64().unwrap();
    assert_eq!(spool_bytes(&g), 600_000, "the spool holds first.bin only");
    assert_eq!(c.stor("fits.bin", &data(400_000, 3)).code, 226);
    assert_eq!(c.cmd("DELE fits.bin").code, 250);

    // A broken upload is kept; resuming it runs into the quota: the body goes, and its
    // record with it (nothing advertised that is not there).
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR cam.bin").code, 150);
    dconn.write_all(&data(200_000, 4)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.send_bytes(b"\xff\xf4\xff\xf2ABOR\r\n");
    assert_eq!(c.read().code, 426);
    assert_eq!(c.read().code, 226);
    drop(dconn);
    assert_eq!(c.cmd("SIZE cam.bin").text, "213 200000");
    assert_eq!(c.cmd("REST 200000").code, 350);
    let mut dconn = c.epsv();
    assert_eq!(c.cmd("STOR cam.bin").code, 150);
    let _ = dconn.write_all(&data(600_000, 5));
    drop(dconn);
    assert_eq!(c.read().code, 452);
    assert_eq!(
        c.cmd("SIZE cam.bin").code,
        550,
        "no partial is advertised once its body is gone"
    );
    assert_eq!(spool_bytes(&g), 600_000);
    assert_eq!(c.stor("cam.bin", &data(300_000, 6)).code, 226);
}

/// Sends `len` bytes of an upload to `name`, then breaks the data connection (RST).
fn break_upload(c: &mut Raw, name: &str, len: usize) {
    let mut dconn = c.epsv();
    assert_eq!(c.cmd(&format!("STOR {name}")).code, 150);
    dconn.write_all(&data(len, 7)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    socket2::SockRef::from(&dconn)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(dconn);
    assert_eq!(c.read().code, 426);
}

#[test]
fn a_flaky_device_cannot_fill_the_spool_with_broken_uploads() {
    let g = Gate::provisioned();
    g.run_stdin(
        &["sender", "add", "cam2", "--password-stdin"],
        "cam2-secret",
    )
    .ok();
    g.run(&["sender", "grant", "cam2", "line1"]).ok();
    g.hold_deliveries();
    // 2 MiB for the spool, 1 MiB of it for partials, 256 KiB for one sender's.
    let d = g.serve(&["--spool-max-bytes", "2M", "--partial-max-bytes", "1M"]);
    let mut flaky = Raw::login(d.ftp());
    for i in 0..8 {
        break_upload(&mut flaky, &format!("clip{i}.mp4"), 200_000);
    }
    // Only its newest broken upload is still kept (two would be over its 256 KiB).
    assert_eq!(flaky.cmd("SIZE clip7.mp4").text, "213 200000");
    assert_eq!(flaky.cmd("SIZE clip0.mp4").code, 550);
    assert_eq!(
        g.status()["spool_bytes"].as_u64().unwrap(),
        200_000,
        "the older ones are gone from the spool"
    );
    // Another device uploads what fits beside it; when it needs the room, the partial
    // makes way for a complete upload.
    let mut other = Raw::connect(d.ftp());
    assert_eq!(other.cmd("USER cam2").code, 331);
    assert_eq!(other.cmd("PASS cam2-secret").code, 230);
    assert_eq!(other.stor("a.bin", &data(1_700_000, 1)).code, 226);
    let r = other.stor("b.bin", &data(300_000, 2));
    assert_eq!(r.code, 226, "{}", r.text);
    assert_eq!(
        flaky.cmd("SIZE clip7.mp4").code,
        550,
        "expired to make room"
    );
    // Full of work waiting for delivery: the refusal says so.
    let r = other.stor("c.bin", &data(300_000, 3));
    assert_eq!(r.code, 452);
    assert!(r.text.contains("waiting for delivery"), "{}", r.text);
}

/// The threads of the daemon's process, by name (`/proc/PID/task/*/comm`), but for the
/// delivery threads: those are kept, at most as many as the Pipes' `parallel`.
fn threads(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .filter(|n| n != "ftpgate-deliver")
        .collect();
    names.sort();
    names
}

#[test]
fn a_burst_of_sessions_leaves_no_threads_behind_once_idle() {
    // Each thread holds its stack and its allocator caches: a gateway that kept the
    // threads of its busiest minute would never return to its idle memory.
    let g = Gate::provisioned();
    let d = g.serve(&["--max-sessions-per-ip", "32"]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("warm.bin", b"warm").code, 226);
    drop(c);
    std::thread::sleep(Duration::from_secs(12));
    let idle = threads(d.pid());
    let addr = d.ftp();
    let burst: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Raw::login(addr);
                for n in 0..5 {
                    assert_eq!(
                        c.stor(&format!("s{i}-{n}.bin"), &data(64 << 10, i as u8))
                            .code,
                        226
                    );
                }
            })
        })
        .collect();
    for t in burst {
        t.join().unwrap();
    }
    let busy = threads(d.pid());
    assert!(
        busy.len() > idle.len(),
        "the burst ran on no threads of its own: {busy:?}"
    );
    // Transfer threads are kept 10 s for the next upload, the blocking pool's a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut now = threads(d.pid());
    while now.len() > idle.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        now = threads(d.pid());
    }
    assert!(
        now.len() <= idle.len(),
        "threads idle before the burst: {idle:?}\nduring it: {} \n30 s after it: {now:?}",
        busy.len()
    );
}
