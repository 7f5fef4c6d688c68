//! AWS Signature Version 4 for S3 requests, and the addressing of a bucket (pure: no I/O,
//! the time is given). Signed in the `Authorization` header; the payload hash is whatever
//! the caller names (our requests send `UNSIGNED-PAYLOAD` and a checksum header the
//! server verifies instead, see `s3::http`).
//!
//! The rules, from AWS's "Signature Version 4 signing process" for S3:
//! * the canonical URI is the path, each byte outside `A-Z a-z 0-9 - . _ ~` (and `/`)
//!   percent-encoded once, upper-case hex (S3 does not encode twice);
//! * the canonical query is every `name=value`, both encoded with `/` encoded too, sorted;
//! * the canonical headers are every header sent, `name:value` lines sorted by name, with
//!   names in lower case and values trimmed; the signed headers are their names;
//! * the key is HMAC-SHA256 chained over `AWS4` + secret, the date, the region, `s3` and
//!   `aws4_request`.
//!
//! Checked against AWS's published examples (tests below) and, in every delivery test,
//! by s3s-fs, which verifies each signature.

use std::fmt::Write;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::secret::Secret;
use crate::support::hex;

/// What the payload hash says when the body is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// `s` percent-encoded for S3: every byte but `A-Z a-z 0-9 - . _ ~`, and `/` unless
/// `encode_slash` (a key's separators stay, a query value's do not).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (b == b'/' && !encode_slash);
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Where a bucket's requests go: `scheme://host[:port][/bucket]`, with no trailing `/`.
///
/// * With an endpoint (`http://127.0.0.1:9000`, `https://minio.plant.lan`): path style
///   puts the bucket in the path; otherwise it is the first label of the host.
/// * Without one, AWS: `s3.REGION.amazonaws.com` (`.amazonaws.com.cn` in China), the
///   form every region answers.
pub fn bucket_url(bucket: &str, endpoint: Option<&str>, region: &str, path_style: bool) -> String {
    let (scheme, host) = match endpoint {
        Some(e) => {
            let (scheme, rest) = e.split_once("://").unwrap_or(("https", e));
            (scheme, rest.trim_end_matches('/').to_string())
        }
        None if region.starts_with("cn-") => ("https", format!("s3.{region}.amazonaws.com.cn")),
        None => ("https", format!("s3.{region}.amazonaws.com")),
    };
    if path_style {
        format!("{scheme}://{host}/{}", uri_encode(bucket, true))
    } else {
        format!("{scheme}://{bucket}.{host}")
    }
}

/// One Pipe's credentials and region: signs its requests.
pub struct Signer {
    pub access_key: String,
    pub secret_key: Secret,
    pub region: String,
}

/// A request as signed: method, host (with `:port` unless the scheme's own), the encoded
/// path and the query as `(name, value)` pairs, unencoded.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
}

impl Signer {
    /// Adds `host`, `x-amz-date`, `x-amz-content-sha256` (`payload`) and the
    /// `Authorization` that signs them and every other header of `headers`, at `now`.
    pub fn sign(
        &self,
        req: &Request,
        payload: &str,
        headers: &mut HeaderMap,
        now: time::OffsetDateTime,
    ) -> Result<(), String> {
        let date = format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let stamp = format!(
            "{date}T{:02}{:02}{:02}Z",
            now.hour(),
            now.minute(),
            now.second()
        );
        let value =
            |s: &str| HeaderValue::try_from(s).map_err(|e| format!("header value {s:?}: {e}"));
        headers.insert(http::header::HOST, value(req.host)?);
        headers.insert("x-amz-date", value(&stamp)?);
        headers.insert("x-amz-content-sha256", value(payload)?);

        let (canonical_headers, signed) = canonical_headers(headers)?;
        let canonical = format!(
            "{}\n{}\n{}\n{canonical_headers}\n\n{signed}\n{payload}",
            req.method,
            req.path,
            canonical_query(req.query),
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = format!("AWS4{}", self.secret_key.expose()).into_bytes();
        for part in [date.as_str(), &self.region, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed},Signature={signature}",
            self.access_key
        );
        headers.insert(http::header::AUTHORIZATION, value(&auth)?);
        Ok(())
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `name=value` pairs, each encoded with `/` too, sorted, joined by `&`.
fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// The canonical header lines, sorted by name (not by whole line: that would put
/// `x-amz-copy-source-range` before `x-amz-copy-source`), and the signed names.
fn canonical_headers(headers: &HeaderMap) -> Result<(String, String), String> {
    let mut lines = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| format!("header {name} is not text"))?;
        lines.push((name.as_str().to_ascii_lowercase(), value.trim().to_string()));
    }
    lines.sort();
    let text: Vec<String> = lines.iter().map(|(n, v)| format!("{n}:{v}")).collect();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    Ok((text.join("\n"), names.join(";")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_signer() -> Signer {
        Signer {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1".into(),
        }
    }

    fn may_24_2013() -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(1_369_353_600).unwrap()
    }

    /// Signs one of AWS's examples (an empty payload, 2013-05-24 00:00:00 UTC) and
    /// returns its `Authorization`.
    fn sign_example(method: &str, path: &str, query: &[(&str, &str)], mut h: HeaderMap) -> String {
        let req = Request {
            method,
            host: "examplebucket.s3.amazonaws.com",
            path,
            query,
        };
        let empty = hex(&Sha256::digest(b""));
        example_signer()
            .sign(&req, &empty, &mut h, may_24_2013())
            .unwrap();
        h[http::header::AUTHORIZATION].to_str().unwrap().to_string()
    }

    fn signature(auth: &str) -> &str {
        auth.rsplit_once("Signature=").unwrap().1
    }

    /// AWS's example "GET Object" (the S3 API reference, "Examples: Signature
    /// Calculations in AWS Signature Version 4").
    #[test]
    fn signs_aws_s_get_object_example() {
        let mut headers = HeaderMap::new();
        headers.insert("range", HeaderValue::from_static("bytes=0-9"));
        let auth = sign_example("GET", "/test.txt", &[], headers);
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        ));
        assert_eq!(
            signature(&auth),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's example "GET Bucket Lifecycle": a query parameter without a value.
    #[test]
    fn signs_aws_s_lifecycle_example() {
        let auth = sign_example("GET", "/", &[("lifecycle", "")], HeaderMap::new());
        assert_eq!(
            signature(&auth),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
    }

    /// AWS's example "GET Bucket (List Objects)": query values sorted and encoded.
    #[test]
    fn signs_aws_s_list_objects_example() {
        let query = [("prefix", "J"), ("max-keys", "2")];
        let auth = sign_example("GET", "/", &query, HeaderMap::new());
        assert_eq!(
            signature(&auth),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn keys_are_encoded_byte_by_byte_keeping_their_slashes() {
        assert_eq!(uri_encode("cam 1/a+b~c.jpg", false), "cam%201/a%2Bb~c.jpg");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(uri_encode("é$", false), "%C3%A9%24");
    }

    #[test]
    fn buckets_are_addressed_by_endpoint_style_and_region() {
        let local = Some("http://127.0.0.1:9000/");
        assert_eq!(
            bucket_url("plant", local, "us-east-1", true),
            "http://127.0.0.1:9000/plant"
        );
        assert_eq!(
            bucket_url("plant", Some("minio.lan"), "x", false),
            "https://plant.minio.lan"
        );
        assert_eq!(
            bucket_url("plant", None, "eu-central-1", false),
            "https://plant.s3.eu-central-1.amazonaws.com"
        );
        assert_eq!(
            bucket_url("plant", None, "cn-north-1", true),
            "https://s3.cn-north-1.amazonaws.com.cn/plant"
        );
    }
}
