//! The README's commands work as written: the demo it starts (its printed `curl -T` is
//! acknowledged and delivered), then every shell block marked `sh runnable`, verbatim,
//! in order. The first runs beside the demo through `target/release/ftpgate`, as the
//! README says after `cargo run --release -- demo`; the others through `ftpgate` on
//! `PATH`, as on an installed box, on a state directory of their own.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Helper, free_port};

/// The README's blocks that open with "```sh runnable", in order.
fn runnable_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh runnable" => current = Some(String::new()),
            None => {}
            Some(_) if line.starts_with("```") => blocks.push(current.take().unwrap()),
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(current.is_none(), "a runnable block is not closed");
    blocks
}

/// Runs `script` with bash, stopping at the first failing command; its output.
fn run_block(script: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "README block failed ({}):\n{script}\n--- output:\n{text}",
        out.status
    );
    text
}

/// Starts the demo in `dir` and returns it with the upload command it printed.
fn start_demo(dir: &Path, http: &str) -> (Helper, String) {
    let (ftp, sftp) = (free_port().to_string(), free_port().to_string());
    let mut child = Command::new(dir.join("target/release/ftpgate"))
        .args([
            "demo",
            "--port",
            &ftp,
            "--sftp-port",
            &sftp,
            "--http-port",
            http,
        ])
        .current_dir(dir)
        .env_remove("FTPGATE_STATE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let demo = Helper(child);
    let mut upload = None;
    for line in lines.by_ref() {
        let line = line.expect("read the demo's output");
        if line.trim_start().starts_with("curl -T") {
            upload = Some(line.trim().to_string());
        }
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    // Keep reading so the demo never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    // It prints its instructions as it starts: wait for the listener, as a person would.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", ftp.parse::<u16>().unwrap())).is_err() {
        assert!(Instant::now() < deadline, "the demo is not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    (demo, upload.expect("the demo printed no curl -T command"))
}

#[test]
fn the_readme_s_commands_work_as_written() {
    let blocks = runnable_blocks();
    assert_eq!(blocks.len(), 4, "runnable blocks in README.md: {blocks:?}");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Where the README's set-up command leaves the binary, and where a box has it.
    for link in ["target/release/ftpgate", "bin/ftpgate"] {
        let at = root.join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(BIN, &at).unwrap();
    }

    let http = free_port();
    let (demo, upload) = start_demo(root, &http.to_string());
    // The demo's own suggestion, with a file of ours in place of /etc/hostname.
    std::fs::write(root.join("hello.txt"), b"hello from the README\n").unwrap();
    let upload = upload.replacen("/etc/hostname", "hello.txt", 1);
    run_block(&format!("curl -sS {}", &upload["curl ".len()..]), root, &[]);
    let delivered = root.join("demo-state/delivered/hello.txt");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !delivered.exists() {
        assert!(
            Instant::now() < deadline,
            "the demo's upload was not delivered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read(&delivered).unwrap(),
        b"hello from the README\n"
    );
    let status = run_block(&blocks[0], root, &[]);
    assert!(
        status.contains("demo"),
        "status shows no demo Pipe:\n{status}"
    );
    // The demo's status page lists the upload.
    let page = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    assert!(page.contains("/hello.txt"), "{page}");
    drop(demo);

    // On a box: `ftpgate` on PATH, its own state directory, a secret in the environment.
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state = root.join("box-state");
    let env = [
        ("PATH", path.as_str()),
        ("FTPGATE_STATE", state.to_str().unwrap()),
        ("SECRET", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"),
    ];
    let commissioned = run_block(&blocks[1], root, &env);
    assert!(commissioned.contains("cam-07"), "{commissioned}");
    run_block(&blocks[2], root, &env);
    run_block(&blocks[3], root, &env);
    let fleet = std::fs::read_to_string(root.join("fleet.toml")).unwrap();
    assert!(
        fleet.contains("cell4") && fleet.contains("cam-07"),
        "{fleet}"
    );
}
