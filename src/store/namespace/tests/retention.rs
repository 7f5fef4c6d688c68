//! Retention, case by case: what a device sees of its delivered files as the steady
//! clock moves, and what it never loses. The model test covers the orders of events.

use std::time::Duration;

use super::*;
use crate::store::catalog::expire::DEFAULT_KEEP_MS;

const MIN: Duration = Duration::from_secs(60);

/// One upload to `path` in Pipe `pipa` (keep-delivered 60 s), delivered if `deliver`.
fn upload(s: &Store, path: &str, deliver: bool) {
    s.write(|w| w.publish("pipa", &v(path), Overwrite::Replace, true, up(path), 0))
        .unwrap();
    if deliver {
        let ops = s.write(|w| w.claim_ready("pipa", u64::MAX, 100)).unwrap();
        let done: Vec<(u64, Outcome)> = ops.iter().map(|o| (o.id, Outcome::Done)).collect();
        s.write(|w| w.settle(&done)).unwrap();
    }
}

fn listed(s: &Store, dir: &str) -> Vec<String> {
    let r = s.read().unwrap();
    r.children_page("pipa", &v(dir), None, 1000)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn expire(s: &Store, cap: u64) -> u64 {
    s.write(|w| w.expire(cap, 10_000)).unwrap().forgotten
}

#[test]
fn a_delivered_file_stays_listed_for_the_window_then_behaves_as_if_never_uploaded() {
    let w = World::new(1);
    let s = &w.store;
    upload(s, "/cam/a.jpg", true);
    s.advance_steady(MIN / 2);
    assert_eq!(expire(s, u64::MAX), 0);
    assert_eq!(
        listed(s, "/cam"),
        ["a.jpg"],
        "a camera still sees its upload"
    );
    s.advance_steady(MIN);
    assert_eq!(expire(s, u64::MAX), 1);
    assert!(listed(s, "/cam").is_empty());
    let r = s.read().unwrap();
    assert_eq!(r.entry("pipa", &v("/cam/a.jpg")).unwrap(), None);
    drop(r);
    assert!(matches!(
        s.write(|w| w.delete("pipa", &v("/cam/a.jpg"), 0)),
        Err(crate::store::Error::NotFound(_))
    ));
    assert!(matches!(
        s.write(|w| w.rename("pipa", &v("/cam/a.jpg"), &v("/b"), 0)),
        Err(crate::store::Error::NotFound(_))
    ));
    assert_eq!(
        r_backlog(s),
        0,
        "forgetting queues nothing: the object at the destination is untouched"
    );
    // The directory it left empty goes one window later.
    s.advance_steady(MIN * 2);
    expire(s, u64::MAX);
    assert!(listed(s, "/").is_empty());
}

fn r_backlog(s: &Store) -> u64 {
    s.read().unwrap().backlog("pipa").unwrap().ops
}

#[test]
fn an_undelivered_file_is_never_forgotten_however_long_or_full() {
    let w = World::new(1);
    let s = &w.store;
    upload(s, "/sent.jpg", true);
    upload(s, "/waiting.jpg", false);
    s.advance_steady(Duration::from_secs(10 * 365 * 86_400));
    expire(s, 0);
    assert_eq!(listed(s, "/"), ["waiting.jpg"]);
    assert_eq!(r_backlog(s), 1);
}

#[test]
fn past_the_cap_the_oldest_delivered_go_first() {
    let w = World::new(1);
    let s = &w.store;
    for name in ["/1", "/2", "/3", "/4"] {
        upload(s, name, true);
        s.advance_steady(Duration::from_millis(10));
    }
    assert_eq!(expire(s, 2), 2);
    assert_eq!(listed(s, "/"), ["3", "4"]);
}

#[test]
fn a_directory_made_by_mkd_is_kept_while_younger_than_the_window() {
    let w = World::new(1);
    let s = &w.store;
    s.write(|w| w.mkdir("pipa", &v("/empty"), 0)).unwrap();
    s.write(|w| w.mkdir("pipa", &v("/full"), 0)).unwrap();
    upload(s, "/full/x", true);
    let ops = s.write(|w| w.claim_ready("pipa", u64::MAX, 100)).unwrap();
    let done: Vec<(u64, Outcome)> = ops.iter().map(|o| (o.id, Outcome::Done)).collect();
    s.write(|w| w.settle(&done)).unwrap();
    s.advance_steady(MIN / 2);
    expire(s, u64::MAX);
    assert_eq!(listed(s, "/"), ["empty", "full"]);
    s.advance_steady(MIN);
    expire(s, u64::MAX);
    assert_eq!(
        listed(s, "/"),
        ["full"],
        "the file under /full went, /full is new"
    );
    assert!(listed(s, "/full").is_empty());
}

#[test]
fn an_entry_with_an_op_still_queued_waits_for_it() {
    let w = World::new(1);
    let s = &w.store;
    upload(s, "/a", true);
    // Renamed while the destination is down: the rename is queued on /b.
    s.write(|w| w.rename("pipa", &v("/a"), &v("/b"), 0))
        .unwrap();
    s.advance_steady(MIN * 2);
    expire(s, u64::MAX);
    assert_eq!(listed(s, "/"), ["b"], "listed until the destination has it");
}

#[test]
fn a_wall_clock_that_leaps_years_forgets_nothing_early() {
    let w = World::new(1);
    let s = &w.store;
    upload(s, "/a", true);
    // NTP answers for the first time on a box that booted in 1970.
    crate::clock::shift(Duration::from_secs(56 * 365 * 86_400));
    assert_eq!(expire(s, u64::MAX), 0);
    assert_eq!(listed(s, "/"), ["a"]);
}

#[test]
fn the_steady_clock_goes_on_from_where_it_was_after_a_restart() {
    let mut w = World::new(1);
    w.store.advance_steady(MIN * 90);
    let before = w.store.steady_ms();
    expire(&w.store, u64::MAX);
    w.crash();
    assert!(w.store.steady_ms() >= before, "it never goes back");
}

#[test]
fn pipes_without_a_window_of_their_own_keep_a_day() {
    assert_eq!(DEFAULT_KEEP_MS, 86_400_000);
    let pipe = crate::store::pipes::PipeSpec {
        name: "p".into(),
        dest: "file:///tmp/x".into(),
        ..Default::default()
    }
    .build("pipx".into(), None, 0)
    .unwrap();
    assert_eq!(pipe.keep_delivered_ms(), DEFAULT_KEEP_MS);
}

/// A retry set for 15 s ahead, then the wall clock is set back a year (NTP corrects a
/// clock that ran ahead): the op goes at the next look, not in a year.
#[test]
fn a_wall_clock_set_back_does_not_strand_a_retry() {
    let w = World::new(1);
    let s = &w.store;
    let now = 1_800_000_000_000;
    s.write(|w| w.publish("pipa", &v("/a"), Overwrite::Replace, false, up("a"), now))
        .unwrap();
    let ops = s.write(|w| w.claim_ready("pipa", now, 10)).unwrap();
    let retry = Outcome::Retry {
        due_ms: now + 15_000,
        error: "down".into(),
    };
    s.write(|w| w.settle(&[(ops[0].id, retry)])).unwrap();
    let year_ago = now - 365 * 86_400_000;
    let r = s.read().unwrap();
    assert_eq!(r.next_due("pipa", year_ago).unwrap(), Some(year_ago));
    drop(r);
    let again = s.write(|w| w.claim_ready("pipa", year_ago, 10)).unwrap();
    assert_eq!(again.len(), 1);
    // A retry a few seconds ahead of a clock that did not jump still waits.
    let retry = Outcome::Retry {
        due_ms: now + 15_000,
        error: "down".into(),
    };
    s.write(|w| w.settle(&[(again[0].id, retry)])).unwrap();
    assert!(
        s.write(|w| w.claim_ready("pipa", now, 10))
            .unwrap()
            .is_empty()
    );
}

/// SFTP `put -p` (or `MFMT`) sets the mtime after the upload's close, while its put may
/// already be on its way: the destination must still end with the new mtime.
#[test]
fn an_mtime_set_while_the_put_is_delivered_reaches_the_destination() {
    let w = World::new(1);
    let s = &w.store;
    s.write(|w| w.publish("pipa", &v("/a"), Overwrite::Replace, false, up("a"), 0))
        .unwrap();
    let first = s.write(|w| w.claim_ready("pipa", 0, 10)).unwrap();
    s.write(|w| w.set_mtime("pipa", &v("/a"), 1_600_000_000))
        .unwrap();
    // The destination got the old mtime.
    s.write(|w| w.settle(&[(first[0].id, Outcome::Done)]))
        .unwrap();
    let again = s.write(|w| w.claim_ready("pipa", 0, 10)).unwrap();
    assert_eq!(again.len(), 1, "the put goes once more");
    match &again[0].action {
        crate::store::outbox::Action::Put { mtime, body, .. } => {
            assert_eq!((*mtime, body.as_str()), (1_600_000_000, "a"));
        }
        other => panic!("{other:?}"),
    }
    s.write(|w| w.settle(&[(again[0].id, Outcome::Done)]))
        .unwrap();
    let r = s.read().unwrap();
    assert_eq!(r.backlog("pipa").unwrap().ops, 0);
    let e = r.entry("pipa", &v("/a")).unwrap().unwrap();
    assert_eq!((e.state, e.mtime), (Delivery::Delivered, 1_600_000_000));
}

/// The daemon looks before it writes: nothing due, nothing written.
#[test]
fn expiry_is_due_only_past_the_window_or_the_cap() {
    let w = World::new(1);
    let s = &w.store;
    upload(s, "/a", true);
    let due = |cap| {
        let now = s.steady_ms();
        s.read().unwrap().expiry_due(cap, now).unwrap()
    };
    assert!(!due(10));
    assert!(due(0), "over the cap");
    s.advance_steady(MIN * 2);
    assert!(due(10), "past the window");
    expire(s, 10);
    assert!(!due(10));
}
