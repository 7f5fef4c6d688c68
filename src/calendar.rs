//! Calendar arithmetic (pure, UTC): FTP timestamps for `MDTM`/`MFMT` and MLSx `modify`
//! facts (`YYYYMMDDHHMMSS`), the `ls -l` date column, and the times an S3 endpoint
//! states (an HTTP `Date`, an ISO 8601 `ServerTime`).

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) for days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    min: u64,
    sec: u64,
}

fn civil(secs: u64) -> Civil {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        min: rem % 3600 / 60,
        sec: rem % 60,
    }
}

/// `YYYYMMDDHHMMSS` (RFC 3659 time-val, UTC).
pub fn format_timeval(secs: u64) -> String {
    let c = civil(secs);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.min, c.sec
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC) for milliseconds since the epoch: the
/// times of events and of `--json` output.
pub fn format_rfc3339_ms(ms: u64) -> String {
    let c = civil(ms / 1000);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.min,
        c.sec,
        ms % 1000
    )
}

/// `YYYY-MM-DD HH:MM:SS` for seconds since the epoch already moved to local time.
pub fn format_second(local_secs: i64) -> String {
    let c = civil(local_secs.max(0) as u64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.min, c.sec
    )
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYYMMDDHHMMSS[.sss]` (fractions ignored) into seconds since the epoch.
pub fn parse_timeval(s: &str) -> Option<u64> {
    let whole = s.split_once('.').map_or(s, |(w, _)| w);
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<u32>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    if civil_from_days(days) != (i64::from(y), mo, d) {
        return None; // 31 February and the like
    }
    Some(days as u64 * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(se.min(59)))
}

/// Unix seconds of an HTTP date (`Sun, 06 Dec 2026 22:50:00 GMT`, RFC 9110's
/// IMF-fixdate).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace().skip(1);
    let day = parts.next()?;
    let name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? + 1;
    let year = parts.next()?;
    let hms = parts.next()?.replace(':', "");
    let secs = parse_timeval(&format!("{year}{month:02}{day:0>2}{hms}"))?;
    i64::try_from(secs).ok()
}

/// Unix seconds of an ISO 8601 UTC time (`2026-12-06T22:50:00Z`, fractions ignored: S3's
/// `ServerTime`).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let digits: String = s
        .trim_end_matches('Z')
        .chars()
        .filter(|c| !matches!(c, '-' | 'T' | ':'))
        .collect();
    i64::try_from(parse_timeval(&digits)?).ok()
}

/// The `ls -l` date: `Nov 23 22:45` within six months of `now`, else `Nov 23  2025`.
pub fn ls_date(mtime: u64, now: u64) -> String {
    let c = civil(mtime);
    let month = MONTHS[(c.month - 1) as usize];
    const SIX_MONTHS: u64 = 182 * 86_400;
    if mtime + SIX_MONTHS > now && mtime <= now + 3600 {
        format!("{month} {:>2} {:02}:{:02}", c.day, c.hour, c.min)
    } else {
        format!("{month} {:>2}  {}", c.day, c.year)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            format_rfc3339_ms(1_796_597_400_123),
            "2026-12-06T22:50:00.123Z"
        );
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_day(1_796_597_400 / 86_400), "2026-12-06");
    }

    #[test]
    fn server_times_read_as_unix_seconds() {
        assert_eq!(
            parse_http_date("Sun, 06 Dec 2026 22:50:00 GMT"),
            Some(1_796_597_400)
        );
        assert_eq!(parse_iso8601("2026-12-06T22:50:00Z"), Some(1_796_597_400));
        assert_eq!(
            parse_iso8601("2026-12-06T22:50:00.123Z"),
            Some(1_796_597_400)
        );
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Dec 2026 22:50 GMT"), None);
        assert_eq!(parse_iso8601("2026-13-06T22:50:00Z"), None);
    }

    #[test]
    fn timevals_round_trip() {
        for (secs, s) in [
            (0, "19700101000000"),
            (951_782_400, "20000229000000"),
            (1_795_474_418, "20261123225338"),
        ] {
            assert_eq!(format_timeval(secs), s);
            assert_eq!(parse_timeval(s), Some(secs));
        }
        assert_eq!(parse_timeval("20261123225338.123"), Some(1_795_474_418));
        for bad in [
            "2026112322533",
            "20260230000000",
            "20261323000000",
            "abcdefghijklmn",
            "19691231235959",
            "",
        ] {
            assert_eq!(parse_timeval(bad), None, "{bad}");
        }
    }

    #[test]
    fn ls_dates() {
        let now = 1_795_474_418; // 2026-11-23 22:53:38
        assert_eq!(ls_date(now - 60, now), "Nov 23 22:52");
        assert_eq!(ls_date(1_780_000_000, now), "May 28 20:26");
        assert_eq!(ls_date(1_700_000_000, now), "Nov 14  2023");
        assert_eq!(ls_date(0, now), "Jan  1  1970");
    }
}
