//! Every S3 request of a Pipe, over one client of kept-alive HTTP connections ([`Client`]),
//! signed here with AWS Signature V4 in the `Authorization` header (rust-s3's signing
//! functions; the payload `UNSIGNED-PAYLOAD`, its Content-MD5 signed instead so the server
//! still verifies the body). One client per Pipe means one place that knows the Pipe's
//! trust anchors (`--ca-file`) and its proxy (`--proxy`, or the daemon's environment).

use std::time::Duration;

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
    agent: ureq::Agent,
    /// The bucket's URL, e.g. `https://s3.example.com/bucket` (path style).
    base: String,
    region: Region,
    access_key: String,
    secret_key: Secret,
    /// "via proxy http://host:port", for error messages (never with credentials).
    via: String,
}

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
            .max_idle_connections_per_host(crate::store::pipes::MAX_PARALLEL as usize);
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
            agent: config.build().into(),
            base: bucket.url(),
            region: bucket.region(),
            access_key: access_key.to_string(),
            secret_key: secret_key.clone(),
            via,
        })
    }

    /// Sends one signed request for `key` (`""`: the bucket) with `query` and `headers`;
    /// reads the whole answer so the connection can be used again. A 2xx answer whose body
    /// is an S3 `<Error>` (a copy or a completion can fail that way) is an error too.
    pub fn send(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        mut headers: HeaderMap,
        body: &[u8],
    ) -> Result<Answer, S3Error> {
        let url = self.url(key, query)?;
        self.sign(method, &url, &mut headers)?;
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_bytes());
        }
        let req = req
            .body(body)
            .map_err(|e| S3Error::HttpFailWithBody(0, format!("building the request: {e}")))?;
        let mut resp = self.agent.run(req).map_err(|e| {
            S3Error::Io(std::io::Error::other(format!(
                "{}{}",
                transport_text(&e),
                self.via
            )))
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
            Err(S3Error::HttpFailWithBody(status, text))
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
        let now = time::OffsetDateTime::now_utc();
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
        let canonical = signing::canonical_request(method, url, headers, UNSIGNED)?;
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
}
