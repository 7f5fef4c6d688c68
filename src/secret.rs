//! A password hash or an access secret: stored and exported like a string, but its
//! `Debug` never shows it, so a stray `{:?}` of a Sender, a Pipe, a login or an admin
//! request in a log line cannot leak it. Read it with [`Secret::expose`], where it is
//! used.

use serde::{Deserialize, Serialize};

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that needs it (argon2, SigV4, export).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_it_and_serde_sees_a_plain_string() {
        let s = Secret::new("$argon2id$v=19$hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"$argon2id$v=19$hunter2\""
        );
        let back: Secret = serde_json::from_str("\"k\"").unwrap();
        assert_eq!(back.expose(), "k");
    }

    /// Every value that carries a password hash or an S3 secret, printed with `{:?}`.
    #[test]
    fn no_sender_pipe_login_or_request_shows_a_secret_in_debug() {
        const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        const PROXY_PW: &str = "pr0xy-Pass-w0rd";
        let sender: crate::store::Sender = serde_json::from_value(serde_json::json!({
            "name": "cam", "password_hash": HASH, "enabled": true,
        }))
        .unwrap();
        let spec = crate::store::pipes::PipeSpec {
            id: Some("pip1".into()),
            name: "p".into(),
            dest: "s3://bucket/x".into(),
            access_key: Some("AKIA".into()),
            secret_key: Some(KEY.to_string().into()),
            proxy: Some(format!("http://plant:{PROXY_PW}@10.0.0.1:3128").into()),
            enabled: true,
            ..Default::default()
        };
        let pipe = spec.clone().build("pip1".into(), None, 0).unwrap();
        // An export without secrets shows the proxy, not its password.
        let exported = crate::store::pipes::PipeSpec::of(&pipe, false);
        let proxy = exported.proxy.as_ref().unwrap().expose();
        assert_eq!(proxy, "http://plant:***@10.0.0.1:3128/");
        let login = crate::auth::Login {
            sender: sender.clone(),
            pipe: pipe.clone(),
            key: None,
        };
        let request: crate::admin::Request = serde_json::from_value(serde_json::json!({
            "op": "sender_add", "name": "cam", "password_hash": HASH,
            "require_tls": false, "allow": [],
        }))
        .unwrap();
        let fleet_sender: crate::fleet::SenderSpec = serde_json::from_value(serde_json::json!({
            "name": "cam", "password_hash": HASH,
        }))
        .unwrap();
        let printed = [
            format!("{sender:?}"),
            format!("{spec:?}"),
            format!("{pipe:?}"),
            format!("{login:?}"),
            format!("{request:?}"),
            format!("{fleet_sender:?}"),
            format!(
                "{:?}",
                crate::ftp::proto::Command::parse(format!("PASS {KEY}").as_bytes()).unwrap()
            ),
        ];
        for p in printed {
            assert!(
                !p.contains(HASH) && !p.contains(KEY) && !p.contains(PROXY_PW),
                "{p}"
            );
            assert!(p.contains("<redacted>"), "{p}");
        }
    }
}
