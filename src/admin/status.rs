//! What `ftpgate status` and `ftpgate spool list` show. The store gives the backlog; a
//! running daemon adds what only it knows (sessions, delivery health).

use serde::{Deserialize, Serialize};

use crate::store::outbox::Action;
use crate::store::{self, Writer, now_secs};

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
}

/// The whole gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusView {
    pub daemon_running: bool,
    pub uptime_secs: Option<u64>,
    pub sessions: Option<usize>,
    pub uploads_received: Option<u64>,
    pub bytes_received: Option<u64>,
    pub spool_bytes: u64,
    pub spool_files: u64,
    pub spool_free_bytes: Option<u64>,
    /// SHA-256 of the FTPS certificate, to pin in devices.
    pub tls_fingerprint: Option<String>,
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

pub fn ops(w: &Writer) -> store::Result<Vec<OpView>> {
    let now = now_secs();
    Ok(w.ops()?
        .into_iter()
        .map(|op| OpView {
            id: op.id,
            pipe: op.pipe.clone(),
            op: op.action.name().to_string(),
            path: op.action.keys().join(" -> "),
            bytes: if let Action::Put { size, .. } = &op.action {
                *size
            } else {
                0
            },
            age_secs: now.saturating_sub(op.queued_ms / 1000),
            attempts: op.attempts,
            parked: op.parked.clone(),
            last_error: op.last_error.clone(),
        })
        .collect())
}

/// The store's part of the status.
pub fn from_store(w: &Writer) -> store::Result<StatusView> {
    let ops = ops(w)?;
    let mut view = StatusView::default();
    for p in w.pipes()? {
        let mine: Vec<&OpView> = ops.iter().filter(|o| o.pipe == p.id).collect();
        let parked: Vec<&&OpView> = mine.iter().filter(|o| o.parked.is_some()).collect();
        view.pipes.push(PipeStatus {
            id: p.id.clone(),
            name: p.name.clone(),
            dest: p.dest.to_string(),
            enabled: p.enabled,
            state: if parked.is_empty() {
                "unknown".into()
            } else {
                "parked".into()
            },
            backlog_ops: mine.len() as u64,
            backlog_bytes: mine.iter().map(|o| o.bytes).sum(),
            oldest_secs: mine.iter().map(|o| o.age_secs).max(),
            parked_ops: parked.len() as u64,
            parked_reason: parked.first().and_then(|o| o.parked.clone()),
            ..PipeStatus::default()
        });
    }
    view.spool_files = ops.iter().filter(|o| o.op == "put").count() as u64;
    view.spool_bytes = ops.iter().map(|o| o.bytes).sum();
    Ok(view)
}
