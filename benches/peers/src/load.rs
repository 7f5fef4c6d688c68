//! A compiled FTP upload load: SESSIONS threads, each sending FILES files of SIZE bytes,
//! over one connection for all of them or a new connection (and login) per file, plain or
//! explicit FTPS (PROT P). It prints one line: files, seconds, files/s and this client's CPU
//! per file, so a benchmark can show that the client is not what it measures.
//!
//! ```text
//! ftpload --addr 127.0.0.1:2121 --user U --pass P --sessions 32 --files 40 --size 65536
//!         [--tls] [--per-file] [--pasv] [--dir DIR] [--prefix NAME]
//! ```
//!
//! In the one-connection mode the logins are done before the clock starts; with
//! `--per-file` each file's connection and login are part of what is timed, as for a
//! device that runs `curl -T` once per file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, StreamOwned};

struct Args {
    addr: SocketAddr,
    user: String,
    pass: String,
    sessions: usize,
    files: usize,
    size: usize,
    tls: bool,
    per_file: bool,
    pasv: bool,
    dir: String,
    prefix: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:21".parse().unwrap(),
        user: "anonymous".into(),
        pass: "x".into(),
        sessions: 1,
        files: 40,
        size: 65536,
        tls: false,
        per_file: false,
        pasv: false,
        dir: String::new(),
        prefix: "f".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--addr" => a.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--user" => a.user = value()?,
            "--pass" => a.pass = value()?,
            "--sessions" => a.sessions = number(value()?)?,
            "--files" => a.files = number(value()?)?,
            "--size" => a.size = number(value()?)?,
            "--dir" => a.dir = value()?,
            "--prefix" => a.prefix = value()?,
            "--tls" => a.tls = true,
            "--per-file" => a.per_file = true,
            "--pasv" => a.pasv = true,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(a)
}

/// A control or data connection, plain or under TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

type Res<T> = Result<T, String>;

fn io<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// One logged-in control connection.
struct Session {
    ctl: BufReader<Conn>,
    tls: Option<Arc<ClientConfig>>,
    addr: SocketAddr,
    pasv: bool,
}

impl Session {
    fn open(a: &Args, tls: Option<Arc<ClientConfig>>) -> Res<Session> {
        let tcp = TcpStream::connect(a.addr).map_err(io("connect"))?;
        tcp.set_nodelay(true).map_err(io("nodelay"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io("timeout"))?;
        let mut s = Session {
            ctl: BufReader::new(Conn::Plain(tcp)),
            tls,
            addr: a.addr,
            pasv: a.pasv,
        };
        s.expect(&[220])?;
        if let Some(config) = s.tls.clone() {
            s.command("AUTH TLS", &[234])?;
            // Nothing is buffered: the server waits for the handshake after `234`.
            let Conn::Plain(tcp) = s.ctl.into_inner() else {
                unreachable!("the control connection starts plain")
            };
            s.ctl = BufReader::new(Conn::Tls(Box::new(wrap(config, tcp)?)));
        }
        let (code, _) = s.command(&format!("USER {}", a.user), &[230, 331])?;
        if code == 331 {
            s.command(&format!("PASS {}", a.pass), &[230])?;
        }
        if s.tls.is_some() {
            s.command("PBSZ 0", &[200])?;
            s.command("PROT P", &[200])?;
        }
        s.command("TYPE I", &[200])?;
        if !a.dir.is_empty() {
            // The directory may exist already (another session made it).
            let _ = s.command(&format!("MKD {}", a.dir), &[257]);
            s.command(&format!("CWD {}", a.dir), &[250])?;
        }
        Ok(s)
    }

    /// Reads one reply (multi-line aware) and checks its code; returns the code and the
    /// reply's first line.
    fn expect(&mut self, codes: &[u16]) -> Res<(u16, String)> {
        let mut line = String::new();
        self.ctl.read_line(&mut line).map_err(io("reply"))?;
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or(format!("bad reply {line:?}"))?;
        if line.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let mut more = String::new();
                if self.ctl.read_line(&mut more).map_err(io("reply"))? == 0 {
                    return Err("connection closed in a reply".into());
                }
                if more.starts_with(&end) {
                    break;
                }
            }
        }
        if codes.contains(&code) {
            Ok((code, line))
        } else {
            Err(format!("unexpected reply {}", line.trim_end()))
        }
    }

    fn command(&mut self, cmd: &str, codes: &[u16]) -> Res<(u16, String)> {
        self.ctl
            .get_mut()
            .write_all(format!("{cmd}\r\n").as_bytes())
            .map_err(io("send"))?;
        self.expect(codes)
    }

    /// The passive data address the server announces.
    fn passive(&mut self) -> Res<SocketAddr> {
        let (_, line) = match self.pasv {
            true => self.command("PASV", &[227])?,
            false => self.command("EPSV", &[229])?,
        };
        let inner = line.split('(').nth(1).and_then(|r| r.split(')').next());
        let inner = inner.ok_or(format!("bad passive reply {line:?}"))?;
        let port = if self.pasv {
            let n: Vec<u8> = inner
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            (n.len() == 6).then(|| u16::from(n[4]) * 256 + u16::from(n[5]))
        } else {
            inner.trim_matches('|').parse().ok()
        };
        let port = port.ok_or(format!("bad passive reply {line:?}"))?;
        Ok(SocketAddr::new(self.addr.ip(), port))
    }

    fn upload(&mut self, name: &str, body: &[u8]) -> Res<()> {
        let target = self.passive()?;
        let tcp = TcpStream::connect(target).map_err(io("data connect"))?;
        tcp.set_nodelay(true).map_err(io("nodelay"))?;
        self.command(&format!("STOR {name}"), &[125, 150])?;
        let mut data = match &self.tls {
            Some(config) => Conn::Tls(Box::new(wrap(config.clone(), tcp)?)),
            None => Conn::Plain(tcp),
        };
        data.write_all(body).map_err(io("data"))?;
        close(data)?;
        self.expect(&[226, 250])?;
        Ok(())
    }

    fn quit(mut self) {
        let _ = self.command("QUIT", &[221]);
    }
}

/// The end of a data connection: TLS's close_notify, then the TCP half-close, then the
/// server's end.
fn close(data: Conn) -> Res<()> {
    let mut tcp = match data {
        Conn::Plain(tcp) => tcp,
        Conn::Tls(mut s) => {
            s.conn.send_close_notify();
            s.conn
                .complete_io(&mut s.sock)
                .map_err(io("close_notify"))?;
            s.sock
        }
    };
    tcp.shutdown(std::net::Shutdown::Write)
        .map_err(io("shutdown"))?;
    let mut rest = [0u8; 512];
    while matches!(tcp.read(&mut rest), Ok(n) if n > 0) {}
    Ok(())
}

fn wrap(
    config: Arc<ClientConfig>,
    tcp: TcpStream,
) -> Res<StreamOwned<ClientConnection, TcpStream>> {
    let name = ServerName::IpAddress(tcp.peer_addr().map_err(io("peer"))?.ip().into());
    let conn = ClientConnection::new(config, name).map_err(io("tls"))?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(io("tls handshake"))?;
    }
    Ok(s)
}

/// Accepts any server certificate: the benchmark's servers use a self-signed one.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// The calling thread's CPU time so far (user + system, from the scheduler's nanosecond
/// count).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        stat.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// One session's uploads; `Ok`: the CPU time its thread spent in the timed part.
fn run_session(
    a: &Args,
    n: usize,
    tls: Option<Arc<ClientConfig>>,
    start: &Barrier,
) -> Res<Duration> {
    let body = vec![b'x'; a.size];
    let name = |i: usize| format!("{}-s{n}-{i}.bin", a.prefix);
    if a.per_file {
        start.wait();
        let cpu0 = thread_cpu();
        for i in 0..a.files {
            let mut s = Session::open(a, tls.clone())?;
            s.upload(&name(i), &body)?;
            s.quit();
        }
        return Ok(thread_cpu().saturating_sub(cpu0));
    }
    let opened = Session::open(a, tls);
    start.wait();
    let cpu0 = thread_cpu();
    let mut s = opened?;
    for i in 0..a.files {
        s.upload(&name(i), &body)?;
    }
    s.quit();
    Ok(thread_cpu().saturating_sub(cpu0))
}

fn main() {
    let a = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("ftpload: {e}");
            std::process::exit(2);
        }
    };
    let tls = a.tls.then(tls_config);
    let start = Arc::new(Barrier::new(a.sessions + 1));
    let threads: Vec<_> = (0..a.sessions)
        .map(|n| {
            let (a, tls, start) = (a.clone(), tls.clone(), start.clone());
            std::thread::spawn(move || run_session(&a, n, tls, &start))
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let (mut failed, mut cpu) = (0, Duration::ZERO);
    for t in threads {
        match t.join().unwrap_or_else(|_| Err("session panicked".into())) {
            Ok(used) => cpu += used,
            Err(e) => {
                eprintln!("ftpload: {e}");
                failed += 1;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let files = (a.sessions - failed) * a.files;
    println!(
        "files={files} secs={secs:.3} files_per_s={:.0} client_cpu_us_per_file={:.0} failed_sessions={failed}",
        files as f64 / secs,
        cpu.as_micros() as f64 / files.max(1) as f64
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
