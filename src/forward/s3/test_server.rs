//! For the S3 sink's unit tests: a real S3 server (s3s-fs) on a loopback port.

use std::process::{Command, Stdio};

use super::S3Sink;
use crate::forward::sink::Meta;

/// s3s-fs on a free loopback port with bucket `plant` (`S3S_FS`, else the test command's
/// cache), killed on drop.
pub(super) struct S3 {
    child: std::process::Child,
    pub(super) port: u16,
    pub(super) root: tempfile::TempDir,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// A sink for bucket `plant` on this server.
    pub(super) fn sink(&self) -> S3Sink {
        let settings = crate::store::S3Settings {
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            region: "us-east-1".into(),
            path_style: true,
            access_key: "AK".into(),
            secret_key: "SK".to_string().into(),
            ca_pem: None,
            proxy: None,
        };
        S3Sink::new("plant", &settings, None).unwrap()
    }
}

pub(super) fn s3() -> S3 {
    let bin = std::env::var("S3S_FS").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/ftpgate-test/bin/s3s-fs")
    });
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("plant")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "AK", "--secret-key", "SK"])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin} (scripts/test-all installs it): {e}"));
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    S3 { child, port, root }
}

/// The metadata of the tests' puts; `only_new` as a `refuse` Pipe sends it.
pub(super) fn meta(only_new: bool) -> Meta {
    Meta {
        sender: "cam".into(),
        pipe: "cams".into(),
        gateway: "gw".into(),
        mtime: 1_700_000_000,
        only_new,
        upload: "0123456789abcdef0123456789abcdef".into(),
    }
}
