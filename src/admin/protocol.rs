//! What the CLI and the daemon exchange: a [`Request`] for each admin operation, the
//! [`Response`], the views of Senders and Pipes it carries, and the [`Error`] a technician
//! reads. All serde, one JSON line each way over `control.sock`.

use serde::{Deserialize, Serialize};

use super::status;
use crate::names::Invalid;
use crate::store;
use crate::store::pipes::PipeSpec;
use crate::store::senders::TlsReuse;

/// One admin operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    SenderAdd {
        name: String,
        password_hash: crate::secret::Secret,
        require_tls: bool,
        allow: Vec<String>,
    },
    SenderPasswd {
        name: String,
        password_hash: crate::secret::Secret,
    },
    SenderSet {
        name: String,
        require_tls: Option<bool>,
        tls_reuse: Option<TlsReuse>,
        allow: Vec<String>,
        clear_allow: bool,
        /// A duration (`10m`) or `off`.
        #[serde(default)]
        expect_every: Option<String>,
    },
    SenderList,
    SenderShow {
        name: String,
    },
    SenderRemove {
        name: String,
    },
    SenderEnable {
        name: String,
        enabled: bool,
    },
    /// OpenSSH public key lines to add to a Sender (for SFTP logins).
    SenderKeyAdd {
        name: String,
        keys: Vec<String>,
    },
    SenderKeyList {
        name: String,
    },
    /// Removes the key with this fingerprint (`SHA256:...`).
    SenderKeyRemove {
        name: String,
        fingerprint: String,
    },
    Grant {
        name: String,
        pipe: String,
    },
    Revoke {
        name: String,
        pipe: String,
    },
    PipeAdd {
        spec: PipeSpec,
    },
    PipeSet {
        id: String,
        changes: PipeChanges,
    },
    PipeList,
    PipeShow {
        id: String,
    },
    PipeRemove {
        id: String,
        /// Remove it even though undelivered uploads are lost with it.
        #[serde(default)]
        discard_backlog: bool,
    },
    PipeEnable {
        id: String,
        enabled: bool,
    },
    Export {
        include_secrets: bool,
    },
    Apply {
        fleet: String,
        dry_run: bool,
        /// Pipes the file drops are removed even with undelivered uploads.
        #[serde(default)]
        discard_backlog: bool,
    },
    PipeTest {
        id: String,
    },
    Status,
    /// A page of the outbox: up to `limit` ops after op `after`.
    SpoolList {
        #[serde(default)]
        after: Option<u64>,
        #[serde(default)]
        limit: Option<usize>,
        #[serde(default)]
        pipe: Option<String>,
    },
    SpoolRetry {
        op_id: Option<u64>,
    },
    /// Events from the ring (`ftpgate events`).
    Events {
        query: crate::store::events::Query,
    },
    /// Adds a hook, or replaces the one of that name.
    HookAdd {
        hook: crate::store::hooks::Hook,
    },
    HookList,
    HookRemove {
        name: String,
    },
    /// Sends a `hook.test` event to the hook now.
    HookTest {
        name: String,
    },
    /// Keeps the digest of a new token for the HTTP listener (`ftpgate http-token`).
    HttpToken {
        digest: String,
    },
}

impl Request {
    /// Whether the operation can change Senders, Pipes or Grants (the daemon then drops
    /// its verified-credential cache).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Request::Ping
                | Request::SenderList
                | Request::SenderShow { .. }
                | Request::SenderKeyList { .. }
                | Request::PipeList
                | Request::PipeShow { .. }
                | Request::Export { .. }
                | Request::PipeTest { .. }
                | Request::Status
                | Request::SpoolList { .. }
                | Request::Events { .. }
                | Request::HookList
                | Request::HookTest { .. }
        )
    }
}

/// Fields `pipe set` may change; `None` keeps the current value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PipeChanges {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub access_key: Option<String>,
    pub secret_key: Option<crate::secret::Secret>,
    /// A CA file's text; empty: back to the public web PKI.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// A proxy URL; empty: back to the daemon's environment.
    #[serde(default)]
    pub proxy: Option<crate::secret::Secret>,
    pub overwrite: Option<crate::store::namespace::Overwrite>,
    #[serde(default)]
    pub create_dirs: Option<bool>,
    #[serde(default)]
    pub parallel: Option<u32>,
    /// A duration such as `12h`.
    #[serde(default)]
    pub keep_delivered: Option<String>,
    /// Write the `file://` destination's marker again (after a disk was replaced).
    #[serde(default)]
    pub adopt_destination: bool,
}

/// A Sender as shown by `list`/`show`: no password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderView {
    pub name: String,
    pub enabled: bool,
    pub require_tls: bool,
    pub tls_reuse: TlsReuse,
    pub allow: Vec<String>,
    pub pipes: Vec<String>,
    pub created: u64,
    /// Fingerprints of the Sender's SFTP public keys.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// `sender set --expect-every` (`10m`), if set.
    #[serde(default)]
    pub expect_every: Option<String>,
    #[serde(default)]
    pub activity: ActivityView,
}

/// What a Sender has done, as `sender list|show` show it; times in UTC (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityView {
    pub last_login: Option<LoginView>,
    pub last_upload: Option<UploadView>,
    /// On the gateway's local day.
    pub uploads_today: u64,
    pub bytes_today: u64,
    pub uploads_total: u64,
    pub bytes_total: u64,
    pub failed_logins_last_hour: u64,
    /// No upload for longer than `expect_every`.
    pub silent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginView {
    pub time: String,
    pub address: String,
    pub proto: String,
    pub client: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadView {
    pub time: String,
    pub pipe: String,
    pub path: String,
    pub size: u64,
}

impl ActivityView {
    pub fn of(a: &crate::store::activity::Activity, now_ms: u64) -> ActivityView {
        let time = crate::calendar::format_rfc3339_ms;
        let (uploads_today, bytes_today) = a.today(crate::localtime::day(now_ms));
        ActivityView {
            last_login: a.last_login.as_ref().map(|l| LoginView {
                time: time(l.time_ms),
                address: l.address.clone(),
                proto: l.proto.clone(),
                client: l.client.clone(),
            }),
            last_upload: a.last_upload.as_ref().map(|u| UploadView {
                time: time(u.time_ms),
                pipe: u.pipe.clone(),
                path: u.path.clone(),
                size: u.size,
            }),
            uploads_today,
            bytes_today,
            uploads_total: a.uploads_total,
            bytes_total: a.bytes_total,
            failed_logins_last_hour: a.failed_last_hour(now_ms),
            silent: a.silent,
        }
    }
}

/// A Pipe as shown by `list`/`show`: whether a secret is set, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeView {
    pub id: String,
    pub name: String,
    pub dest: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub access_key: Option<String>,
    pub secret_key_set: bool,
    /// Certificates of the Pipe's own CAs (0: the public web PKI).
    #[serde(default)]
    pub ca_certificates: usize,
    /// The Pipe's proxy, its password replaced by `***`.
    #[serde(default)]
    pub proxy: Option<String>,
    pub overwrite: String,
    /// Uploads into missing directories create them.
    #[serde(default)]
    pub create_dirs: bool,
    /// Deliveries at once.
    pub parallel: usize,
    /// How long delivered files stay listed (`12h`).
    #[serde(default)]
    pub keep_delivered: String,
    pub enabled: bool,
    pub senders: Vec<String>,
    pub created: u64,
}

/// What an operation produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Pong,
    /// A change was made; the sentence says which.
    Done {
        message: String,
    },
    Senders {
        senders: Vec<SenderView>,
    },
    Sender {
        sender: SenderView,
    },
    Keys {
        keys: Vec<KeyView>,
    },
    Pipes {
        pipes: Vec<PipeView>,
    },
    Pipe {
        pipe: PipeView,
    },
    Export {
        toml: String,
    },
    Applied {
        changes: Vec<String>,
        dry_run: bool,
    },
    Status {
        status: status::StatusView,
    },
    Hooks {
        hooks: Vec<HookView>,
    },
    Events {
        events: Vec<crate::store::events::Event>,
        /// The newest event's id: where `--follow` continues from.
        last: u64,
    },
    Ops {
        ops: Vec<status::OpView>,
        /// The cursor of the next page, if there is one.
        #[serde(default)]
        next: Option<u64>,
    },
}

/// An operation that failed: one line for the user, and whether it was a usage error.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub message: String,
    pub usage: bool,
}

impl Error {
    pub fn runtime(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            usage: false,
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Error {
        Error {
            usage: e.is_usage(),
            message: e.to_string(),
        }
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Error {
        Error {
            message: e.0,
            usage: true,
        }
    }
}

/// A hook as `hook list` shows it: whether a secret is set, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookView {
    pub name: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub secret_set: bool,
    /// Kinds it sends; empty: all.
    pub events: Vec<String>,
    pub max_pending: u64,
    /// Events it still has to send (at most `max_pending`).
    pub pending: u64,
    pub sent: u64,
    pub dropped: u64,
    pub failures: u32,
    pub last_error: Option<String>,
    /// When it last sent an event (RFC 3339, UTC).
    pub last_sent: Option<String>,
}

/// One of a Sender's public keys, as `sender key list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyView {
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
}
