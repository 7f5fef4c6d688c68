//! Hooks against a real local HTTP receiver (`tests/fixtures/hook_receiver.py`) and a
//! real program: signatures verify, every event arrives at least once and in order
//! through an outage and a restart, a hanging receiver holds up no upload, and the
//! pending cap drops and counts.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// A receiver on a free port; `set` changes how it answers (`ok`, `fail`, `hang`).
struct Receiver {
    _process: Helper,
    url: String,
    out: std::path::PathBuf,
    mode: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &std::path::Path, name: &str) -> Receiver {
        let port = free_port();
        let out = dir.join(format!("{name}.jsonl"));
        let mode = dir.join(format!("{name}.mode"));
        std::fs::write(&mode, "ok").unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/hook_receiver.py"
        );
        let process = Helper(
            std::process::Command::new("python3")
                .arg(script)
                .arg(port.to_string())
                .arg(&out)
                .arg(&mode)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Receiver {
            _process: process,
            url: format!("http://127.0.0.1:{port}/ftpgate"),
            out,
            mode,
        }
    }

    fn set(&self, mode: &str) {
        std::fs::write(&self.mode, mode).unwrap();
    }

    /// Every request taken so far: (headers, body).
    fn taken(&self) -> Vec<(Value, Value)> {
        self.raw()
            .into_iter()
            .map(|(h, raw)| (h, serde_json::from_str(&raw).unwrap()))
            .collect()
    }

    /// Every request taken so far: (headers, the body exactly as sent).
    fn raw(&self) -> Vec<(Value, String)> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["headers"].clone(),
                    v["body"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {secs}s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hooks(g: &Gate) -> Value {
    serde_json::from_str(g.run(&["hook", "list", "--json"]).ok()).unwrap()
}

/// What a receiver does with the headers (the snippet in docs/EVENTS.md, in Rust).
fn verify(secret: &str, headers: &Value, body: &str) -> bool {
    let header = |name: &str| {
        headers
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{body}", header("X-Ftpgate-Timestamp")).as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    header("X-Ftpgate-Signature") == format!("sha256={want}")
}

#[test]
fn a_webhook_gets_every_event_signed_and_in_order_through_an_outage_and_a_restart() {
    let g = Gate::provisioned();
    let rx = Receiver::start(g.state(), "rx");
    let secret = "whsec-test-0123456789";
    g.run_stdin(
        &[
            "hook",
            "add",
            "alarm",
            "--url",
            &rx.url,
            "--event",
            "upload.received",
            "--secret-stdin",
        ],
        secret,
    )
    .ok();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    for i in 1..=3 {
        assert_eq!(c.stor(&format!("a{i}.jpg"), &data(1000 + i, 1)).code, 226);
    }
    wait_for(10, "three events taken", || rx.taken().len() >= 3);
    for (headers, raw) in rx.raw() {
        let body: Value = serde_json::from_str(&raw).unwrap();
        assert!(verify(secret, &headers, &raw), "signature of {raw}");
        assert!(!verify("another-secret", &headers, &raw));
        assert_eq!(body["kind"], "upload.received");
        let id_header = headers
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("X-Ftpgate-Event-Id"))
            .unwrap()
            .1
            .clone();
        assert_eq!(id_header, body["id"].to_string().as_str());
    }

    // The receiver fails; uploads go on; the gateway restarts in between.
    rx.set("fail");
    for i in 4..=6 {
        assert_eq!(c.stor(&format!("a{i}.jpg"), &data(1000 + i, 1)).code, 226);
    }
    std::thread::sleep(Duration::from_secs(2));
    drop(c);
    assert_eq!(d.stop(), 0);
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    for i in 7..=8 {
        assert_eq!(c.stor(&format!("a{i}.jpg"), &data(1000 + i, 1)).code, 226);
    }
    let failing = hooks(&g);
    assert!(failing[0]["failures"].as_u64() > Some(0), "{failing}");
    assert!(
        failing[0]["last_error"].as_str().unwrap().contains("500"),
        "{failing}"
    );
    rx.set("ok");
    wait_for(60, "all eight taken", || {
        let mut paths: Vec<String> = rx
            .taken()
            .iter()
            .map(|(_, b)| b["path"].as_str().unwrap().to_string())
            .collect();
        paths.dedup();
        paths.len() >= 8
    });
    // At least once, in order: with repeats dropped, the paths in upload order.
    let mut seen: Vec<u64> = Vec::new();
    let mut paths = Vec::new();
    for (_, b) in rx.taken() {
        let id = b["id"].as_u64().unwrap();
        if !seen.contains(&id) {
            assert!(
                seen.last().is_none_or(|l| *l < id),
                "in order: {seen:?} then {id}"
            );
            seen.push(id);
            paths.push(b["path"].as_str().unwrap().to_string());
        }
    }
    let want: Vec<String> = (1..=8).map(|i| format!("/a{i}.jpg")).collect();
    assert_eq!(paths, want);
    let ok = hooks(&g);
    assert_eq!(ok[0]["dropped"], 0, "{ok}");
    assert_eq!(ok[0]["pending"], 0, "{ok}");
    assert_eq!(ok[0]["secret_set"], true);
    let shown = format!(
        "{}{}{}",
        g.run(&["hook", "list"]).ok(),
        g.run(&["hook", "list", "--json"]).ok(),
        g.run(&["export"]).ok()
    );
    assert!(!shown.contains(secret), "the secret is never shown");
    assert!(
        g.run(&["hook", "test", "alarm"]).ok().contains("taken"),
        "hook test"
    );
    assert!(rx.taken().iter().any(|(_, b)| b["kind"] == "hook.test"));
}

#[test]
fn a_hanging_receiver_holds_up_no_upload_and_the_cap_drops_and_counts() {
    let g = Gate::provisioned();
    let hang = Receiver::start(g.state(), "hang");
    hang.set("hang");
    let down = Receiver::start(g.state(), "down");
    down.set("fail");
    g.run(&["hook", "add", "hangs", "--url", &hang.url]).ok();
    g.run(&[
        "hook",
        "add",
        "capped",
        "--url",
        &down.url,
        "--event",
        "upload.received",
        "--max-pending",
        "5",
    ])
    .ok();
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    for i in 0..20 {
        assert_eq!(c.stor(&format!("f{i}.bin"), &data(4096, 2)).code, 226);
    }
    g.wait_delivered(20);
    wait_for(30, "the capped hook drops the oldest", || {
        let h = hooks(&g);
        let capped = h
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == "capped")
            .unwrap();
        capped["dropped"] == 15 && capped["pending"] == 5
    });
    // The five newest arrive once the receiver is back.
    down.set("ok");
    wait_for(60, "the five kept", || down.taken().len() >= 5);
    let paths: Vec<String> = down
        .taken()
        .iter()
        .map(|(_, b)| b["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        &paths[..5],
        ["/f15.bin", "/f16.bin", "/f17.bin", "/f18.bin", "/f19.bin"]
    );
}

#[test]
fn a_command_hook_gets_the_event_on_stdin_and_a_failing_one_says_why() {
    let g = Gate::provisioned();
    let out = g.state().join("events.jsonl");
    let script = g.state().join("on-event.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s ' \"$FTPGATE_EVENT\" >> {0}\ncat >> {0}\necho >> {0}\n",
            out.display()
        ),
    )
    .unwrap();
    let failing = g.state().join("fails.sh");
    std::fs::write(&failing, "#!/bin/sh\nexit 3\n").unwrap();
    for s in [&script, &failing] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    g.run(&[
        "hook",
        "add",
        "local",
        "--command",
        script.to_str().unwrap(),
    ])
    .ok();
    g.run(&[
        "hook",
        "add",
        "broken",
        "--command",
        failing.to_str().unwrap(),
    ])
    .ok();
    g.run(&["hook", "add", "x", "--command", "relative.sh"])
        .fails(2, "absolute path");
    g.run(&["hook", "add", "x", "--url", "ftp://example.com/"])
        .fails(2, "http:// or https://");
    g.run(&["hook", "add", "x"])
        .fails(2, "exactly one of --url");
    let d = g.serve(&[]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("cmd.jpg", &data(500, 3)).code, 226);
    wait_for(10, "the program ran", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("\"path\":\"/cmd.jpg\""))
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("upload.received {"), "{text}");
    g.run(&["hook", "test", "broken"])
        .fails(1, "exited with exit status: 3");
    g.run(&["hook", "remove", "broken"]).ok();
    g.run(&["hook", "remove", "broken"])
        .fails(2, "no hook \"broken\"");
    drop(d);
}

/// `export` carries URL hooks (their secret only with `--include-secrets`), never
/// command hooks; `apply` adds, changes and removes URL hooks and leaves the box's
/// command hooks alone.
#[test]
fn export_and_apply_carry_url_hooks_and_their_secrets_only_when_asked() {
    let g = Gate::provisioned();
    g.run_stdin(
        &[
            "hook",
            "add",
            "ops",
            "--url",
            "https://alerts.example.com/in",
            "--event",
            "pipe.offline",
            "--secret-stdin",
        ],
        "fleet-hook-secret",
    )
    .ok();
    g.run(&["hook", "add", "siren", "--command", "/usr/local/bin/siren"])
        .ok();
    let plain = g.run(&["export"]).ok().to_string();
    assert!(
        plain.contains("[[hook]]") && plain.contains("https://alerts.example.com/in"),
        "{plain}"
    );
    assert!(plain.contains("pipe.offline"), "{plain}");
    assert!(!plain.contains("fleet-hook-secret"), "{plain}");
    assert!(
        !plain.contains("siren"),
        "command hooks stay on their box: {plain}"
    );
    let full = g.run(&["export", "--include-secrets"]).ok().to_string();
    assert!(full.contains("fleet-hook-secret"), "{full}");

    let other = Gate::new();
    other
        .run(&["hook", "add", "local", "--command", "/bin/true"])
        .ok();
    let file = other.state().join("fleet.toml");
    std::fs::write(&file, &full).unwrap();
    assert!(
        other
            .run(&["apply", file.to_str().unwrap()])
            .ok()
            .contains("+ hook ops")
    );
    let listed = hooks(&other);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local", "ops"]);
    assert_eq!(listed[1]["secret_set"], true);
    assert_eq!(listed[1]["events"][0], "pipe.offline");
    // Applying the file without secrets keeps the secret the hook has.
    std::fs::write(&file, &plain).unwrap();
    other.run(&["apply", file.to_str().unwrap()]).ok();
    assert_eq!(hooks(&other)[1]["secret_set"], true);
    // A file without the hook removes it; the command hook stays.
    let without: String = plain.split("[[hook]]").next().unwrap().to_string();
    std::fs::write(&file, without).unwrap();
    assert!(
        other
            .run(&["apply", file.to_str().unwrap()])
            .ok()
            .contains("- hook ops")
    );
    let names: Vec<String> = hooks(&other)
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["local"]);
}
