//! Every S3 request of a Pipe, over one client of kept-alive HTTP connections ([`Client`]),
//! signed here with AWS Signature V4 in the `Authorization` header (rust-s3's signing
//! functions; the payload `UNSIGNED-PAYLOAD`, its Content-MD5 signed instead so the server
//! still verifies the body). One client per Pipe means one place that knows the Pipe's
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

use http::{HeaderMap, HeaderName, HeaderValue};
use s3::Region;
use s3::error::S3Error;
use s3::signing;
use url::Url;

use super::classify::transport_text;
use crate::secret::Secret;
use crate::store::destination::redact_proxy;

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
    region: Region,
    access_key: String,
    secret_key: Secret,
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
    pub fn new(
        bucket: &s3::Bucket,
        access_key: &str,
        secret_key: &Secret,
        route: &Route,
    ) -> Result<Client, String> {
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
            base: bucket.url(),
            region: bucket.region(),
            access_key: access_key.to_string(),
            secret_key: secret_key.clone(),
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
        let url = self.url(key, query)?;
        match self.send_once(method, &url, headers.clone(), body) {
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
                self.send_once(method, &url, headers, body)
                    .map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    fn send_once(
        &self,
        method: &str,
        url: &Url,
        mut headers: HeaderMap,
        body: &[u8],
    ) -> Result<Answer, (S3Error, Option<i64>)> {
        self.sign(method, url, &mut headers)
            .map_err(|e| (e, None))?;
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_bytes());
        }
        let req = req.body(body).map_err(|e| {
            let e = S3Error::HttpFailWithBody(0, format!("building the request: {e}"));
            (e, None)
        })?;
        let agent = self.agent();
        let sent = agent.run(req);
        // A long request (a part, a copy) counts until its answer, not from its start.
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).used = Instant::now();
        let mut resp = sent.map_err(|e| {
            let text = format!("{}{}", transport_text(&e), self.via);
            (S3Error::Io(std::io::Error::other(text)), None)
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
            Ok(Answer {
                headers,
                body: text,
            })
        } else {
            let status = if (200..300).contains(&status) {
                500
            } else {
                status
            };
            // A skew refusal carries the endpoint's time: its `ServerTime` (AWS), else
            // the answer's `Date`.
            let server = (status == 403 && text.contains("RequestTimeTooSkewed"))
                .then(|| {
                    xml_text(&text, "ServerTime")
                        .and_then(|t| parse_iso8601(&t))
                        .or_else(|| {
                            headers
                                .get(http::header::DATE)
                                .and_then(|d| d.to_str().ok())
                                .and_then(parse_http_date)
                        })
                })
                .flatten();
            Err((S3Error::HttpFailWithBody(status, text), server))
        }
    }

    fn url(&self, key: &str, query: &[(&str, &str)]) -> Result<Url, S3Error> {
        let mut s = format!("{}/{}", self.base, signing::uri_encode(key, false));
        for (i, (k, v)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&signing::uri_encode(k, true));
            if !v.is_empty() {
                s.push('=');
                s.push_str(&signing::uri_encode(v, true));
            }
        }
        Ok(Url::parse(&s)?)
    }

    /// Adds `host`, `x-amz-date`, `x-amz-content-sha256` and the `Authorization` that
    /// signs them with every other header.
    fn sign(&self, method: &str, url: &Url, headers: &mut HeaderMap) -> Result<(), S3Error> {
        use hmac::Mac;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(S3Error::HttpFailWithBody(0, format!("no host in {url}"))),
        };
        let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(self.skew_secs());
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let value = |s: &str| {
            HeaderValue::try_from(s)
                .map_err(|e| S3Error::HttpFailWithBody(0, format!("header value: {e}")))
        };
        headers.insert(http::header::HOST, value(&host)?);
        headers.insert(HeaderName::from_static("x-amz-date"), value(&stamp)?);
        headers.insert(
            HeaderName::from_static("x-amz-content-sha256"),
            HeaderValue::from_static(UNSIGNED),
        );
        let canonical = format!(
            "{method}\n{}\n{}\n{}\n\n{}\n{UNSIGNED}",
            signing::canonical_uri_string(url),
            signing::canonical_query_string(url),
            canonical_headers(headers)?,
            signing::signed_header_string(headers),
        );
        let to_sign = signing::string_to_sign(&now, &self.region, &canonical)?;
        let key = signing::signing_key(&now, self.secret_key.expose(), &self.region, "s3")?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
            .map_err(|e| S3Error::HttpFailWithBody(0, format!("signing: {e}")))?;
        mac.update(to_sign.as_bytes());
        let signature = crate::support::hex(&mac.finalize().into_bytes());
        let auth = signing::authorization_header(
            &self.access_key,
            &now,
            &self.region,
            &signing::signed_header_string(headers),
            &signature,
        )?;
        headers.insert(http::header::AUTHORIZATION, value(&auth)?);
        Ok(())
    }
}

const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// SigV4's canonical headers: `name:value` lines in the order of the names. (rust-s3's
/// `canonical_header_string` sorts the whole lines, which puts `x-amz-copy-source-range`
/// before `x-amz-copy-source`: every server refuses that signature.)
fn canonical_headers(headers: &HeaderMap) -> Result<String, S3Error> {
    let mut lines = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        lines.push((
            name.as_str().to_lowercase(),
            value.to_str()?.trim().to_string(),
        ));
    }
    lines.sort();
    Ok(lines
        .iter()
        .map(|(n, v)| format!("{n}:{v}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Unix seconds of an HTTP date (`Sun, 06 Dec 2026 22:50:00 GMT`, RFC 9110's IMF-fixdate).
fn parse_http_date(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace().skip(1);
    let day: u8 = parts.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? as u8 + 1;
    let year: i32 = parts.next()?.parse().ok()?;
    unix_secs(year, month, day, parts.next()?)
}

/// Unix seconds of an ISO 8601 UTC time (`2026-12-06T22:50:00Z`, S3's `ServerTime`).
fn parse_iso8601(s: &str) -> Option<i64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-');
    let year = d.next()?.parse().ok()?;
    let month = d.next()?.parse().ok()?;
    let day = d.next()?.parse().ok()?;
    unix_secs(year, month, day, time.split('.').next()?)
}

fn unix_secs(year: i32, month: u8, day: u8, hms: &str) -> Option<i64> {
    let mut t = hms.split(':').map(|n| n.parse::<u8>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let at = date.with_hms(h, m, s).ok()?.assume_utc();
    Some(at.unix_timestamp())
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

/// The text of one XML element of an S3 answer, unescaped.
#[cfg(test)]
#[test]
fn server_times_read_as_unix_seconds() {
    assert_eq!(
        parse_http_date("Sun, 06 Dec 2026 22:50:00 GMT"),
        Some(1_796_597_400)
    );
    assert_eq!(parse_iso8601("2026-12-06T22:50:00Z"), Some(1_796_597_400));
    assert_eq!(
        parse_iso8601("2026-12-06T22:50:00.123Z"),
        Some(1_796_597_400)
    );
    assert_eq!(parse_http_date("yesterday"), None);
    assert_eq!(parse_iso8601("2026-13-06T22:50:00Z"), None);
}

pub fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&close)?;
    Some(
        body[start..start + len]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_reads_s3_answers() {
        let body = "<InitiateMultipartUploadResult><UploadId>a&amp;b</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_text(body, "UploadId").as_deref(), Some("a&b"));
        assert_eq!(xml_text(body, "Key"), None);
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
