//! Events and activity with no commit of their own: logins (failed or not), bans,
//! silent Senders, Pipes offline, a spool or state file filling up. Sessions hand them to
//! the [`Recorder`] without waiting; the daemon's watch (`daemon::watch`) writes whatever
//! gathered in one commit at most once a second, so a password-guessing bot costs one
//! commit a second, not one per guess. Upload events ride in the commits that already
//! happen (`store::events`).

use std::sync::Mutex;

use crate::clock::now_ms;
use crate::store::activity::LastLogin;
use crate::store::events::{Event, Kind};
use crate::store::{self, Store, View, Writer};

/// Most items waiting for the next commit; beyond it new ones are dropped and counted
/// (a flood of failed logins must not grow the daemon's memory).
const MAX_PENDING: usize = 10_000;

/// What waits for the next commit.
#[derive(Default)]
struct Pending {
    events: Vec<(Event, u64)>,
    logins: Vec<(String, LastLogin)>,
    /// Failed logins of existing Senders, counted in their activity.
    failed: Vec<(String, u64)>,
    dropped: u64,
}

impl Pending {
    fn len(&self) -> usize {
        self.events.len() + self.logins.len() + self.failed.len()
    }
}

/// Collects events and logins from sessions and the daemon's checks.
pub struct Recorder {
    pending: Mutex<Pending>,
    /// When this daemon started (ms): a silence is counted from it at the earliest.
    started_ms: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            pending: Mutex::new(Pending::default()),
            started_ms: now_ms(),
        }
    }
}

impl Recorder {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, f: impl FnOnce(&mut Pending)) {
        let mut p = self.pending();
        if p.len() >= MAX_PENDING {
            p.dropped += 1;
        } else {
            f(&mut p);
        }
    }

    /// An event, recorded with the next batch.
    pub fn event(&self, e: Event) {
        self.push(|p| p.events.push((e, now_ms())));
    }

    /// A login that passed: the Sender's last login.
    pub fn login_ok(&self, sender: &str, address: &str, proto: &str, client: Option<&str>) {
        let login = LastLogin {
            time_ms: now_ms(),
            address: address.to_string(),
            proto: proto.to_string(),
            client: client.map(|c| crate::names::sanitize(c).chars().take(128).collect()),
        };
        self.push(|p| p.logins.push((sender.to_string(), login)));
    }

    /// A login refused: a `login.failed` event, and a failure in the Sender's activity
    /// when `user` names one.
    pub fn login_failed(&self, user: &str, address: &str, proto: &str, reason: &str) {
        let user: String = crate::names::sanitize(user).chars().take(128).collect();
        // `name@pipe` picks a Pipe: the Sender is the name.
        let (name, pipe) = match user.split_once('@') {
            Some((n, p)) => (n.to_string(), Some(p.to_string())),
            None => (user, None),
        };
        let now = now_ms();
        self.push(|p| {
            p.failed.push((name.clone(), now));
            p.events.push((
                Event {
                    sender: Some(name),
                    pipe,
                    address: Some(address.to_string()),
                    proto: Some(proto.to_string()),
                    reason: Some(reason.to_string()),
                    ..Event::of(Kind::LoginFailed)
                },
                now,
            ));
        });
    }

    /// Whether anything waits for a commit.
    pub fn is_empty(&self) -> bool {
        let p = self.pending();
        p.len() == 0 && p.dropped == 0
    }

    /// Writes everything gathered in one commit (blocking). On failure it is lost but
    /// for the log line: events are for people, the uploads are never at stake.
    pub fn flush(&self, store: &Store) -> store::Result<usize> {
        let p = std::mem::take(&mut *self.pending());
        let n = p.len();
        if n == 0 && p.dropped == 0 {
            return Ok(0);
        }
        if p.dropped > 0 {
            log::warn!(
                "events: {} events or logins came faster than they could be recorded and were not",
                p.dropped
            );
        }
        store.write(|w| write_pending(w, &p))?;
        Ok(n)
    }

    /// Marks Senders silent that have not uploaded for longer than they are expected
    /// to: read first, written only when one turned silent.
    pub fn check_silence(&self, store: &Store, now: u64) -> store::Result<()> {
        let due = {
            let r = store.read()?;
            silent_now(&r, self.started_ms, now)?
        };
        if due.is_empty() {
            return Ok(());
        }
        store.write(|w| {
            // Checked again inside the transaction: an upload may have come meanwhile.
            for (name, mut a, since) in silent_now(w, self.started_ms, now)? {
                let silent_secs = now.saturating_sub(since) / 1000;
                a.silent = true;
                w.put_activity(&name, &a)?;
                w.record_event(
                    Event {
                        sender: Some(name.clone()),
                        seconds: Some(silent_secs),
                        ..Event::of(Kind::SenderSilent)
                    },
                    now,
                )?;
                log::warn!("sender {name} is silent: no upload for {silent_secs}s");
            }
            Ok(())
        })
    }
}

fn write_pending(w: &Writer, p: &Pending) -> store::Result<()> {
    for (name, login) in &p.logins {
        if w.sender(name)?.is_some() {
            let mut a = w.activity(name)?;
            a.last_login = Some(login.clone());
            w.put_activity(name, &a)?;
        }
    }
    for (name, at) in &p.failed {
        if w.sender(name)?.is_some() {
            let mut a = w.activity(name)?;
            a.login_failed(*at);
            w.put_activity(name, &a)?;
        }
    }
    w.record_events(p.events.iter().cloned())?;
    Ok(())
}

/// When a Sender's current silence began (ms): its last upload, when `--expect-every`
/// was set (`expect_since`, seconds), or when this daemon started, whichever is latest.
fn silence_start(expect_since: u64, a: &store::activity::Activity, started_ms: u64) -> u64 {
    let last = a.last_upload.as_ref().map_or(0, |u| u.time_ms);
    expect_since.saturating_mul(1000).max(last).max(started_ms)
}

/// Senders with `--expect-every` that are not yet marked silent and should be, with
/// their activity and when their silence began.
fn silent_now(
    v: &impl View,
    started_ms: u64,
    now: u64,
) -> store::Result<Vec<(String, store::activity::Activity, u64)>> {
    let mut out = Vec::new();
    for s in v.senders()? {
        let Some(every) = s.expect_every else {
            continue;
        };
        let a = v.activity(&s.name)?;
        if a.silent {
            continue;
        }
        let since = silence_start(s.expect_since, &a, started_ms);
        if now.saturating_sub(since) > every.saturating_mul(1000) {
            out.push((s.name, a, since));
        }
    }
    Ok(out)
}
