//! Every S3 request of a Pipe, over one client of kept-alive HTTP connections ([`Client`]),
//! signed with AWS Signature V4 ([`super::sigv4`]; the payload `UNSIGNED-PAYLOAD`, its
//! checksum header signed instead so the server still verifies the body). One client per Pipe means one place that knows the Pipe's
//! trust anchors (`--ca-file`) and its proxy (`--proxy`, or the daemon's environment).
//!
//! **A wrong clock.** Many gateways have no real-time clock and many plant LANs no NTP,
//! while S3 refuses a request signed more than 15 minutes off its own time
//! (`RequestTimeTooSkewed`). As the AWS SDKs do, the client then learns the offset from
//! the answer's `Date` (or its `ServerTime`), signs with the corrected time and tries
//! once more; the offset stays for the next requests and `status` shows it.
//!
//! **An idle Pipe keeps no connection.** Each kept-alive connection holds its read and
//! write buffers (256 KiB) and its TLS state, and ureq purges idle ones only when the
//! pool is next used: after a drain, a Pipe kept about 3 MiB for good
//! (docs/BENCHMARKS.md). [`Client::rest`] lets the whole pool go once nothing was sent
//! for [`REST_AFTER`]; the next request opens a connection again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::classify::{transport_text, xml_text};
use super::sigv4::{self, Signer, UNSIGNED_PAYLOAD, uri_encode};
use crate::calendar;
use crate::secret::Secret;
use crate::store::destination::redact_proxy;

/// Why an S3 request failed, before [`super::classify`] says what that means.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The endpoint answered with this status and body (a 2xx whose body is an S3
    /// `<Error>` counts as 500).
    #[error("HTTP {0}: {1}")]
    Status(u16, String),
    /// No answer: the connection, TLS, DNS or the proxy failed (the transport's sentence).
    #[error("{0}")]
    Transport(String),
    /// The request could not be made (a header value that is not text, no host).
    #[error("the request could not be made: {0}")]
    Request(String),
}

/// What the endpoint answered: the status is 2xx (anything else is an error).
pub struct Answer {
    pub headers: HeaderMap,
    pub body: String,
}

/// How a Pipe reaches its endpoint.
#[derive(Default)]
pub struct Route {
    /// PEM certificates: the CAs that may sign the endpoint's certificate (instead of the
    /// public web PKI).
    pub ca_pem: Option<String>,
    /// `http://[user:password@]host:port`: overrides `HTTPS_PROXY`/`HTTP_PROXY`.
    pub proxy: Option<Secret>,
}

pub struct Client {
    /// The kept-alive connections, made again from `config` after a rest.
    pool: Mutex<Pool>,
    config: ureq::config::Config,
    /// The bucket's URL, e.g. `https://s3.example.com/bucket` (path style).
    base: String,
    /// `host[:port]` of `base`, and the path the keys follow (`/bucket` or empty).
    host: String,
    base_path: String,
    signer: Signer,
    /// "via proxy http://host:port", for error messages (never with credentials).
    via: String,
    /// The endpoint's clock minus ours, in seconds, learned from a skew refusal.
    skew_secs: Mutex<i64>,
}

/// The agent (its pool of connections) while the Pipe is sending, and when it last did.
struct Pool {
    agent: Option<ureq::Agent>,
    used: Instant,
}

/// How long a Pipe's connections outlive its last request: ureq's own limit for reusing
/// an idle connection (`max_idle_age`, 15 s), past which they would only be closed on
/// the next request anyway, and below the 20 s after which S3 closes them itself.
pub const REST_AFTER: Duration = Duration::from_secs(15);

/// Longest S3 answer body read (error documents and small XML answers).
const MAX_ANSWER: u64 = 1 << 20;

impl Client {
    /// A client for the bucket at `base` (see [`sigv4::bucket_url`]).
    pub fn new(base: String, signer: Signer, route: &Route) -> Result<Client, String> {
        let (host, base_path) = split_base(&base)?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(300)))
            .max_idle_connections_per_host(crate::store::pipes::MAX_PARALLEL as usize)
            .max_idle_age(REST_AFTER);
        if let Some(pem) = &route.ca_pem {
            let certs = parse_cas(pem)?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        let proxy = match &route.proxy {
            Some(url) => Some(
                ureq::Proxy::new(url.expose())
                    .map_err(|e| format!("invalid proxy {}: {e}", redact_proxy(url.expose())))?,
            ),
            None => ureq::Proxy::try_from_env(),
        };
        let via = match &proxy {
            Some(p) => format!(" via proxy {}:{}", p.host(), p.port()),
            None => String::new(),
        };
        config = config.proxy(proxy);
        Ok(Client {
            pool: Mutex::new(Pool {
                agent: None,
                used: Instant::now(),
            }),
            config: config.build(),
            base,
            host,
            base_path,
            signer,
            via,
            skew_secs: Mutex::new(0),
        })
    }

    /// The agent to send with (made again after a rest); the Pipe counts as sending now.
    fn agent(&self) -> ureq::Agent {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.used = Instant::now();
        pool.agent
            .get_or_insert_with(|| ureq::Agent::new_with_config(self.config.clone()))
            .clone()
    }

    /// Lets the kept-alive connections go, with their buffers, if nothing was sent for
    /// `quiet`. A request still running keeps its own connection until it ends.
    pub fn rest(&self, quiet: Duration) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.agent.is_some() && pool.used.elapsed() >= quiet {
            pool.agent = None;
        }
    }

    /// How far the endpoint's clock is from ours (seconds, positive: it is ahead), once a
    /// refusal taught it.
    pub fn skew_secs(&self) -> i64 {
        *self.skew_secs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one signed request for `key` (`""`: the bucket) with `query` and `headers`;
    /// reads the whole answer so the connection can be used again. A 2xx answer whose body
    /// is an S3 `<Error>` (a copy or a completion can fail that way) is an error too.
    pub fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: HeaderMap,
        body: &[u8],
    ) -> Result<Answer, S3Error> {
        let path = format!("{}/{}", self.base_path, uri_encode(key, false));
        match self.send_once(method, &path, query, headers.clone(), body) {
            Err((e, Some(server))) => {
                let skew = server - time::OffsetDateTime::now_utc().unix_timestamp();
                let mut s = self.skew_secs.lock().unwrap_or_else(|e| e.into_inner());
                if *s == skew {
                    // Signed with that time already: another problem, or the clocks drift.
                    return Err(e);
                }
                *s = skew;
                drop(s);
                log::warn!(
                    "{}: the endpoint's clock is {skew} s off this gateway's; requests are signed with its time from now on (set this box's clock, e.g. with NTP)",
                    self.base
                );
                self.send_once(method, &path, query, headers, body)
                    .map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// One try: `Err((why, Some(server time)))` when the endpoint refused the request's
    /// time and said its own.
    fn send_once(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        mut headers: HeaderMap,
        body: &[u8],
    ) -> Result<Answer, (S3Error, Option<i64>)> {
        let signed = sigv4::Request {
            method,
            host: &self.host,
            path,
            query,
        };
        let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(self.skew_secs());
        self.signer
            .sign(&signed, UNSIGNED_PAYLOAD, &mut headers, now)
            .map_err(|e| (S3Error::Request(e), None))?;
        let url = format!("{}{path}{}", self.origin(), query_string(query));
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_bytes());
        }
        let req = req
            .body(body)
            .map_err(|e| (S3Error::Request(format!("building the request: {e}")), None))?;
        let agent = self.agent();
        let sent = agent.run(req);
        // A long request (a part, a copy) counts until its answer, not from its start.
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).used = Instant::now();
        let mut resp = sent.map_err(|e| {
            let text = format!("{}{}", transport_text(&e), self.via);
            (S3Error::Transport(text), None)
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .unwrap_or_default();
        if (200..300).contains(&status) && !text.contains("<Error>") {
            return Ok(Answer {
                headers,
                body: text,
            });
        }
        let status = if (200..300).contains(&status) {
            500
        } else {
            status
        };
        let server = (status == 403 && text.contains("RequestTimeTooSkewed"))
            .then(|| server_time(&text, &headers))
            .flatten();
        Err((S3Error::Status(status, text), server))
    }

    /// `scheme://host[:port]` of the bucket's URL.
    fn origin(&self) -> &str {
        &self.base[..self.base.len() - self.base_path.len()]
    }
}

/// `?name=value&...` of a request's query, each part encoded (empty without one).
fn query_string(query: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in query.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(&uri_encode(k, true));
        if !v.is_empty() {
            s.push('=');
            s.push_str(&uri_encode(v, true));
        }
    }
    s
}

/// The endpoint's time a skew refusal carries: its `ServerTime` (AWS), else the
/// answer's `Date`.
fn server_time(body: &str, headers: &HeaderMap) -> Option<i64> {
    xml_text(body, "ServerTime")
        .and_then(|t| calendar::parse_iso8601(&t))
        .or_else(|| {
            headers
                .get(http::header::DATE)
                .and_then(|d| d.to_str().ok())
                .and_then(calendar::parse_http_date)
        })
}

/// The `host[:port]` and the path of a bucket's URL (`http://h:9000/plant`: `h:9000`,
/// `/plant`).
fn split_base(base: &str) -> Result<(String, String), String> {
    let rest = base
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("no scheme in {base}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(format!("no host in {base}"));
    }
    Ok((host.to_string(), path.to_string()))
}

/// The certificates of a PEM file, or why it holds none.
pub fn parse_cas(pem: &str) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("the CA file is not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(
            "the CA file holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)".into(),
        );
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_url_splits_into_the_host_signed_and_the_path_keys_follow() {
        let split = |b: &str| split_base(b).unwrap();
        assert_eq!(
            split("http://127.0.0.1:9000/plant"),
            ("127.0.0.1:9000".into(), "/plant".into())
        );
        assert_eq!(
            split("https://plant.s3.eu-west-1.amazonaws.com"),
            ("plant.s3.eu-west-1.amazonaws.com".into(), String::new())
        );
        assert!(split_base("http:///plant").is_err());
        assert!(split_base("plant").is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(parse_cas("hello").unwrap_err().contains("no certificate"));
    }

    /// This process's TCP connections to `port` that are open (ESTABLISHED), from
    /// `/proc/net/tcp`: the server's side of each has `port` as its local port instead.
    fn open_to(port: u16) -> usize {
        let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
        let remote = format!(":{port:04X}");
        table
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[2].ends_with(&remote) && f[3] == "01"
            })
            .count()
    }

    #[test]
    fn an_idle_client_lets_its_connections_go_and_opens_one_again_when_asked() {
        let server = super::super::test_server::s3();
        let sink = server.sink();
        let list = || {
            let q = [("list-type", "2"), ("max-keys", "1")];
            sink.client.send("GET", "", &q, HeaderMap::new(), &[])
        };
        // Four requests at once: up to four connections, kept alive afterwards.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| list().unwrap());
            }
        });
        let kept = open_to(server.port);
        assert!(kept >= 1, "no connection kept alive");

        // Not idle for long enough yet: kept.
        sink.client.rest(Duration::from_secs(60));
        assert_eq!(open_to(server.port), kept);
        // Idle long enough: every connection goes, with its buffers.
        sink.client.rest(Duration::ZERO);
        assert_eq!(
            open_to(server.port),
            0,
            "connections still open after a rest"
        );

        // The next request opens one again.
        list().unwrap();
        assert_eq!(open_to(server.port), 1);
    }
}
