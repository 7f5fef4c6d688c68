//! Per-Sender activity: last login, last upload, uploads and bytes today and in total,
//! failed logins in the last hour, and whether the Sender is silent (see `sender set
//! --expect-every`). One small record per Sender in the `activity` table, removed with
//! the Sender. An upload's activity is written in its group commit, with its
//! `upload.received` event; logins are batched (see `crate::events`).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::events::{Event, Kind};
use super::schema::ACTIVITY;
use super::{Result, View, Writer, encode, one_record};

/// The last login of a Sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastLogin {
    /// Milliseconds since the epoch.
    pub time_ms: u64,
    pub address: String,
    /// `ftp`, `ftps` or `sftp`.
    pub proto: String,
    /// What the client calls itself: FTP `CLNT`, the SSH client's version string.
    #[serde(default)]
    pub client: Option<String>,
}

/// The last upload of a Sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUpload {
    pub time_ms: u64,
    pub pipe: String,
    pub path: String,
    pub size: u64,
}

/// Minutes of failed logins kept: an hour.
const FAILED_WINDOW_MIN: u64 = 60;

/// What a Sender has done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    #[serde(default)]
    pub last_login: Option<LastLogin>,
    #[serde(default)]
    pub last_upload: Option<LastUpload>,
    /// The local day (days since 1970-01-01) the `today` counts are for.
    #[serde(default)]
    pub day: i64,
    #[serde(default)]
    pub uploads_today: u64,
    #[serde(default)]
    pub bytes_today: u64,
    #[serde(default)]
    pub uploads_total: u64,
    #[serde(default)]
    pub bytes_total: u64,
    /// Failed logins as (minute since the epoch, count), the last hour only: at most
    /// sixty pairs.
    #[serde(default)]
    pub failed: Vec<(u64, u32)>,
    /// `sender.silent` was said and no upload came since.
    #[serde(default)]
    pub silent: bool,
}

impl Activity {
    /// Counts an upload made on local day `day`; returns whether the Sender was silent.
    pub fn upload(&mut self, day: i64, last: LastUpload) -> bool {
        if self.day != day {
            self.day = day;
            self.uploads_today = 0;
            self.bytes_today = 0;
        }
        self.uploads_today += 1;
        self.bytes_today += last.size;
        self.uploads_total += 1;
        self.bytes_total += last.size;
        self.last_upload = Some(last);
        std::mem::take(&mut self.silent)
    }

    /// (uploads, bytes) on local day `day`.
    pub fn today(&self, day: i64) -> (u64, u64) {
        if self.day == day {
            (self.uploads_today, self.bytes_today)
        } else {
            (0, 0)
        }
    }

    pub fn login_failed(&mut self, now_ms: u64) {
        let minute = now_ms / 60_000;
        self.forget_failures_before(minute);
        match self.failed.last_mut() {
            Some((m, n)) if *m == minute => *n = n.saturating_add(1),
            _ => self.failed.push((minute, 1)),
        }
    }

    /// Failed logins in the hour up to `now_ms`.
    pub fn failed_last_hour(&self, now_ms: u64) -> u64 {
        let from = (now_ms / 60_000).saturating_sub(FAILED_WINDOW_MIN - 1);
        self.failed
            .iter()
            .filter(|(m, _)| *m >= from)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }

    fn forget_failures_before(&mut self, minute: u64) {
        let from = minute.saturating_sub(FAILED_WINDOW_MIN - 1);
        self.failed.retain(|(m, _)| *m >= from);
    }
}

pub(super) fn get(v: &impl View, name: &str) -> Result<Activity> {
    Ok(one_record(&v.table(ACTIVITY)?, "activity", name)?.unwrap_or_default())
}

pub(super) fn all(v: &impl View) -> Result<Vec<(String, Activity)>> {
    let t = v.table(ACTIVITY)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, val) = row?;
        let name = k.value().to_string();
        let a = super::decode("activity", &name, val.value())?;
        out.push((name, a));
    }
    Ok(out)
}

/// An upload to record with its Sender's activity.
pub struct Received<'a> {
    pub sender: &'a str,
    pub pipe: &'a str,
    pub path: &'a str,
    pub size: u64,
    pub crc32c: String,
    pub proto: Option<&'a str>,
}

impl Writer {
    pub fn put_activity(&self, name: &str, a: &Activity) -> Result<()> {
        self.txn
            .open_table(ACTIVITY)?
            .insert(name, encode(a).as_slice())?;
        Ok(())
    }

    pub(super) fn remove_activity(&self, name: &str) -> Result<()> {
        self.txn.open_table(ACTIVITY)?.remove(name)?;
        Ok(())
    }

    /// An acknowledged upload: its Sender's activity, its `upload.received` event, and
    /// `sender.back` if the Sender was silent. Part of the upload's own commit.
    pub fn note_upload(&self, r: &Received, now_ms: u64, day: i64) -> Result<()> {
        self.note_uploads(std::slice::from_ref(r), now_ms, day)
    }

    /// The uploads of one group commit, in order: each Sender's activity read and
    /// written once, the events numbered together.
    pub fn note_uploads(&self, uploads: &[Received], now_ms: u64, day: i64) -> Result<()> {
        let mut activities: Vec<(&str, Activity)> = Vec::new();
        let mut events = Vec::with_capacity(uploads.len());
        for r in uploads {
            let i = match activities.iter().position(|(s, _)| *s == r.sender) {
                Some(i) => i,
                None => {
                    activities.push((r.sender, self.activity(r.sender)?));
                    activities.len() - 1
                }
            };
            let last = LastUpload {
                time_ms: now_ms,
                pipe: r.pipe.to_string(),
                path: r.path.to_string(),
                size: r.size,
            };
            let was_silent = activities[i].1.upload(day, last);
            events.push((
                Event {
                    sender: Some(r.sender.to_string()),
                    pipe: Some(r.pipe.to_string()),
                    path: Some(r.path.to_string()),
                    size: Some(r.size),
                    crc32c: Some(r.crc32c.clone()),
                    proto: r.proto.map(str::to_string),
                    ..Event::of(Kind::UploadReceived)
                },
                now_ms,
            ));
            if was_silent {
                events.push((
                    Event {
                        sender: Some(r.sender.to_string()),
                        pipe: Some(r.pipe.to_string()),
                        ..Event::of(Kind::SenderBack)
                    },
                    now_ms,
                ));
            }
        }
        for (name, a) in &activities {
            // A Sender removed while its upload was on its way has no record to keep.
            if self.sender(name)?.is_some() {
                self.put_activity(name, a)?;
            }
        }
        self.record_events(events)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(size: u64) -> LastUpload {
        LastUpload {
            time_ms: 0,
            pipe: "p".into(),
            path: "/a".into(),
            size,
        }
    }

    #[test]
    fn today_starts_again_on_a_new_local_day_and_totals_keep_counting() {
        let mut a = Activity::default();
        a.upload(100, up(10));
        a.upload(100, up(5));
        assert_eq!(a.today(100), (2, 15));
        a.upload(101, up(7));
        assert_eq!(a.today(101), (1, 7));
        assert_eq!(a.today(102), (0, 0));
        assert_eq!((a.uploads_total, a.bytes_total), (3, 22));
    }

    #[test]
    fn failed_logins_count_the_last_hour_and_keep_at_most_sixty_minutes() {
        let mut a = Activity::default();
        let t0 = 1_000 * 60_000;
        for m in 0..200 {
            a.login_failed(t0 + m * 60_000);
            a.login_failed(t0 + m * 60_000 + 1);
        }
        assert!(a.failed.len() <= 60, "{}", a.failed.len());
        assert_eq!(a.failed_last_hour(t0 + 199 * 60_000), 120);
        assert_eq!(a.failed_last_hour(t0 + 400 * 60_000), 0);
    }

    #[test]
    fn an_upload_ends_a_silence_once() {
        let mut a = Activity {
            silent: true,
            ..Activity::default()
        };
        assert!(a.upload(1, up(1)));
        assert!(!a.upload(1, up(1)));
    }
}
