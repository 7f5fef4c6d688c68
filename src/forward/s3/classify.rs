//! What an S3 failure means: transient (retry with backoff) or permanent (park the op),
//! with a sentence that says what is wrong.

use super::*;

/// ureq's error as a sentence [`classify`] can read.
pub(super) fn transport_text(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::Timeout(_) => format!("timed out: {e}"),
        ureq::Error::HostNotFound => "dns lookup: host not found".into(),
        other => other.to_string(),
    }
}

pub(super) fn permanent(e: impl std::fmt::Display) -> SinkError {
    SinkError::permanent(e.to_string())
}

/// Transient or permanent, with a sentence that says what is wrong. One arm per S3 error
/// code or transport failure, kept together as the one table of what each means.
pub fn classify(e: S3Error) -> SinkError {
    match e {
        S3Error::Status(status, body) => {
            let code = xml_text(&body, "Code").unwrap_or_default();
            let code = code.as_str();
            let what = format!(
                "HTTP {status}{}{code}",
                if code.is_empty() { "" } else { " " }
            );
            match (status, code) {
                // Sent only with a conditional put: another object holds the key. The
                // caller knows the key and says so (`SinkError::exists`).
                (412, _) => SinkError {
                    exists: true,
                    ..SinkError::permanent(format!("the object already exists ({what})"))
                },
                (_, "NoSuchBucket") => {
                    SinkError::permanent(format!("the bucket does not exist ({what})"))
                }
                (_, "InvalidAccessKeyId") => SinkError::permanent(format!(
                    "the endpoint does not know this access key ({what}): fix it with 'ftpgate pipe set ID --access-key KEY'"
                )),
                // Reached only when correcting the signing time did not help either.
                (_, "RequestTimeTooSkewed") => SinkError::transient(format!(
                    "this gateway's clock is too far from the endpoint's ({what}): set the box's clock (NTP); deliveries are retried"
                )),
                (_, "SignatureDoesNotMatch") => SinkError::permanent(format!(
                    "the secret key is wrong ({what}): fix it with 'ftpgate pipe set ID --secret-key-stdin'"
                )),
                (
                    _,
                    "RequestTimeout" | "SlowDown" | "BadDigest" | "InternalError"
                    | "ServiceUnavailable",
                ) => SinkError::transient(format!("the endpoint asked to retry ({what})")),
                (403, _) | (_, "AccessDenied") => SinkError::permanent(format!(
                    "access denied ({what}): the credentials may not write to this bucket or prefix"
                )),
                (408 | 429, _) | (500..=599, _) => {
                    SinkError::transient(format!("the endpoint is failing or busy ({what})"))
                }
                _ => SinkError::permanent(format!("the endpoint refused the request ({what})")),
            }
        }
        S3Error::Request(e) => permanent(format!("the request could not be made: {e}")),
        S3Error::Transport(text) => {
            let lower = text.to_ascii_lowercase();
            let proxy = lower.contains(" via proxy ");
            let why = if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
                "the endpoint's certificate is not signed by a CA this Pipe trusts (a private CA? give it with 'ftpgate pipe set ID --ca-file CA.pem')"
            } else if proxy && lower.contains("refused") {
                "connection refused by the proxy"
            } else if lower.contains("lookup")
                || lower.contains("resolve")
                || lower.contains("dns")
                || lower.contains("name or service")
            {
                "cannot resolve the endpoint's host name (DNS)"
            } else if lower.contains("refused") {
                "connection refused by the endpoint"
            } else if lower.contains("timed out") || lower.contains("timeout") {
                "the endpoint did not answer in time"
            } else if lower.contains("tls")
                || lower.contains("certificate")
                || lower.contains("handshake")
            {
                "TLS with the endpoint failed"
            } else if lower.contains("reset")
                || lower.contains("broken pipe")
                || lower.contains("unexpected eof")
            {
                "the connection to the endpoint broke"
            } else {
                "network error"
            };
            SinkError::transient(format!("{why}: {text}"))
        }
    }
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
    fn classifies_s3_errors() {
        let body = |code: &str| {
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
        };
        assert!(!classify(S3Error::Status(404, body("NoSuchBucket"))).transient);
        assert!(!classify(S3Error::Status(403, body("InvalidAccessKeyId"))).transient);
        assert!(!classify(S3Error::Status(403, body("SignatureDoesNotMatch"))).transient);
        assert!(!classify(S3Error::Status(403, body("AccessDenied"))).transient);
        assert!(classify(S3Error::Status(503, body("SlowDown"))).transient);
        assert!(classify(S3Error::Status(500, String::new())).transient);
        assert!(classify(S3Error::Status(429, String::new())).transient);
        assert!(classify(S3Error::Status(400, body("RequestTimeout"))).transient);
        assert!(!classify(S3Error::Status(400, body("InvalidArgument"))).transient);
        let refused = classify(S3Error::Transport(
            "Connection refused (os error 111)".into(),
        ));
        assert!(refused.transient && refused.message.contains("connection refused"));
    }
}
