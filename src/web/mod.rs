//! The gateway's HTTP listener (`serve --http ADDR`, also `--metrics ADDR`): the
//! read-only status page at `/` and Prometheus metrics at `/metrics`. Requests are
//! parsed by `httparse`; one request per connection, bounded in size and time; `GET`
//! and `HEAD` only, and nothing served changes state.
//!
//! Bound to a loopback address, everything is open. Bound elsewhere, every request needs
//! the token `ftpgate http-token` printed: as `Authorization: Bearer TOKEN` (Prometheus)
//! or `?token=TOKEN` (a browser). The state keeps its SHA-256 only; the check compares
//! digests in constant time.

pub mod minutes;
pub mod page;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpListener;

/// Longest request read (headers; there is no body).
const MAX_REQUEST: usize = 8 << 10;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the listener serves, built off the executor for each request.
pub trait Site: Send + Sync {
    /// The Prometheus exposition text.
    fn metrics(&self) -> String;
    /// The status page.
    fn page(&self) -> String;
    /// The SHA-256 of the token (hex), if one was made.
    fn token_digest(&self) -> Option<String>;
}

/// The hex SHA-256 of a token, as the state keeps it.
pub fn digest(token: &str) -> String {
    crate::support::hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `given` hashes to `want` (hex digests), in time independent of where they
/// differ.
fn same_digest(given: &str, want: &str) -> bool {
    let (a, b) = (digest(given), want.to_ascii_lowercase());
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A parsed request: what it asks for and the token it carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Asked {
    pub head: bool,
    pub path: String,
    pub token: Option<String>,
}

/// Why a request is answered with an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a complete, valid HTTP request.
    Bad,
    /// A method other than GET or HEAD.
    Method,
}

/// Parses one request (pure): `None` while more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<Asked>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(_)) => {}
        Err(_) => return Err(Refusal::Bad),
    }
    let head = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Err(Refusal::Method),
    };
    let target = req.path.ok_or(Refusal::Bad)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("authorization")
            && let Ok(v) = std::str::from_utf8(h.value)
            && let Some(t) = v.trim().strip_prefix("Bearer ")
        {
            token = Some(t.trim().to_string());
        }
    }
    Ok(Some(Asked {
        head,
        path: path.to_string(),
        token,
    }))
}

fn response(status: &str, content_type: &str, body: &str, head: bool, extra: &str) -> String {
    format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:\r\n\
Connection: close\r\n{extra}\r\n{}",
        body.len(),
        if head { "" } else { body }
    )
}

/// The answer to one request (blocking: builds the page or the metrics).
pub fn answer(site: &dyn Site, open: bool, asked: Result<Asked, Refusal>) -> String {
    let text = "text/plain; charset=utf-8";
    let asked = match asked {
        Ok(a) => a,
        Err(Refusal::Method) => {
            return response(
                "405 Method Not Allowed",
                text,
                "only GET here.\n",
                false,
                "Allow: GET, HEAD\r\n",
            );
        }
        Err(Refusal::Bad) => return response("400 Bad Request", text, "bad request.\n", false, ""),
    };
    if !open {
        let ok = match (site.token_digest(), &asked.token) {
            (Some(want), Some(given)) => same_digest(given, &want),
            _ => false,
        };
        if !ok {
            return response(
                "401 Unauthorized",
                text,
                "a token is needed here: add ?token=TOKEN or an Authorization: Bearer header (see 'ftpgate http-token').\n",
                asked.head,
                "WWW-Authenticate: Bearer realm=\"ftpgate\"\r\n",
            );
        }
    }
    match asked.path.as_str() {
        "/" | "/index.html" => response(
            "200 OK",
            "text/html; charset=utf-8",
            &site.page(),
            asked.head,
            "",
        ),
        "/metrics" => response(
            "200 OK",
            "text/plain; version=0.0.4",
            &site.metrics(),
            asked.head,
            "",
        ),
        _ => response(
            "404 Not Found",
            text,
            "only / and /metrics here.\n",
            asked.head,
            "",
        ),
    }
}

/// Serves `listener` until the process ends.
pub async fn serve(listener: TcpListener, site: Arc<dyn Site>) {
    let open = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            smol::Timer::after(Duration::from_millis(100)).await;
            continue;
        };
        let site = site.clone();
        smol::spawn(async move {
            let Some(asked) = read_request(&mut stream).await else {
                return;
            };
            let reply = smol::unblock(move || answer(&*site, open, asked)).await;
            let _ = stream.write_all(reply.as_bytes()).await;
        })
        .detach();
    }
}

/// Reads until the request's headers are complete; `None` when the client gives up or
/// takes too long (nothing is answered then).
async fn read_request(stream: &mut smol::net::TcpStream) -> Option<Result<Asked, Refusal>> {
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            match parse(&buf) {
                Ok(None) if buf.len() < MAX_REQUEST => continue,
                Ok(None) => return Some(Err(Refusal::Bad)),
                Ok(Some(asked)) => return Some(Ok(asked)),
                Err(refused) => return Some(Err(refused)),
            }
        }
    };
    smol::future::or(read, async {
        smol::Timer::after(READ_TIMEOUT).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Site for Fixed {
        fn metrics(&self) -> String {
            "ftpgate_sessions 1\n".into()
        }
        fn page(&self) -> String {
            "<html>page</html>".into()
        }
        fn token_digest(&self) -> Option<String> {
            Some(digest("right-token"))
        }
    }

    fn ask(open: bool, req: &str) -> String {
        answer(&Fixed, open, parse(req.as_bytes()).map(|a| a.unwrap()))
    }

    #[test]
    fn off_loopback_every_request_needs_the_token() {
        assert!(ask(true, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 200 OK"));
        assert!(ask(true, "GET /metrics HTTP/1.0\r\n\r\n").ends_with("ftpgate_sessions 1\n"));
        assert!(ask(false, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 401"));
        assert!(ask(false, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 401"));
        assert!(ask(false, "GET /?token=wrong HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 401"));
        assert!(ask(false, "GET /?token=right-token HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 200"));
        let bearer = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer right-token\r\n\r\n";
        assert!(ask(false, bearer).starts_with("HTTP/1.0 200"));
        let wrong = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer right-tokeN\r\n\r\n";
        assert!(ask(false, wrong).starts_with("HTTP/1.0 401"));
    }

    #[test]
    fn only_reads_are_served() {
        assert!(ask(true, "POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 405"));
        assert!(ask(true, "GET /admin HTTP/1.1\r\n\r\n").starts_with("HTTP/1.0 404"));
        let head = ask(true, "HEAD / HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.0 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(b"\x00\x01 nonsense\r\n\r\n"), Err(Refusal::Bad));
    }
}
