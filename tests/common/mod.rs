//! Shared test harness: a temporary state directory, the real `ftpgate` binary, and a
//! daemon that is killed when the test ends.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ftpgate");

/// A program a test started (a helper server, the demo); killed when dropped.
pub struct Helper(pub Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free now (the kernel's choice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A state directory and the commands run against it.
pub struct Gate {
    pub dir: tempfile::TempDir,
    /// The state directory: `dir` itself, or a small filesystem mounted inside it.
    state: PathBuf,
}

impl Drop for Gate {
    fn drop(&mut self) {
        if self.state != self.dir.path() {
            let _ = Command::new("umount").arg("-l").arg(&self.state).status();
        }
    }
}

/// What a command printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed: stdout={} stderr={}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with `code` and exactly one line on stderr containing `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "exit code; stdout={} stderr={}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line on stderr, got {:?}",
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr {:?} should mention {needle:?}",
            self.stderr
        );
    }
}

impl Gate {
    pub fn new() -> Gate {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().to_path_buf();
        Gate { dir, state }
    }

    /// A gateway whose state directory is a `mib` MiB tmpfs of its own, so a test can
    /// fill its disk; `None` (say why) where this process may not mount (needs root).
    pub fn on_small_disk(mib: u32) -> Option<Gate> {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&state)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            // The test command sets it where it runs as root: there a failed mount is a
            // failure, not a skip.
            assert!(
                std::env::var_os("FTPGATE_REQUIRE_MOUNT").is_none(),
                "cannot mount a small tmpfs, and FTPGATE_REQUIRE_MOUNT is set"
            );
            eprintln!("SKIPPED: cannot mount a small tmpfs here (the test needs root)");
            return None;
        }
        Some(Gate { dir, state })
    }

    /// A gateway whose state directory is `state`, a file system the caller mounted
    /// inside `dir` (unmounted when the gateway is dropped).
    pub fn mounted(dir: tempfile::TempDir, state: PathBuf) -> Gate {
        Gate { dir, state }
    }

    pub fn state(&self) -> &Path {
        &self.state
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--state").arg(self.state()).args(args);
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        c.env("RUST_LOG", "warn");
        c
    }

    /// Runs `ftpgate --state DIR args...` with standard input closed.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .stdin(Stdio::null())
                .output()
                .expect("run ftpgate"),
        )
    }

    /// Runs with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        self.run_with(args, input, &[])
    }

    /// Runs with `input` on standard input and extra environment variables.
    pub fn run_with(&self, args: &[&str], input: &str, env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn ftpgate");
        // The command may exit (say, on a usage error) before reading its input.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        Run::from(child.wait_with_output().expect("wait ftpgate"))
    }

    /// Starts `ftpgate serve` with `args` (on 127.0.0.1, an ephemeral port, unless
    /// `--listen` is given) and waits until it is ready.
    pub fn serve(&self, args: &[&str]) -> Daemon {
        self.serve_env(args, &[])
    }

    /// [`Gate::serve`] with extra environment variables for the daemon.
    pub fn serve_env(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut d = self.start_env(args, env);
        d.wait_ready();
        d
    }

    /// Starts `ftpgate serve` as [`Gate::serve_env`] does, without waiting for it.
    pub fn start_env(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        // Beside the state directory, not in it: a test may fill that disk.
        let log = self.dir.path().join("serve.log");
        let mut all = vec!["serve"];
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--passive-ports") {
            all.extend(["--passive-ports", "40000-49999"]);
        }
        all.extend(args);
        let mut c = self.command(&all);
        c.envs(env.iter().copied());
        c.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = c.spawn().expect("spawn ftpgate serve");
        Daemon {
            child,
            log,
            sock: self.state().join("control.sock"),
        }
    }
}

/// A running `ftpgate serve`; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    sock: PathBuf,
}

impl Daemon {
    /// Waits until the control socket answers and every listener is up; panics with the
    /// daemon's log if it does not come up within 20 s.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "daemon ended ({status}) before it was ready: {}",
                    self.log_text()
                );
            }
            if std::os::unix::net::UnixStream::connect(&self.sock).is_ok()
                && self.listening_line().is_some()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not start: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The "ready" line the daemon logs once every listener is up.
    fn listening_line(&self) -> Option<String> {
        self.log_text()
            .lines()
            .find(|l| l.contains(" ready: ftp="))
            .map(str::to_string)
    }

    /// The first FTP address from the "ready" log line.
    pub fn ftp(&self) -> std::net::SocketAddr {
        self.ready_address("ftp")
    }

    /// The first SFTP address from the "ready" log line (the daemon was started with
    /// `--sftp-listen`).
    pub fn sftp(&self) -> std::net::SocketAddr {
        self.ready_address("sftp")
    }

    /// The first address after ` KEY=` in the "ready" log line.
    fn ready_address(&self, key: &str) -> std::net::SocketAddr {
        let line = self.listening_line().expect("ready line");
        let addrs = line
            .split(&format!(" {key}="))
            .nth(1)
            .unwrap_or_else(|| panic!("no {key}= in ready line {line:?}; log: {}", self.log_text()))
            .split_whitespace()
            .next()
            .unwrap();
        addrs.split(',').next().unwrap().parse().expect("address")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a power cut would leave things.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit.
    pub fn stop(mut self) -> i32 {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child
            .wait()
            .map(|s| s.code().unwrap_or(-1))
            .unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Password of the Sender [`Gate::provisioned`] creates.
pub const PW: &str = "cam-secret-1";

/// A directory destination's staging area: `.ftpgate` and DEL, a name no client can use.
pub const STAGING: &str = ".ftpgate\u{7f}";

/// A directory destination's marker: proves the disk it belongs on is mounted.
pub const MARKER: &str = ".ftpgate-destination\u{7f}";

impl Gate {
    /// A Pipe `line1` into a directory, and Sender `cam1` (password [`PW`]) granted it.
    pub fn provisioned() -> Gate {
        let g = Gate::new();
        g.provision(&g.state().join("delivered"));
        g
    }

    /// Creates `out` and a Pipe `line1` into it, and Sender `cam1` (password [`PW`])
    /// granted it.
    pub fn provision(&self, out: &Path) {
        std::fs::create_dir_all(out).unwrap();
        let g = self;
        g.run(&[
            "pipe",
            "add",
            "Line 1",
            "--dest",
            &format!("file://{}", out.display()),
            "--id",
            "line1",
        ])
        .ok();
        g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], PW)
            .ok();
        g.run(&["sender", "grant", "cam1", "line1"]).ok();
    }
}

impl Gate {
    /// Makes the `line1` destination unavailable, so uploads stay in the spool (its
    /// directory is gone, as a disk taken away: the forwarder retries and waits).
    pub fn hold_deliveries(&self) {
        let out = self.state().join("delivered");
        std::fs::rename(&out, out.with_extension("away")).unwrap();
    }

    /// Brings the `line1` destination back after [`Gate::hold_deliveries`], as the same
    /// disk mounted again (with the marker `pipe add` left on it).
    pub fn resume_deliveries(&self) {
        let out = self.state().join("delivered");
        std::fs::rename(out.with_extension("away"), &out).unwrap();
    }
}

/// A raw control connection: send lines, read replies, exactly as bytes.
pub struct Raw {
    pub stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

/// A reply as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    /// Every line, without line endings.
    pub text: String,
}

impl Raw {
    pub fn connect(addr: std::net::SocketAddr) -> Raw {
        let mut r = Raw::greeted(std::net::TcpStream::connect(addr).expect("connect"));
        assert_eq!(r.read().code, 220);
        r
    }

    /// Connects from the loopback address `src` (127.0.0.0/8) and returns the connection
    /// with its greeting, whatever it is (`220`, or the `421` of a refused connection).
    pub fn connect_from(addr: std::net::SocketAddr, src: std::net::IpAddr) -> (Raw, Reply) {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&std::net::SocketAddr::new(src, 0).into()).unwrap();
        s.connect(&addr.into()).expect("connect");
        let mut r = Raw::greeted(s.into());
        let greeting = r.read();
        (r, greeting)
    }

    fn greeted(stream: std::net::TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = std::io::BufReader::new(stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    /// Connects and logs in as cam1.
    pub fn login(addr: std::net::SocketAddr) -> Raw {
        let mut r = Raw::connect(addr);
        assert_eq!(r.cmd("USER cam1").code, 331);
        assert_eq!(r.cmd(&format!("PASS {PW}")).code, 230);
        r
    }

    /// Reads one (possibly multi-line) reply.
    pub fn read(&mut self) -> Reply {
        use std::io::BufRead;
        let mut text = String::new();
        let mut first = String::new();
        self.reader.read_line(&mut first).expect("reply");
        assert!(
            first.ends_with("\r\n"),
            "reply line without CRLF: {first:?}"
        );
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad reply {first:?}"));
        text.push_str(first.trim_end());
        if first.as_bytes().get(3) == Some(&b'-') {
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).expect("reply line");
                text.push('\n');
                text.push_str(line.trim_end());
                if line.starts_with(&format!("{code} ")) {
                    break;
                }
            }
        }
        Reply { code, text }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send_bytes(format!("{line}\r\n").as_bytes());
        self.read()
    }

    /// Sends EPSV and returns the announced port.
    pub fn epsv_port(&mut self) -> u16 {
        let r = self.cmd("EPSV");
        assert_eq!(r.code, 229, "{}", r.text);
        let port = r
            .text
            .split("|||")
            .nth(1)
            .map(|p| p.trim_end_matches(['|', ')']));
        port.and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {:?}", r.text))
    }

    /// EPSV and connects to the data port.
    pub fn epsv(&mut self) -> std::net::TcpStream {
        let port = self.epsv_port();
        let ip = self.stream.peer_addr().unwrap().ip();
        std::net::TcpStream::connect((ip, port)).unwrap()
    }

    /// Uploads `data` to `name` over EPSV; returns the final reply.
    pub fn stor(&mut self, name: &str, data: &[u8]) -> Reply {
        let mut d = self.epsv();
        let r = self.cmd(&format!("STOR {name}"));
        assert_eq!(r.code, 150, "{}", r.text);
        d.write_all(data).unwrap();
        drop(d);
        self.read()
    }

    /// `STOR name` that the server refuses before opening the data connection.
    pub fn stor_refused(&mut self, name: &str) -> Reply {
        let _d = self.epsv();
        self.cmd(&format!("STOR {name}"))
    }

    /// The server has closed the connection.
    pub fn expect_closed(&mut self) {
        use std::io::Read;
        let mut rest = Vec::new();
        let n = self
            .reader
            .read_to_end(&mut rest)
            .expect("read until closed");
        assert_eq!(
            n,
            0,
            "nothing after the last reply: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// A listing over EPSV (`LIST`, `NLST`, `MLSD`).
    pub fn list(&mut self, cmd: &str) -> (Reply, String) {
        use std::io::Read;
        let mut d = self.epsv();
        let r = self.cmd(cmd);
        if r.code != 150 {
            return (r, String::new());
        }
        let mut body = String::new();
        d.read_to_string(&mut body).unwrap();
        (self.read(), body)
    }
}

/// SHA-256 of a byte string, hex.
/// The spool bodies waiting for delivery in state directory `state`: the files in
/// `spool/ready/`'s buckets (and any directly in it).
#[allow(dead_code)]
pub fn ready_bodies(state: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![state.join("spool/ready")];
    let mut out = Vec::new();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic test data of `len` bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}

/// A real S3-compatible server (s3s-fs) on loopback, installed by scripts/test-all.
pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
    /// The secret the server accepts (tests change it to break credentials).
    pub secret: String,
    /// Runs the server under `faketime` with this offset (`+3h`): its clock, not the
    /// machine's, is moved.
    pub clock: Option<String>,
    /// While stopped: the port, bound but not listening, so connections are refused and
    /// no other test's server (tests run in parallel) is given it meanwhile. Without it,
    /// another test's s3s-fs could take the port and a stopped S3 would answer.
    hold: Option<socket2::Socket>,
}

pub const S3_ACCESS: &str = "AKIDFTPGATETEST";
pub const S3_SECRET: &str = "s3cr3t-key-for-tests-only";
pub const BUCKET: &str = "plant";

fn s3s_fs() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache = std::env::var("FTPGATE_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(home).join(".cache/ftpgate-test"));
    let p = cache.join("bin/s3s-fs");
    assert!(
        p.exists(),
        "s3s-fs not found at {}: run scripts/test-all, which installs it",
        p.display()
    );
    p
}

impl S3Server {
    /// Starts s3s-fs with a bucket `plant`, data under `root`.
    pub fn start(root: &Path) -> S3Server {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let port = free_port();
        let mut s = S3Server {
            child: None,
            port,
            root: root.to_path_buf(),
            secret: S3_SECRET.into(),
            clock: None,
            hold: None,
        };
        s.resume();
        s
    }

    /// Like [`S3Server::start`], with the server's clock `offset` away (`+3h`) through
    /// libfaketime.
    pub fn start_with_clock(root: &Path, offset: &str) -> S3Server {
        let mut s = S3Server::start(root);
        s.stop();
        s.clock = Some(offset.to_string());
        s.resume();
        s
    }

    /// Starts it again on the same port and data (after [`S3Server::stop`]).
    pub fn resume(&mut self) {
        drop(self.hold.take());
        let mut cmd = match &self.clock {
            Some(offset) => {
                let mut c = Command::new("faketime");
                c.args(["-f", offset]).arg(s3s_fs());
                c
            }
            None => Command::new(s3s_fs()),
        };
        let child = cmd
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                S3_ACCESS,
                "--secret-key",
                &self.secret,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_reuse_address(true).unwrap();
            let addr: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
            // Not listening: a connection is refused, as with no server at all.
            if s.bind(&addr.into()).is_ok() {
                self.hold = Some(s);
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client for checking what landed: rust-s3, an S3 client independent of the
    /// gateway's own requests and signing.
    pub fn bucket(&self) -> Box<s3::Bucket> {
        let region = s3::Region::Custom {
            region: "us-east-1".into(),
            endpoint: self.endpoint(),
        };
        let creds =
            s3::creds::Credentials::new(Some(S3_ACCESS), Some(&self.secret), None, None, None)
                .unwrap();
        s3::Bucket::new(BUCKET, region, creds)
            .unwrap()
            .with_path_style()
    }

    /// The object's bytes, if it exists.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.bucket()
            .get_object(format!("/{key}"))
            .ok()
            .map(|r| r.to_vec())
    }

    /// Every key in the bucket.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .bucket()
            .list(String::new(), None)
            .unwrap()
            .into_iter()
            .flat_map(|p| p.contents)
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Gate {
    /// A Pipe `cloud` into s3://plant/cell4 on `s3`, and Sender cam1 (password [`PW`]).
    pub fn with_s3(s3: &S3Server, secret: &str) -> Gate {
        let g = Gate::new();
        g.run_stdin(
            &[
                "pipe",
                "add",
                "Cloud",
                "--dest",
                &format!("s3://{BUCKET}/cell4"),
                "--id",
                "cloud",
                "--endpoint",
                &s3.endpoint(),
                "--path-style",
                "--access-key",
                S3_ACCESS,
                "--secret-key-stdin",
            ],
            secret,
        )
        .ok();
        g.run_stdin(&["sender", "add", "cam1", "--password-stdin"], PW)
            .ok();
        g.run(&["sender", "grant", "cam1", "cloud"]).ok();
        g
    }

    /// `status --json` as a value.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(self.run(&["status", "--json"]).ok()).unwrap()
    }

    /// Waits until the outbox is empty (everything delivered), or panics after `secs`.
    pub fn wait_delivered(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let ops: serde_json::Value =
                serde_json::from_str(self.run(&["spool", "list", "--json"]).ok()).unwrap();
            if ops.as_array().is_some_and(|a| a.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not delivered within {secs}s: {ops}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether `tool` is on `PATH`.
/// Bytes free for an unprivileged writer on the file system holding `dir` (`df`).
pub fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a client command and returns its stdout; fails the test with its stderr.
pub fn client(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run client");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
