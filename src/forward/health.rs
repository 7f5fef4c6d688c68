//! Each Pipe's delivery health, kept in memory for `status` and metrics: offline until
//! when, the last success and error, counts and a recent rate.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Forwarder;

/// Per-Pipe delivery health, for `status` and metrics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Health {
    /// Set while the destination fails transiently: ops wait until this time (ms).
    pub offline_until_ms: Option<u64>,
    /// Transient failures since the last delivery: the Pipe's backoff grows with them,
    /// whichever op was the probe.
    #[serde(default)]
    pub failures: u32,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    pub delivered_ops: u64,
    pub delivered_bytes: u64,
    pub failed_ops: u64,
    /// Bytes delivered in the last completed minute-long window, for a rate.
    pub recent_bytes: u64,
    pub window_start: u64,
}

impl Forwarder {
    /// A copy of every Pipe's health.
    pub fn health(&self) -> HashMap<String, Health> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn update(&self, pipe: &str, f: impl FnOnce(&mut Health)) {
        f(self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pipe.to_string())
            .or_default());
    }

    /// While a Pipe is offline: when it may be probed next (ms since the epoch).
    pub(super) fn offline_until(&self, pipe: &str) -> Option<u64> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pipe)
            .and_then(|h| h.offline_until_ms)
    }
}
