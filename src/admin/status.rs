//! What `ftpgate status` and `ftpgate spool list` show. The store gives the backlog; a
//! running daemon adds what only it knows (sessions, delivery health).

use serde::{Deserialize, Serialize};

use crate::clock::now_secs;
use crate::store::outbox::Op;
use crate::store::{self, View};

/// One Pipe's delivery picture.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PipeStatus {
    pub id: String,
    pub name: String,
    pub dest: String,
    pub enabled: bool,
    /// `online`, `offline`, `parked` (needs a person), or `unknown` without a daemon.
    pub state: String,
    pub backlog_ops: u64,
    pub backlog_bytes: u64,
    /// Age of the oldest undelivered op.
    pub oldest_secs: Option<u64>,
    pub parked_ops: u64,
    pub parked_reason: Option<String>,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    pub delivered_ops: u64,
    pub delivered_bytes: u64,
    /// Bytes per second over the current minute.
    pub rate_bytes_per_sec: Option<f64>,
    /// How long delivered files stay listed (`1d`).
    #[serde(default)]
    pub keep_delivered: String,
    /// The destination's clock minus this gateway's, in seconds, once S3 refused a
    /// request for it (requests are signed with the destination's time since).
    #[serde(default)]
    pub clock_skew_secs: Option<i64>,
}

/// The whole gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusView {
    pub daemon_running: bool,
    pub uptime_secs: Option<u64>,
    pub sessions: Option<usize>,
    /// Of `sessions`, the connections that have not logged in (yet).
    #[serde(default)]
    pub sessions_waiting: Option<usize>,
    /// Of `sessions`, those running SFTP.
    #[serde(default)]
    pub sftp_sessions: Option<usize>,
    pub uploads_received: Option<u64>,
    pub bytes_received: Option<u64>,
    pub spool_bytes: u64,
    pub spool_files: u64,
    pub spool_free_bytes: Option<u64>,
    /// What keeps the gateway from accepting uploads now (a full disk, a failing database).
    #[serde(default)]
    pub trouble: Option<String>,
    /// SHA-256 of the FTPS certificate, to pin in devices.
    pub tls_fingerprint: Option<String>,
    /// SHA-256 of the SSH host key (`SHA256:...`), when SFTP is on.
    #[serde(default)]
    pub ssh_fingerprint: Option<String>,
    /// The state file (`ftpgate.redb`): its size, and the free space on its disk.
    #[serde(default)]
    pub state_bytes: u64,
    #[serde(default)]
    pub state_free_bytes: Option<u64>,
    /// Catalog entries that expire in time (delivered files, empty directories).
    #[serde(default)]
    pub remembered: u64,
    /// The gateway-wide cap on them (`serve --keep-delivered-max`), while the daemon runs.
    #[serde(default)]
    pub keep_delivered_max: Option<u64>,
    /// Said when the state file would not fit twice in the free space of its disk.
    #[serde(default)]
    pub state_warning: Option<String>,
    pub pipes: Vec<PipeStatus>,
}

/// One outbox op as `spool list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpView {
    pub id: u64,
    pub pipe: String,
    pub op: String,
    pub path: String,
    pub bytes: u64,
    pub age_secs: u64,
    pub attempts: u32,
    pub parked: Option<String>,
    pub last_error: Option<String>,
}

impl OpView {
    pub fn of(op: &Op, now: u64) -> OpView {
        OpView {
            id: op.id,
            pipe: op.pipe.clone(),
            op: op.action.name().to_string(),
            path: op.action.keys().join(" -> "),
            bytes: op.action.bytes(),
            age_secs: now.saturating_sub(op.queued_ms / 1000),
            attempts: op.attempts,
            parked: op.parked.clone(),
            last_error: op.last_error.clone(),
        }
    }
}

/// One page of `spool list`: up to `limit` ops after op `after`, and the cursor for the
/// next page if there is one.
pub fn ops(
    r: &impl View,
    pipe: Option<&str>,
    after: u64,
    limit: usize,
) -> store::Result<(Vec<OpView>, Option<u64>)> {
    let now = now_secs();
    let mut ops = r.ops_page(pipe, after, limit + 1)?;
    let more = ops.len() > limit;
    ops.truncate(limit);
    let next = if more { ops.last().map(|o| o.id) } else { None };
    Ok((ops.iter().map(|o| OpView::of(o, now)).collect(), next))
}

/// The store's part of the status, from counters kept with every change: its cost does
/// not grow with the backlog.
pub fn from_store(r: &impl View) -> store::Result<StatusView> {
    let now = now_secs();
    let mut view = StatusView::default();
    for p in r.pipes()? {
        let b = r.backlog(&p.id)?;
        let parked = if b.parked > 0 {
            r.first_parked(&p.id)?
        } else {
            None
        };
        view.pipes.push(PipeStatus {
            id: p.id.clone(),
            name: p.name.clone(),
            dest: p.dest.to_string(),
            enabled: p.enabled,
            state: if parked.is_some() {
                "parked"
            } else {
                "unknown"
            }
            .into(),
            backlog_ops: b.ops,
            backlog_bytes: b.bytes,
            oldest_secs: r
                .oldest_op(&p.id)?
                .map(|o| now.saturating_sub(o.queued_ms / 1000)),
            parked_ops: b.parked,
            parked_reason: parked.and_then(|o| o.parked),
            keep_delivered: crate::duration::format(p.keep_delivered_ms() / 1000),
            ..PipeStatus::default()
        });
        view.spool_files += b.puts;
        view.spool_bytes += b.bytes;
    }
    view.remembered = r.remembered()?;
    Ok(view)
}

/// Adds the state file's size and the free space beside it, with a warning when the
/// file would not fit twice in it (it may grow by what is remembered before the next
/// compaction at start-up).
pub fn state_file(store: &store::Store, view: &mut StatusView) {
    view.state_bytes = store.file_bytes();
    view.state_free_bytes = store
        .path()
        .parent()
        .and_then(|dir| rustix::fs::statvfs(dir).ok())
        .map(|st| st.f_bavail.saturating_mul(st.f_frsize));
    view.state_warning = view
        .state_free_bytes
        .filter(|free| *free < view.state_bytes.saturating_mul(2))
        .map(|free| {
            format!(
                "the state file ({:.1} MiB) would not fit twice in the {:.1} MiB free on its disk: free space there, or remember less (pipe set ID --keep-delivered, serve --keep-delivered-max)",
                view.state_bytes as f64 / 1048576.0,
                free as f64 / 1048576.0
            )
        });
}
