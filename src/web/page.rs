//! The status page (pure): one HTML document, no script, no external asset, readable on
//! a phone, that reloads itself. Everything a client chose (file names, Sender names,
//! error sentences) is escaped.

use std::fmt::Write;

use super::minutes::Minute;
use crate::admin::status::StatusView;
use crate::store::activity::Activity;
use crate::store::events::Event;

/// Seconds between reloads.
pub const REFRESH_SECS: u64 = 10;

/// What the page shows.
pub struct Snapshot {
    pub status: StatusView,
    /// Each Sender with its `--expect-every` and activity.
    pub senders: Vec<(String, Option<u64>, Activity)>,
    /// The newest events, oldest first.
    pub events: Vec<Event>,
    pub minutes: Vec<Minute>,
    pub now_ms: u64,
    pub host: String,
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn local(ms: u64) -> String {
    crate::localtime::format_second(ms)
}

fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:8px 12px;color:#222}\
h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #ddd;vertical-align:top}\
th{background:#f3f3f3}.wrap{overflow-x:auto}.bad{color:#b00;font-weight:600}.ok{color:#070}.muted{color:#777}\
code{font-size:.95em;word-break:break-all}svg{width:100%;height:auto;max-width:720px}";

/// The whole page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::with_capacity(16 << 10);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
<title>ftpgate on {host}</title><style>{STYLE}</style></head><body>\
<h1>ftpgate on {host}</h1>",
        host = esc(&s.host)
    );
    summary(&mut h, s);
    h.push_str("<h2>Files per minute, last hour</h2>");
    h.push_str(&chart(&s.minutes));
    pipes(&mut h, s);
    senders(&mut h, s);
    events(&mut h, s);
    let _ = write!(
        h,
        "<p class=\"muted\">{} · reloads every {REFRESH_SECS} s · read-only</p></body></html>",
        esc(&local(s.now_ms))
    );
    h
}

fn summary(h: &mut String, s: &Snapshot) {
    let v = &s.status;
    let _ = write!(
        h,
        "<p id=\"summary\">Running for {} · {} session(s) · {} upload(s) received · spool: {} file(s), {} held, {} free · state file: {}</p>",
        ago(v.uptime_secs.unwrap_or(0)),
        v.sessions.unwrap_or(0),
        v.uploads_received.unwrap_or(0),
        v.spool_files,
        mib(v.spool_bytes),
        v.spool_free_bytes.map_or("?".into(), mib),
        mib(v.state_bytes),
    );
    for warning in v.trouble.iter().chain(v.state_warning.iter()) {
        let _ = write!(h, "<p class=\"bad\">{}</p>", esc(warning));
    }
}

fn pipes(h: &mut String, s: &Snapshot) {
    h.push_str(
        "<h2>Pipes</h2><div class=\"wrap\"><table id=\"pipes\"><tr><th>Pipe</th><th>State</th>\
<th>Backlog</th><th>Oldest</th><th>Last delivery</th><th>Last error</th></tr>",
    );
    for p in &s.status.pipes {
        let class = if p.state == "online" { "ok" } else { "bad" };
        let error = p.parked_reason.as_ref().or(p.last_error.as_ref());
        let _ = write!(
            h,
            "<tr><td>{} <span class=\"muted\">{}</span></td><td class=\"{class}\">{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.id),
            esc(&p.dest),
            esc(&p.state),
            p.backlog_ops,
            mib(p.backlog_bytes),
            p.oldest_secs.map_or("-".into(), ago),
            p.last_success.map_or("never".into(), |t| local(t * 1000)),
            error.map_or(String::new(), |e| esc(e)),
        );
    }
    h.push_str("</table></div>");
}

fn senders(h: &mut String, s: &Snapshot) {
    h.push_str(
        "<h2>Senders</h2><div class=\"wrap\"><table id=\"senders\"><tr><th>Sender</th><th>Last seen</th>\
<th>Last upload</th><th>Today</th><th>Failed logins (1 h)</th></tr>",
    );
    let day = crate::localtime::day(s.now_ms);
    for (name, every, a) in &s.senders {
        let seen = a.last_login.as_ref().map_or("never".into(), |l| {
            format!(
                "{} from {} ({})",
                local(l.time_ms),
                esc(&l.address),
                esc(&l.proto)
            )
        });
        let upload = a.last_upload.as_ref().map_or("never".into(), |u| {
            format!(
                "{} <code>{}</code> ({} bytes)",
                local(u.time_ms),
                esc(&u.path),
                u.size
            )
        });
        let mark = match (every, a.silent) {
            (Some(e), true) => format!(
                " <span class=\"bad\">silent (expected every {})</span>",
                crate::duration::format(*e)
            ),
            _ => String::new(),
        };
        let (n, bytes) = a.today(day);
        let _ = write!(
            h,
            "<tr><td>{}{mark}</td><td>{seen}</td><td>{upload}</td><td>{n} ({})</td><td>{}</td></tr>",
            esc(name),
            mib(bytes),
            a.failed_last_hour(s.now_ms),
        );
    }
    h.push_str("</table></div>");
}

fn events(h: &mut String, s: &Snapshot) {
    h.push_str(
        "<h2>Recent events</h2><div class=\"wrap\"><table id=\"events\"><tr><th>Time</th><th>Event</th>\
<th>Sender</th><th>Pipe</th><th>File</th><th>Detail</th></tr>",
    );
    for e in s.events.iter().rev() {
        let when = crate::calendar::parse_iso8601(&e.time)
            .map_or(e.time.clone(), |t| local(t.max(0) as u64 * 1000));
        let mut detail = Vec::new();
        if let Some(to) = &e.to {
            detail.push(format!("to <code>{}</code>", esc(to)));
        }
        if let Some(n) = e.size {
            detail.push(format!("{n} bytes"));
        }
        if let Some(k) = &e.key {
            detail.push(format!("key <code>{}</code>", esc(k)));
        }
        if let Some(a) = &e.address {
            detail.push(format!("from {}", esc(a)));
        }
        if let Some(r) = &e.reason {
            detail.push(esc(r));
        }
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&when),
            e.kind.as_str(),
            esc(e.sender.as_deref().unwrap_or("")),
            esc(e.pipe.as_deref().unwrap_or("")),
            esc(e.path.as_deref().unwrap_or("")),
            detail.join(", ")
        );
    }
    h.push_str("</table></div>");
}

/// Bars of files received, a line of files delivered, minute by minute (server-drawn SVG).
pub fn chart(minutes: &[Minute]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let top = minutes
        .iter()
        .map(|m| m.received.max(m.delivered))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = minutes.len().max(1) as f64;
    let step = W / n;
    let y = |v: u64| H - (v as f64 / top as f64) * (H - 10.0);
    let mut svg = format!(
        "<svg id=\"chart\" viewBox=\"0 0 {W} {}\" role=\"img\" aria-label=\"files received and delivered per minute\" xmlns=\"http://www.w3.org/2000/svg\">",
        H + 18.0
    );
    for (i, m) in minutes.iter().enumerate() {
        if m.received > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#7aa7d8\"><title>{} received</title></rect>",
                i as f64 * step + 1.0,
                y(m.received),
                (step - 2.0).max(1.0),
                H - y(m.received),
                m.received
            );
        }
    }
    let points: Vec<String> = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{:.1},{:.1}", i as f64 * step + step / 2.0, y(m.delivered)))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#2a8a3a\" stroke-width=\"2\"/>\
<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#999\"/>\
<text x=\"2\" y=\"10\" font-size=\"10\" fill=\"#555\">{top} files/min</text>\
<text x=\"2\" y=\"{}\" font-size=\"10\" fill=\"#555\">-60 min</text>\
<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\" text-anchor=\"end\">now · bars received, line delivered</text></svg>",
        points.join(" "),
        H + 14.0,
        W - 2.0,
        H + 14.0
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::Kind;

    #[test]
    fn what_a_client_named_is_escaped() {
        let s = Snapshot {
            status: StatusView::default(),
            senders: vec![("cam1".into(), Some(600), Activity::default())],
            events: vec![Event {
                path: Some("/<script>alert(1)</script>.jpg".into()),
                reason: Some("a \"quoted\" & <b>bold</b> sentence".into()),
                ..Event::of(Kind::UploadBroken)
            }],
            minutes: vec![Minute::default(); 60],
            now_ms: 1_796_597_400_000,
            host: "gw<1>".into(),
        };
        let page = render(&s);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.jpg"));
        assert!(page.contains("&quot;quoted&quot; &amp; &lt;b&gt;"));
        assert!(page.contains("ftpgate on gw&lt;1&gt;"));
        assert!(page.contains("http-equiv=\"refresh\""));
    }

    #[test]
    fn the_chart_scales_to_the_busiest_minute() {
        let mut minutes = vec![Minute::default(); 60];
        minutes[59].received = 40;
        minutes[59].delivered = 20;
        let svg = chart(&minutes);
        assert!(svg.contains("40 files/min"));
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains("<title>40 received</title>"));
    }
}
