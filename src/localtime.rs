//! The gateway's local day, for per-Sender counts "today": the time zone is read once,
//! from `TZ` (a POSIX rule such as `CET-1CEST,M3.5.0,M10.5.0/3`, or a zone name), else
//! `/etc/localtime`, else OpenWrt's `/etc/TZ`; with none of them, UTC.

use std::sync::OnceLock;

use tz::TimeZone;

fn zone() -> Option<&'static TimeZone> {
    static ZONE: OnceLock<Option<TimeZone>> = OnceLock::new();
    ZONE.get_or_init(|| {
        TimeZone::local().ok().or_else(|| {
            let rule = std::fs::read_to_string("/etc/TZ").ok()?;
            TimeZone::from_posix_tz(rule.trim()).ok()
        })
    })
    .as_ref()
}

/// Seconds east of UTC at `unix_secs` in the gateway's zone.
pub fn offset_secs(unix_secs: u64) -> i64 {
    zone()
        .and_then(|z| z.find_local_time_type(unix_secs as i64).ok())
        .map_or(0, |t| i64::from(t.ut_offset()))
}

/// The local day (days since 1970-01-01 in the gateway's zone) of `unix_ms`.
pub fn day(unix_ms: u64) -> i64 {
    let secs = unix_ms / 1000;
    (secs as i64 + offset_secs(secs)).div_euclid(86_400)
}

/// `YYYY-MM-DD HH:MM` in the gateway's zone, for tables a person reads.
pub fn format_minute(unix_ms: u64) -> String {
    let mut text = format_second(unix_ms);
    text.truncate("YYYY-MM-DD HH:MM".len());
    text
}

/// `YYYY-MM-DD HH:MM:SS` in the gateway's zone.
pub fn format_second(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    crate::calendar::format_second(secs as i64 + offset_secs(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_posix_rule_moves_the_day_boundary() {
        let z = tz::TimeZone::from_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // 2026-12-06T23:30:00Z is already the 7th in Paris (UTC+1 in winter).
        let t = 1_796_599_800;
        let off = i64::from(z.find_local_time_type(t).unwrap().ut_offset());
        assert_eq!(off, 3600);
        assert_eq!(
            crate::calendar::format_day((t + off).div_euclid(86_400)),
            "2026-12-07"
        );
    }
}
