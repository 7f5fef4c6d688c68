//! The status page in a real browser (Debian's `chromium`, headless), and the token its
//! listener asks for when it is bound off loopback (in a network namespace of the
//! test's own, so nothing outside the machine can reach it).

mod common;

use std::process::Command;

use common::*;

fn chromium(args: &[&str], url: &str) -> std::process::Output {
    assert!(
        have("chromium"),
        "chromium is installed by scripts/test-all"
    );
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}

/// Makes a new token for the HTTP listener and returns what `http-token` printed.
fn http_token(g: &Gate) -> String {
    let out = g.run(&["http-token"]).ok().to_string();
    out.trim().rsplit(' ').next().unwrap().to_string()
}

fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// A camera uploads; the page, loaded by a real browser, shows the file and its Sender;
/// a screenshot is taken; neither the page nor `/metrics` shows any secret.
#[test]
fn the_status_page_shows_the_upload_and_its_sender_in_a_real_browser() {
    let g = Gate::provisioned();
    let hook_secret = "hook-secret-never-shown";
    g.run_stdin(
        &[
            "hook",
            "add",
            "alerts",
            "--url",
            "http://127.0.0.1:9/none",
            "--secret-stdin",
        ],
        hook_secret,
    )
    .ok();
    let token = http_token(&g);
    let addr = format!("127.0.0.1:{}", free_port());
    let d = g.serve(&["--http", &addr]);
    let mut c = Raw::login(d.ftp());
    assert_eq!(c.stor("cam7-snap-0042.jpg", &data(70_001, 4)).code, 226);
    g.wait_delivered(20);
    let url = format!("http://{addr}/");

    let dom = chromium(&["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let section = |id: &str| {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("#{id} in {dom}"));
        let end = dom[start..].find("</table>").unwrap() + start;
        dom[start..end].to_string()
    };
    assert!(section("senders").contains("cam1"), "{dom}");
    assert!(section("senders").contains("/cam7-snap-0042.jpg"), "{dom}");
    assert!(section("events").contains("upload.received"), "{dom}");
    assert!(section("events").contains("/cam7-snap-0042.jpg"), "{dom}");
    assert!(section("pipes").contains("line1"), "{dom}");
    assert!(dom.contains("<svg"), "the chart");

    let shot = g.state().join("page.png");
    let out = chromium(
        &[
            "--window-size=1100,1300",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );

    let metrics = get(&addr, "/metrics");
    assert!(
        metrics.contains("ftpgate_sender_uploads_total{sender=\"cam1\"} 1"),
        "{metrics}"
    );
    for text in [&dom, &metrics] {
        for secret in [PW, hook_secret, token.as_str()] {
            assert!(
                !text.contains(secret),
                "a secret on the page or in /metrics"
            );
        }
    }
    // Read-only: anything but GET and HEAD is refused.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 405"), "{answer}");
}

/// Bound off loopback (an address of the test's own network namespace), the page and
/// `/metrics` answer 401 without the token or with a wrong one, and 200 with it, as a
/// query parameter or a bearer header.
#[test]
fn off_loopback_the_page_and_metrics_need_the_token() {
    assert!(have("unshare") && have("ip"), "util-linux and iproute2");
    let g = Gate::provisioned();
    let token = http_token(&g);
    let script = format!(
        r#"set -e
ip link set lo up
ip addr add 10.77.0.1/32 dev lo
"{bin}" --state "{state}" serve --listen 127.0.0.1:{ftp} --http 10.77.0.1:8080 2>"{state}/serve.log" &
pid=$!
for i in $(seq 100); do curl -s -o /dev/null http://10.77.0.1:8080/ && break; sleep 0.1; done
code() {{ curl -s -o /dev/null -w '%{{http_code}}' "$@"; echo; }}
code http://10.77.0.1:8080/
code "http://10.77.0.1:8080/?token=wrong"
code -H "Authorization: Bearer wrong" http://10.77.0.1:8080/metrics
code "http://10.77.0.1:8080/?token={token}"
code -H "Authorization: Bearer {token}" http://10.77.0.1:8080/metrics
kill $pid
wait $pid || true
"#,
        bin = BIN,
        state = g.state().display(),
        ftp = free_port(),
    );
    let out = Command::new("unshare")
        .args(["--net", "--map-root-user", "sh", "-c", &script])
        .output()
        .unwrap();
    let codes = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        codes.lines().collect::<Vec<_>>(),
        ["401", "401", "401", "200", "200"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
