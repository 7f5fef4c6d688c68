//! Prometheus metrics (text exposition format 0.0.4), rendered from the same view as
//! `ftpgate status`, with a series per Pipe and per Sender; served at `/metrics` by the
//! HTTP listener (`crate::web`).

use std::fmt::Write;

use crate::admin::status::{PipeStatus, StatusView};

/// Counters the status view does not carry.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub logins_ok: u64,
    pub logins_failed: u64,
    /// Each Sender's activity, by name.
    pub senders: Vec<(String, crate::store::activity::Activity)>,
    /// Now (ms since the epoch), for the failed logins of the last hour.
    pub now_ms: u64,
}

/// A label value, escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per-Sender series: name, type, help, and the value of one Sender's activity.
type SenderSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::store::activity::Activity, u64) -> f64,
);

const PER_SENDER: &[SenderSeries] = &[
    (
        "sender_uploads_total",
        "counter",
        "Uploads acknowledged, per Sender.",
        |a, _| a.uploads_total as f64,
    ),
    (
        "sender_received_bytes_total",
        "counter",
        "Bytes of acknowledged uploads, per Sender.",
        |a, _| a.bytes_total as f64,
    ),
    (
        "sender_last_upload_timestamp_seconds",
        "gauge",
        "When the Sender's last upload was acknowledged (Unix time; 0: never).",
        |a, _| {
            a.last_upload
                .as_ref()
                .map_or(0.0, |u| (u.time_ms / 1000) as f64)
        },
    ),
    (
        "sender_failed_logins_last_hour",
        "gauge",
        "Failed logins naming the Sender in the last hour.",
        |a, now| a.failed_last_hour(now) as f64,
    ),
    (
        "sender_silent",
        "gauge",
        "1 while the Sender has not uploaded for longer than --expect-every.",
        |a, _| f64::from(u8::from(a.silent)),
    ),
];

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP ftpgate_{name} {help}");
    let _ = writeln!(out, "# TYPE ftpgate_{name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "ftpgate_{name}{labels} {v}");
    }
}

/// Per-Pipe series: name, type, help, and the value of one Pipe.
type PipeSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PipeStatus) -> f64,
);

const PER_PIPE: &[PipeSeries] = &[
    (
        "backlog_ops",
        "gauge",
        "Operations waiting for delivery.",
        |p| p.backlog_ops as f64,
    ),
    (
        "backlog_bytes",
        "gauge",
        "Bytes waiting for delivery.",
        |p| p.backlog_bytes as f64,
    ),
    (
        "oldest_backlog_seconds",
        "gauge",
        "Age of the oldest undelivered operation.",
        |p| p.oldest_secs.unwrap_or(0) as f64,
    ),
    (
        "parked_ops",
        "gauge",
        "Operations parked by a permanent failure.",
        |p| p.parked_ops as f64,
    ),
    (
        "delivered_ops_total",
        "counter",
        "Operations delivered.",
        |p| p.delivered_ops as f64,
    ),
    (
        "delivered_bytes_total",
        "counter",
        "Bytes delivered.",
        |p| p.delivered_bytes as f64,
    ),
    (
        "pipe_online",
        "gauge",
        "1 when the destination answers.",
        |p| f64::from(u8::from(p.state == "online")),
    ),
];

/// The exposition text (pure).
pub fn render(v: &StatusView, c: &Counters) -> String {
    let mut out = String::new();
    let one = |x: u64| vec![(String::new(), x as f64)];
    let logins = vec![
        ("{result=\"ok\"}".to_string(), c.logins_ok as f64),
        ("{result=\"failed\"}".to_string(), c.logins_failed as f64),
    ];
    let gateway = [
        (
            "sessions",
            "gauge",
            "Sessions open now (FTP and SFTP connections).",
            one(v.sessions.unwrap_or(0) as u64),
        ),
        (
            "sftp_sessions",
            "gauge",
            "Of the sessions, those running SFTP.",
            one(v.sftp_sessions.unwrap_or(0) as u64),
        ),
        (
            "logins_total",
            "counter",
            "Login attempts by outcome.",
            logins,
        ),
        (
            "uploads_total",
            "counter",
            "Uploads acknowledged with 226.",
            one(v.uploads_received.unwrap_or(0)),
        ),
        (
            "received_bytes_total",
            "counter",
            "Bytes of acknowledged uploads.",
            one(v.bytes_received.unwrap_or(0)),
        ),
        (
            "spool_bytes",
            "gauge",
            "Bytes held in the spool.",
            one(v.spool_bytes),
        ),
    ];
    for (name, kind, help, samples) in &gateway {
        metric(&mut out, name, kind, help, samples);
    }
    for (name, kind, help, f) in PER_PIPE {
        let samples: Vec<(String, f64)> = v
            .pipes
            .iter()
            .map(|p| (format!("{{pipe=\"{}\"}}", p.id), f(p)))
            .collect();
        metric(&mut out, name, kind, help, &samples);
    }
    for (name, kind, help, f) in PER_SENDER {
        let samples: Vec<(String, f64)> = c
            .senders
            .iter()
            .map(|(s, a)| (format!("{{sender=\"{}\"}}", label(s)), f(a, c.now_ms)))
            .collect();
        metric(&mut out, name, kind, help, &samples);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::PipeStatus;

    #[test]
    fn renders_the_exposition_format() {
        let v = StatusView {
            sessions: Some(3),
            uploads_received: Some(10),
            pipes: vec![PipeStatus {
                id: "cloud".into(),
                backlog_ops: 4,
                state: "online".into(),
                ..PipeStatus::default()
            }],
            ..StatusView::default()
        };
        let text = render(
            &v,
            &Counters {
                logins_ok: 7,
                logins_failed: 2,
                senders: vec![(
                    "cam\"1".into(),
                    crate::store::activity::Activity {
                        uploads_total: 5,
                        bytes_total: 500,
                        silent: true,
                        ..Default::default()
                    },
                )],
                now_ms: 0,
            },
        );
        assert!(text.contains("# TYPE ftpgate_sessions gauge\nftpgate_sessions 3\n"));
        assert!(text.contains("ftpgate_logins_total{result=\"failed\"} 2\n"));
        assert!(text.contains("ftpgate_backlog_ops{pipe=\"cloud\"} 4\n"));
        assert!(text.contains("ftpgate_pipe_online{pipe=\"cloud\"} 1\n"));
        assert!(text.contains("ftpgate_sender_uploads_total{sender=\"cam\\\"1\"} 5\n"));
        assert!(text.contains("ftpgate_sender_silent{sender=\"cam\\\"1\"} 1\n"));
        assert!(text.contains("# TYPE ftpgate_sender_received_bytes_total counter\n"));
    }
}
