//! The technician CLI through the real binary: every verb with and without a running
//! daemon, bad input, secrets, export/apply, daemon ownership of the state directory.

mod common;

use common::Gate;
use serde_json::Value;

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Runs every verb once against `g` (a daemon may or may not be running) and checks what
/// a technician would see.
fn exercise_every_verb(g: &Gate) {
    // sender add: generated password printed once; --password-stdin; --require-tls; --allow
    let out = g.run(&["sender", "add", "cam1"]).ok().to_string();
    assert!(out.contains("shown once"), "{out}");
    let pw = out.rsplit(' ').next().unwrap().trim();
    assert_eq!(pw.len(), 20);
    g.run_stdin(
        &[
            "sender",
            "add",
            "plc7",
            "--password-stdin",
            "--require-tls",
            "--allow",
            "10.1.0.0/16",
        ],
        "plc-pass\n",
    )
    .ok();
    // pipe add: file and s3 (credentials from flags+stdin, and from the environment)
    g.run(&[
        "pipe",
        "add",
        "Line 1",
        "--dest",
        "file:///srv/line1",
        "--id",
        "line1",
    ])
    .ok();
    let out = g
        .run_stdin(
            &[
                "pipe",
                "add",
                "Cloud",
                "--dest",
                "s3://plant-bucket/cell4",
                "--endpoint",
                "http://127.0.0.1:9000",
                "--region",
                "eu-central-1",
                "--path-style",
                "--access-key",
                "AKIDEXAMPLE",
                "--secret-key-stdin",
                "--overwrite",
                "keep-both",
            ],
            SECRET,
        )
        .ok()
        .to_string();
    let cloud = out.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(cloud.len(), 8, "generated id in {out}");
    g.run_with(
        &[
            "pipe",
            "add",
            "Env",
            "--dest",
            "s3://env-bucket",
            "--id",
            "envp",
        ],
        "",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
    .ok();
    // grants
    g.run(&["sender", "grant", "cam1", "line1"]).ok();
    g.run(&["sender", "grant", "plc7", "line1"]).ok();
    g.run(&["sender", "grant", "plc7", &cloud]).ok();
    g.run(&["sender", "revoke", "plc7", "line1"]).ok();
    // set
    g.run(&[
        "sender",
        "set",
        "cam1",
        "--require-tls",
        "on",
        "--tls-reuse",
        "optional",
        "--allow",
        "192.168.0.0/24",
    ])
    .ok();
    g.run(&[
        "pipe",
        "set",
        "line1",
        "--name",
        "Line One",
        "--overwrite",
        "refuse",
    ])
    .ok();
    g.run_stdin(
        &[
            "pipe",
            "set",
            &cloud,
            "--region",
            "eu-west-1",
            "--secret-key-stdin",
        ],
        "NEWSECRET",
    )
    .ok();
    // passwd
    g.run_stdin(
        &["sender", "passwd", "cam1", "--password-stdin"],
        "new-cam-pass\n",
    )
    .ok();
    assert!(
        g.run(&["sender", "passwd", "cam1"])
            .ok()
            .contains("shown once")
    );
    // disable / enable
    g.run(&["sender", "disable", "plc7"]).ok();
    g.run(&["pipe", "disable", "envp"]).ok();

    // list/show, human and JSON
    let senders = json(g.run(&["sender", "list", "--json"]).ok());
    let senders = senders.as_array().unwrap();
    assert_eq!(senders.len(), 2);
    let cam = json(g.run(&["sender", "show", "cam1", "--json"]).ok());
    assert_eq!(cam["require_tls"], true);
    assert_eq!(cam["tls_reuse"], "optional");
    assert_eq!(cam["allow"], serde_json::json!(["192.168.0.0/24"]));
    assert_eq!(cam["pipes"], serde_json::json!(["line1"]));
    let plc = json(g.run(&["sender", "show", "plc7", "--json"]).ok());
    assert_eq!(plc["enabled"], false);
    assert_eq!(plc["pipes"], serde_json::json!([cloud.clone()]));
    let human = g.run(&["sender", "list"]).ok().to_string();
    assert!(human.contains("cam1") && human.contains("plc7"), "{human}");
    assert!(
        g.run(&["sender", "show", "plc7"])
            .ok()
            .contains("10.1.0.0/16")
    );

    let pipes = json(g.run(&["pipe", "list", "--json"]).ok());
    assert_eq!(pipes.as_array().unwrap().len(), 3);
    let p = json(g.run(&["pipe", "show", &cloud, "--json"]).ok());
    assert_eq!(p["dest"], "s3://plant-bucket/cell4");
    assert_eq!(p["region"], "eu-west-1");
    assert_eq!(p["path_style"], true);
    assert_eq!(p["overwrite"], "keep-both");
    assert_eq!(p["secret_key_set"], true);
    assert_eq!(p["senders"], serde_json::json!(["plc7"]));
    let l1 = json(g.run(&["pipe", "show", "line1", "--json"]).ok());
    assert_eq!(l1["name"], "Line One");
    assert_eq!(l1["overwrite"], "refuse");
    assert_eq!(
        json(g.run(&["pipe", "show", "envp", "--json"]).ok())["enabled"],
        false
    );
    assert!(g.run(&["pipe", "list"]).ok().contains("file:///srv/line1"));
    assert!(
        g.run(&["pipe", "show", &cloud])
            .ok()
            .contains("set (hidden)")
    );

    // export (TOML parses), enable, remove
    let exported: toml::Table = toml::from_str(g.run(&["export"]).ok()).unwrap();
    assert_eq!(exported["sender"].as_array().unwrap().len(), 2);
    g.run(&["sender", "enable", "plc7"]).ok();
    g.run(&["pipe", "enable", "envp"]).ok();
    g.run(&["pipe", "remove", "envp"]).ok();
    g.run(&["sender", "remove", "plc7"]).ok();
    assert_eq!(
        json(g.run(&["sender", "list", "--json"]).ok())
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json(g.run(&["pipe", "show", &cloud, "--json"]).ok())["senders"],
        serde_json::json!([])
    );
}

#[test]
fn every_verb_without_a_daemon() {
    let g = Gate::new();
    exercise_every_verb(&g);
}

#[test]
fn every_verb_through_the_daemon() {
    let g = Gate::new();
    let d = g.serve(&[]);
    exercise_every_verb(&g);
    // The daemon really did the work: nothing could have opened the database directly.
    assert_eq!(d.stop(), 0);
    assert!(
        !g.state().join("control.sock").exists(),
        "socket removed on clean stop"
    );
    assert_eq!(
        json(g.run(&["sender", "list", "--json"]).ok())
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn provision(g: &Gate) {
    g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], "cam-pass")
        .ok();
    g.run_stdin(
        &[
            "sender",
            "add",
            "plc7",
            "--password-stdin",
            "--allow",
            "10.0.0.0/8",
        ],
        "plc-pass",
    )
    .ok();
    g.run(&[
        "pipe",
        "add",
        "Line 1",
        "--dest",
        "file:///srv/line1",
        "--id",
        "line1",
    ])
    .ok();
    g.run_stdin(
        &[
            "pipe",
            "add",
            "Cloud",
            "--dest",
            "s3://bucket/p",
            "--id",
            "cloud1",
            "--access-key",
            "AKID",
            "--secret-key-stdin",
        ],
        SECRET,
    )
    .ok();
    g.run(&["sender", "grant", "cam1", "line1"]).ok();
    g.run(&["sender", "grant", "plc7", "line1"]).ok();
    g.run(&["sender", "grant", "plc7", "cloud1"]).ok();
}

/// The export without its header line (which names the version, not the state).
fn body(export: &str) -> String {
    export
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn export_then_apply_reproduces_the_state_and_passwords_still_verify() {
    let a = Gate::new();
    provision(&a);
    let file = a.state().join("fleet.toml");
    let exported = a.run(&["export", "--include-secrets"]).ok().to_string();
    std::fs::write(&file, &exported).unwrap();

    let b = Gate::new();
    let dry = b
        .run(&["apply", "--dry-run", file.to_str().unwrap()])
        .ok()
        .to_string();
    assert!(dry.contains("would: + sender cam1"), "{dry}");
    assert_eq!(
        json(b.run(&["sender", "list", "--json"]).ok()),
        serde_json::json!([]),
        "dry run changed nothing"
    );
    assert_eq!(
        json(b.run(&["pipe", "list", "--json"]).ok()),
        serde_json::json!([]),
        "dry run changed nothing"
    );

    let applied = b.run(&["apply", file.to_str().unwrap()]).ok().to_string();
    for line in [
        "+ pipe line1",
        "+ pipe cloud1",
        "+ sender cam1",
        "+ sender plc7",
        "+ grant plc7 -> cloud1",
    ] {
        assert!(applied.contains(line), "{line} in {applied}");
    }
    assert_eq!(
        body(b.run(&["export", "--include-secrets"]).ok()),
        body(&exported)
    );
    // Idempotent.
    assert!(
        b.run(&["apply", file.to_str().unwrap()])
            .ok()
            .contains("no changes")
    );

    // The hashes carried over still verify the original passwords.
    let t: toml::Table = toml::from_str(b.run(&["export"]).ok()).unwrap();
    for s in t["sender"].as_array().unwrap() {
        let hash = s["password_hash"].as_str().unwrap();
        let pw = if s["name"].as_str() == Some("cam1") {
            "cam-pass"
        } else {
            "plc-pass"
        };
        assert!(ftpgate::auth::verify_password(hash, pw));
        assert!(!ftpgate::auth::verify_password(hash, "wrong"));
    }

    // A file without secrets keeps the current secret; removals and changes are listed.
    let mut edited = a
        .run(&["export"])
        .ok()
        .replace("name = \"Line 1\"", "name = \"Line A\"");
    assert!(
        edited.contains("pipes = [\"cloud1\", \"line1\"]"),
        "{edited}"
    );
    edited = edited.replace("pipes = [\"cloud1\", \"line1\"]", "pipes = [\"cloud1\"]");
    std::fs::write(&file, edited).unwrap();
    let changes = b.run(&["apply", file.to_str().unwrap()]).ok().to_string();
    assert!(
        changes.contains("~ pipe line1") && changes.contains("- grant plc7 -> line1"),
        "{changes}"
    );
    assert!(
        !changes.contains("cloud1"),
        "secret kept, so cloud1 unchanged: {changes}"
    );
    assert!(
        b.run(&["export", "--include-secrets"])
            .ok()
            .contains(SECRET)
    );
}

#[test]
fn bad_input_exits_non_zero_with_one_line_and_changes_nothing() {
    let g = Gate::new();
    provision(&g);
    let before = g.run(&["export", "--include-secrets"]).ok().to_string();
    let bad_fleet = g.state().join("bad.toml");
    std::fs::write(
        &bad_fleet,
        "[[sender]]\nname = \"x\"\npassword_hash = \"plain\"\n",
    )
    .unwrap();
    let bad_fleet = bad_fleet.to_str().unwrap();

    let cases: &[(&[&str], &str, i32, &str)] = &[
        (
            &["sender", "add", "cam1", "--password-stdin"],
            "pw",
            1,
            "already exists",
        ),
        (
            &["pipe", "add", "Dup", "--dest", "file:///x", "--id", "line1"],
            "",
            1,
            "already taken",
        ),
        (&["sender", "grant", "cam1", "nopipe"], "", 1, "no pipe"),
        (&["sender", "grant", "ghost", "line1"], "", 1, "no sender"),
        (&["sender", "revoke", "cam1", "cloud1"], "", 1, "no grant"),
        (
            &["sender", "add", "bad name", "--password-stdin"],
            "pw",
            2,
            "invalid sender name",
        ),
        (
            &["sender", "add", "x@y", "--password-stdin"],
            "pw",
            2,
            "invalid sender name",
        ),
        (
            &["pipe", "add", "P", "--dest", "file:///x", "--id", "UP"],
            "",
            2,
            "invalid pipe id",
        ),
        (
            &["pipe", "add", "P", "--dest", "file:///x", "--id", "abc"],
            "",
            2,
            "invalid pipe id",
        ),
        (
            &["pipe", "add", "P", "--dest", "ftp://host/x"],
            "",
            2,
            "invalid destination",
        ),
        (
            &["pipe", "add", "P", "--dest", "file://relative/x"],
            "",
            2,
            "invalid destination",
        ),
        (
            &["pipe", "add", "P", "--dest", "s3://Bad_Bucket"],
            "",
            2,
            "bucket",
        ),
        (
            &[
                "pipe",
                "add",
                "P",
                "--dest",
                "s3://bucket",
                "--access-key",
                "AK",
            ],
            "",
            2,
            "secret key",
        ),
        (
            &[
                "pipe",
                "add",
                "P",
                "--dest",
                "s3://bucket",
                "--endpoint",
                "localhost:9000",
                "--access-key",
                "A",
                "--secret-key-stdin",
            ],
            "S",
            2,
            "invalid endpoint",
        ),
        (
            &[
                "pipe",
                "add",
                "P",
                "--dest",
                "file:///x",
                "--region",
                "eu-west-1",
            ],
            "",
            2,
            "only to s3://",
        ),
        (
            &[
                "pipe",
                "add",
                "P",
                "--dest",
                "file:///x",
                "--overwrite",
                "sometimes",
            ],
            "",
            2,
            "overwrite policy",
        ),
        (
            &["sender", "add", "newguy", "--password-stdin"],
            "\n",
            2,
            "no password",
        ),
        (
            &["sender", "add", "newguy", "--password-stdin"],
            "",
            2,
            "no password",
        ),
        (
            &["sender", "passwd", "cam1", "--password-stdin"],
            "",
            2,
            "no password",
        ),
        (
            &["sender", "add", "newguy", "--allow", "10.0.0.0/33"],
            "",
            2,
            "invalid network",
        ),
        (&["sender", "set", "cam1"], "", 2, "nothing to change"),
        (
            &["sender", "set", "cam1", "--require-tls", "maybe"],
            "",
            2,
            "on or off",
        ),
        (&["sender", "remove", "ghost"], "", 1, "no sender"),
        (&["pipe", "remove", "ghost"], "", 1, "no pipe"),
        (&["sender", "frobnicate"], "", 2, "frobnicate"),
        (&["sender", "add"], "", 2, "name"),
        (
            &["apply", "/nonexistent/fleet.toml"],
            "",
            2,
            "cannot read fleet file",
        ),
        (&["apply", bad_fleet], "", 2, "argon2id"),
        (
            &["cert", "generate", "--hostname", "bad name!"],
            "",
            2,
            "invalid certificate name",
        ),
    ];
    for (args, input, code, needle) in cases {
        let r = g.run_stdin(args, input);
        assert_eq!(r.code, *code, "{args:?}: {}", r.stderr);
        r.fails(*code, needle);
        assert_eq!(
            g.run(&["export", "--include-secrets"]).ok(),
            before,
            "{args:?} changed the state"
        );
    }
}

#[test]
fn secrets_never_appear_in_list_show_export_or_argv() {
    let g = Gate::new();
    provision(&g);
    let hash_prefix = "$argon2id$";
    for args in [
        &["sender", "list"][..],
        &["sender", "list", "--json"],
        &["sender", "show", "cam1"],
        &["sender", "show", "plc7", "--json"],
        &["pipe", "list"],
        &["pipe", "list", "--json"],
        &["pipe", "show", "cloud1"],
        &["pipe", "show", "cloud1", "--json"],
    ] {
        let out = g.run(args).ok().to_string();
        assert!(
            !out.contains(SECRET) && !out.contains(hash_prefix) && !out.contains("cam-pass"),
            "{args:?}: {out}"
        );
    }
    let export = g.run(&["export"]).ok().to_string();
    assert!(!export.contains(SECRET) && !export.contains("cam-pass"));
    assert!(
        g.run(&["export", "--include-secrets"])
            .ok()
            .contains(SECRET)
    );

    // There is no way to put a secret in argv.
    g.run(&["sender", "add", "x", "--password", "pw"])
        .fails(2, "--password");
    g.run(&[
        "pipe",
        "add",
        "P",
        "--dest",
        "s3://bucket",
        "--secret-key",
        "s",
    ])
    .fails(2, "--secret-key");

    // Through the daemon: its argv and log hold neither, and the request went over the socket.
    let d = g.serve(&[]);
    g.run_stdin(
        &["sender", "passwd", "cam1", "--password-stdin"],
        "daemon-pass-123",
    )
    .ok();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains("daemon-pass-123") && !cmdline.contains(SECRET));
    let log = d.log_text();
    assert!(
        !log.contains("daemon-pass-123") && !log.contains(SECRET) && !log.contains(hash_prefix),
        "{log}"
    );
}

#[test]
fn two_daemons_cannot_own_one_state_directory() {
    let g = Gate::new();
    let _d = g.serve(&[]);
    let second = g.run(&["serve"]);
    second.fails(1, "already running");
}

/// An FTP-only build (without the `sftp` feature) says what it lacks instead of serving
/// less than it was asked for.
#[cfg(not(feature = "sftp"))]
#[test]
fn a_build_without_sftp_refuses_to_serve_sftp_with_a_sentence() {
    let g = Gate::new();
    let r = g.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--sftp-listen",
        "127.0.0.1:0",
    ]);
    r.fails(1, "built without SFTP");
}

#[test]
fn a_killed_daemon_leaves_a_stale_socket_that_is_ignored_and_replaced() {
    let g = Gate::new();
    let d = g.serve(&[]);
    g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], "pw")
        .ok();
    d.kill9();
    assert!(
        g.state().join("control.sock").exists(),
        "kill -9 leaves the socket behind"
    );
    // The CLI sees nobody answers and opens the database itself.
    g.run_stdin(&["sender", "add", "cam2", "--password-stdin"], "pw")
        .ok();
    let d = g.serve(&[]);
    assert!(
        d.log_text().contains("stale control socket"),
        "{}",
        d.log_text()
    );
    assert_eq!(
        json(g.run(&["sender", "list", "--json"]).ok())
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_database_from_a_newer_ftpgate_is_refused_with_its_version() {
    let g = Gate::new();
    g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], "pw")
        .ok();
    {
        let db = redb::Database::create(g.state().join("ftpgate.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(ftpgate::store::schema::META).unwrap();
            meta.insert("schema_version", "99").unwrap();
            meta.insert("written_by", "ftpgate 9.9.9").unwrap();
        }
        txn.commit().unwrap();
    }
    let r = g.run(&["sender", "list"]);
    r.fails(1, "ftpgate 9.9.9");
    assert!(r.stderr.contains("schema 99"), "{}", r.stderr);
    g.run(&["serve"]).fails(1, "ftpgate 9.9.9");
}

#[test]
fn cert_generate_writes_a_p256_certificate_and_a_private_key() {
    use std::os::unix::fs::PermissionsExt;
    let g = Gate::new();
    let out = g
        .run(&[
            "cert",
            "generate",
            "--hostname",
            "gw1.plant.example",
            "--hostname",
            "10.0.0.5",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("gw1.plant.example") && out.contains("10.0.0.5"),
        "{out}"
    );
    let fp = out
        .lines()
        .find(|l| l.starts_with("SHA-256 fingerprint: "))
        .unwrap();
    assert_eq!(
        fp.trim_start_matches("SHA-256 fingerprint: ")
            .split(':')
            .count(),
        32
    );
    let key = g.state().join("tls/key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert!(
        std::fs::read_to_string(g.state().join("tls/cert.pem"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // Rotation gives a new certificate.
    let again = g.run(&["cert", "generate"]).ok().to_string();
    let fp_line = |o: &str| {
        o.lines()
            .find(|l| l.starts_with("SHA-256"))
            .map(str::to_string)
    };
    assert_ne!(fp_line(&again), fp_line(&out));
}

#[test]
fn the_daemon_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let g = Gate::new();
    let sock_path = g.state().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let d = g.serve_env(&[], &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(d.stop(), 0);
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}

/// A CLI command run while no daemon answers opens the database itself for a moment. A
/// daemon starting meanwhile (systemd restarting it while a technician types `status`)
/// waits for it instead of exiting.
#[test]
fn a_daemon_starting_while_a_cli_command_holds_the_database_waits_for_it() {
    let g = Gate::new();
    g.run(&["status"]).ok();
    let held = ftpgate::store::Store::open(&g.state().join("ftpgate.redb")).unwrap();
    let mut d = g.start_env(&[], &[]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    drop(held);
    d.wait_ready();
    g.run(&["status"]).ok();
}

/// Commands typed while the daemon starts either reach it or, before it has the
/// database, use the database themselves; neither side fails for the other's moment
/// with the state file.
#[test]
fn commands_run_while_the_daemon_starts_all_succeed_and_the_daemon_comes_up() {
    let g = Gate::new();
    g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], "pw")
        .ok();
    for round in 0..5 {
        let mut d = g.start_env(&[], &[]);
        for _ in 0..8 {
            let out = g.run(&["sender", "list", "--json"]);
            assert!(out.ok().contains("cam1"), "round {round}: {}", out.ok());
        }
        d.wait_ready();
        assert_eq!(d.stop(), 0, "round {round}");
    }
}

/// A daemon stopped as systemd stops it (SIGTERM) closes the state file cleanly: the next
/// start, and a CLI command after it, do not check the whole file as after a crash (which
/// takes seconds on a large state file). Before, every restart did.
#[test]
fn a_stopped_daemon_leaves_the_state_file_closed_cleanly() {
    let g = Gate::new();
    g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], "pw")
        .ok();
    let d = g.serve(&[]);
    g.run_stdin(&["sender", "add", "cam2", "--password-stdin"], "pw")
        .ok();
    assert_eq!(d.stop(), 0);
    let after = g.run(&["sender", "list"]);
    assert!(
        !after.stderr.contains("not closed cleanly"),
        "{}",
        after.stderr
    );
    let d = g.serve(&[]);
    assert!(
        !d.log_text().contains("not closed cleanly"),
        "{}",
        d.log_text()
    );
}
