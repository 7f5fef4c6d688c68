//! The headers of a PUT or a part: the object's metadata, its content type, and the
//! checksums the server verifies the body against ([`Verifies`] learns whether a server
//! checks CRC32C, so a Content-MD5 goes along until it has shown that it does).

use std::sync::atomic::{AtomicU8, Ordering};

use ::http::{HeaderMap, HeaderName, HeaderValue};
use md5::Digest;

use crate::checksum::Checksum;
use crate::forward::sink::Meta;

const CONTENT_TYPE: &str = "application/octet-stream";

/// Whether a server is known to check `x-amz-checksum-crc32c`: it has echoed the header
/// in an answer. Until then (0), and if it never does, requests carry a Content-MD5 as well.
#[derive(Default)]
pub(super) struct Verifies(AtomicU8);

const CHECKS_CRC: u8 = 1;
const IGNORES_CRC: u8 = 2;

impl Verifies {
    pub(super) fn wants_md5(&self) -> bool {
        self.0.load(Ordering::Relaxed) != CHECKS_CRC
    }

    /// Learns from the answer to a request that carried `sum`.
    pub(super) fn saw(&self, sum: &Checksum, answer: &HeaderMap, server: &str) {
        if !matches!(sum, Checksum::Crc32c(_)) {
            return;
        }
        let now = if answer.contains_key(CRC32C_HEADER) {
            CHECKS_CRC
        } else {
            IGNORES_CRC
        };
        if self.0.swap(now, Ordering::Relaxed) != now && now == IGNORES_CRC {
            log::info!(
                "{server} does not confirm CRC32C checksums: its uploads carry a Content-MD5 too"
            );
        }
    }
}

pub(super) const CRC32C_HEADER: &str = "x-amz-checksum-crc32c";

pub(super) fn meta_headers(meta: &Meta) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("sender", meta.sender.as_str()),
        ("pipe", meta.pipe.as_str()),
        ("gateway", meta.gateway.as_str()),
        ("mtime", &meta.mtime.to_string()),
    ]
    .into_iter()
    // The body id, for a put that must recognise its own object (`put_over_own`).
    .chain(meta.only_new.then_some(("upload", meta.upload.as_str())))
    {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(format!("x-amz-meta-{k}")),
            HeaderValue::try_from(v),
        ) {
            h.insert(name, value);
        }
    }
    h
}

/// The headers the server checks `content` against: its checksum `sum`, and a
/// Content-MD5 as well for a CRC the server is not known to check.
pub(super) fn integrity_headers(
    headers: &mut HeaderMap,
    sum: &Checksum,
    content: &[u8],
    v: &Verifies,
) {
    let mut insert = |name: &'static str, digest: &[u8]| {
        if let Ok(value) = HeaderValue::try_from(base64(digest)) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    match sum {
        Checksum::Crc32c(_) => {
            insert(CRC32C_HEADER, &sum.bytes());
            if v.wants_md5() {
                insert("content-md5", &md5::Md5::digest(content));
            }
        }
        Checksum::Md5(digest) => insert("content-md5", digest),
    }
}

pub(super) fn content_type(headers: &mut HeaderMap) {
    headers.insert(
        ::http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
}

/// Standard base64 with padding (Content-MD5 and the checksum headers want it).
pub(super) fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_content_md5_wants_it() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // MD5 of the empty string, as S3 documents it.
        assert_eq!(base64(&md5::Md5::digest(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn a_content_md5_goes_along_until_the_server_shows_it_checks_the_crc() {
        let v = Verifies::default();
        let crc = Checksum::Crc32c(0x0102_0304);
        let headers = |v: &Verifies| {
            let mut h = HeaderMap::new();
            integrity_headers(&mut h, &crc, b"body", v);
            h
        };
        let h = headers(&v);
        assert_eq!(h[CRC32C_HEADER], "AQIDBA==");
        assert!(h.contains_key("content-md5"), "not known yet: MD5 too");
        let mut echoed = HeaderMap::new();
        echoed.insert(CRC32C_HEADER, HeaderValue::from_static("AQIDBA=="));
        v.saw(&crc, &echoed, "s3");
        assert!(
            !headers(&v).contains_key("content-md5"),
            "it checks the CRC"
        );
        v.saw(&crc, &HeaderMap::new(), "s3");
        assert!(
            headers(&v).contains_key("content-md5"),
            "it stopped confirming"
        );
        // An old op's MD5 is its only checksum, and teaches nothing about CRCs.
        let md5 = Checksum::Md5([7; 16]);
        v.saw(&md5, &echoed, "s3");
        assert!(v.wants_md5());
        let mut h = HeaderMap::new();
        integrity_headers(&mut h, &md5, b"body", &v);
        assert_eq!(h["content-md5"], base64(&[7; 16]).as_str());
        assert!(!h.contains_key(CRC32C_HEADER));
    }
}
