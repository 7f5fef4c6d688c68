//! Catalog and outbox against a real store: namespace rules, overwrite policies, and
//! the coalescing rules (docs/ARCHITECTURE.md).

use ftpgate::store::catalog::{Delivery, Kind, Upload};
use ftpgate::store::namespace::Overwrite;
use ftpgate::store::outbox::{Action, Op, Outcome};
use ftpgate::store::{Store, View};
use ftpgate::vfs::VPath;

const P: &str = "line1";

fn v(s: &str) -> VPath {
    VPath::root().resolve(s).unwrap()
}

fn up(body: &str, size: u64) -> Upload {
    Upload {
        body: body.into(),
        size,
        sum: ftpgate::checksum::Checksum::Crc32c(0),
        mtime: 1000,
        sender: "cam1".into(),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("db")).unwrap();
    (d, s)
}

fn ops(s: &Store) -> Vec<Op> {
    s.read().unwrap().ops_page(None, 0, usize::MAX).unwrap()
}

fn actions(s: &Store) -> Vec<Action> {
    ops(s).into_iter().map(|o| o.action).collect()
}

/// Ops of the Pipe that may start at `now`.
fn ready(s: &Store, now: u64) -> Vec<u64> {
    s.read().unwrap().ready(P, now, 100).unwrap()
}

fn put(path: &str, body: &str, size: u64) -> Action {
    Action::Put {
        path: path.into(),
        body: body.into(),
        size,
        sum: ftpgate::checksum::Checksum::Crc32c(0),
        mtime: 1000,
        sender: "cam1".into(),
    }
}

#[test]
fn namespace_rules() {
    let (_d, s) = store();
    s.write(|w| w.mkdir(P, &v("/a"), 1)).unwrap();
    assert!(matches!(
        s.write(|w| w.mkdir(P, &v("/a"), 1)),
        Err(ftpgate::store::Error::Exists(_))
    ));
    assert!(matches!(
        s.write(|w| w.mkdir(P, &v("/x/y"), 1)),
        Err(ftpgate::store::Error::NoParent(_))
    ));
    s.write(|w| {
        w.publish(
            P,
            &v("/a/f.jpg"),
            Overwrite::Replace,
            false,
            up("b1", 10),
            0,
        )
    })
    .unwrap();
    assert!(matches!(
        s.write(|w| w.publish(P, &v("/nodir/f"), Overwrite::Replace, false, up("b2", 1), 0)),
        Err(ftpgate::store::Error::NoParent(_))
    ));
    assert!(matches!(
        s.write(|w| w.publish(P, &v("/a"), Overwrite::Replace, false, up("b2", 1), 0)),
        Err(ftpgate::store::Error::IsADirectory(_))
    ));
    assert!(matches!(
        s.write(|w| w.rmdir(P, &v("/a"), 1)),
        Err(ftpgate::store::Error::NotEmpty(_))
    ));
    assert!(matches!(
        s.write(|w| w.delete(P, &v("/a"), 1)),
        Err(ftpgate::store::Error::IsADirectory(_))
    ));
    let r = s.read().unwrap();
    let kids = r.children_page(P, &v("/a"), None, 100).unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(
        (kids[0].0.as_str(), kids[0].1.kind, kids[0].1.size),
        ("f.jpg", Kind::File, 10)
    );
    assert_eq!(
        r.children_page(P, &VPath::root(), None, 100).unwrap().len(),
        1,
        "only direct children"
    );
    assert!(
        r.children_page("other", &VPath::root(), None, 100)
            .unwrap()
            .is_empty(),
        "pipes are separate"
    );
}

#[test]
fn overwrite_policies() {
    let (_d, s) = store();
    s.write(|w| w.publish(P, &v("/f.jpg"), Overwrite::KeepBoth, false, up("b1", 1), 0))
        .unwrap();
    let p2 = s
        .write(|w| w.publish(P, &v("/f.jpg"), Overwrite::KeepBoth, false, up("b2", 2), 0))
        .unwrap();
    assert_eq!(p2.path, v("/f-2.jpg"));
    let p3 = s
        .write(|w| w.publish(P, &v("/f.jpg"), Overwrite::KeepBoth, false, up("b3", 3), 0))
        .unwrap();
    assert_eq!(p3.path, v("/f-3.jpg"));
    assert!(matches!(
        s.write(|w| w.publish(P, &v("/f.jpg"), Overwrite::Refuse, false, up("b4", 4), 0)),
        Err(ftpgate::store::Error::OverwriteRefused(_))
    ));
    assert_eq!(actions(&s).len(), 3, "the refused upload queued nothing");
}

#[test]
fn coalescing_of_undelivered_files() {
    let (_d, s) = store();
    // A replaced undelivered put swaps its body; the old body is freed.
    s.write(|w| w.publish(P, &v("/a"), Overwrite::Replace, false, up("b1", 1), 0))
        .unwrap();
    let p = s
        .write(|w| w.publish(P, &v("/a"), Overwrite::Replace, false, up("b2", 2), 0))
        .unwrap();
    assert_eq!(p.freed, vec!["b1".to_string()]);
    assert_eq!(actions(&s), vec![put("/a", "b2", 2)]);
    // A rename retargets it.
    s.write(|w| w.rename(P, &v("/a"), &v("/b"), 1)).unwrap();
    assert_eq!(actions(&s), vec![put("/b", "b2", 2)]);
    // DELE cancels it and frees the body; nothing reaches the destination.
    let freed = s.write(|w| w.delete(P, &v("/b"), 1)).unwrap();
    assert_eq!(freed, vec!["b2".to_string()]);
    assert!(actions(&s).is_empty());
}

#[test]
fn an_in_flight_put_is_never_rewritten() {
    let (_d, s) = store();
    s.write(|w| w.publish(P, &v("/a"), Overwrite::Replace, false, up("b1", 1), 0))
        .unwrap();
    s.write(|w| w.claim_ready(P, u64::MAX, 10)).unwrap();
    let p = s
        .write(|w| w.publish(P, &v("/a"), Overwrite::Replace, false, up("b2", 2), 0))
        .unwrap();
    assert!(p.freed.is_empty());
    assert_eq!(actions(&s), vec![put("/a", "b1", 1), put("/a", "b2", 2)]);
    // DELE cancels the second (queued) put, and must delete what the running one sends.
    let freed = s.write(|w| w.delete(P, &v("/a"), 1)).unwrap();
    assert_eq!(freed, vec!["b2".to_string()]);
    assert_eq!(
        actions(&s),
        vec![put("/a", "b1", 1), Action::Delete { path: "/a".into() }]
    );
    // Only the first may run (order per key); the others wait behind it.
    let due = ready(&s, u64::MAX);
    assert!(due.is_empty(), "{due:?}");
}

#[test]
fn delivered_files_are_deleted_and_renamed_at_the_destination() {
    let (_d, s) = store();
    s.write(|w| w.mkdir(P, &v("/d"), 1)).unwrap();
    s.write(|w| w.publish(P, &v("/d/f"), Overwrite::Replace, false, up("b1", 1), 0))
        .unwrap();
    // The put does not wait for the MKD of its directory (destinations make it).
    assert_eq!(ready(&s, u64::MAX).len(), 2);
    // Both delivered together; only the put frees a body.
    let freed = s
        .write(|w| {
            let claimed = w.claim_ready(P, u64::MAX, 10)?;
            assert_eq!(claimed.len(), 2);
            let done: Vec<_> = claimed.iter().map(|op| (op.id, Outcome::Done)).collect();
            w.settle(&done)
        })
        .unwrap();
    assert_eq!(freed, vec!["b1".to_string()]);
    let e = s.read().unwrap().entry(P, &v("/d/f")).unwrap().unwrap();
    assert_eq!((e.state, e.body), (Delivery::Delivered, None));
    // A directory rename moves its children and markers, in an order S3 can follow.
    s.write(|w| w.rename(P, &v("/d"), &v("/e"), 2)).unwrap();
    assert_eq!(
        actions(&s),
        vec![
            Action::MkDir { path: "/e".into() },
            Action::Rename {
                from: "/d/f".into(),
                to: "/e/f".into()
            },
            Action::RmDir { path: "/d".into() },
        ]
    );
    assert!(s.read().unwrap().entry(P, &v("/e/f")).unwrap().is_some());
    assert!(s.read().unwrap().entry(P, &v("/d")).unwrap().is_none());
    s.write(|w| w.delete(P, &v("/e/f"), 3)).unwrap();
    assert_eq!(
        actions(&s).last(),
        Some(&Action::Delete {
            path: "/e/f".into()
        })
    );
    assert!(matches!(
        s.write(|w| w.rename(P, &v("/e"), &v("/e/x"), 3)),
        Err(ftpgate::store::Error::IntoItself(_))
    ));
}

#[test]
fn retry_park_and_unpark() {
    let (_d, s) = store();
    s.write(|w| w.publish(P, &v("/a"), Overwrite::Replace, false, up("b1", 1), 0))
        .unwrap();
    let id = ops(&s)[0].id;
    let retry = Outcome::Retry {
        due_ms: 5_000,
        error: "connection refused".into(),
    };
    s.write(|w| {
        w.claim_ready(P, 0, 10)?;
        w.settle(&[(id, retry)])
    })
    .unwrap();
    assert!(ready(&s, 4_999).is_empty());
    assert_eq!(ready(&s, 5_000), vec![id]);
    let park = Outcome::Park {
        reason: "AccessDenied".into(),
    };
    s.write(|w| {
        w.claim_ready(P, 5_000, 10)?;
        w.settle(&[(id, park)])
    })
    .unwrap();
    assert!(ready(&s, u64::MAX).is_empty());
    assert_eq!(ops(&s)[0].parked.as_deref(), Some("AccessDenied"));
    assert_eq!(s.read().unwrap().backlog(P).unwrap().parked, 1);
    assert_eq!(s.write(|w| w.unpark(None, Some(P), 6_000)).unwrap(), 1);
    assert_eq!(ready(&s, 6_000), vec![id]);
    assert_eq!(s.read().unwrap().backlog(P).unwrap().parked, 0);
    assert!(s.write(|w| w.unpark(Some(999), None, 0)).is_err());
}

/// A camera that always sends `img.jpg` under keep-both: each copy takes the next
/// suffix from where the last one left off, not by probing every earlier copy, so a
/// deleted copy's name is not handed out again.
#[test]
fn keep_both_continues_from_the_last_suffix() {
    let (_d, s) = store();
    let keep = |b: &str| {
        s.write(|w| w.publish(P, &v("/img.jpg"), Overwrite::KeepBoth, false, up(b, 1), 0))
            .unwrap()
            .path
    };
    assert_eq!(keep("b1"), v("/img.jpg"));
    for n in 2..=50 {
        assert_eq!(keep(&format!("b{n}")), v(&format!("/img-{n}.jpg")));
    }
    s.write(|w| w.delete(P, &v("/img-2.jpg"), 1)).unwrap();
    assert_eq!(keep("b51"), v("/img-51.jpg"));
    // A name taken by someone else is still skipped.
    s.write(|w| {
        w.publish(
            P,
            &v("/img-52.jpg"),
            Overwrite::Replace,
            false,
            up("x", 1),
            0,
        )
    })
    .unwrap();
    assert_eq!(keep("b53"), v("/img-53.jpg"));
}

/// A name near the 255-byte limit under keep-both: the suffix would push the copy's
/// name past what any file system or S3 client takes, so the upload is refused before
/// its data (the check the FTP side runs before `150`), never acknowledged and then
/// refused by the destination.
#[test]
fn a_keep_both_name_longer_than_255_bytes_is_refused_before_the_upload() {
    let (_d, s) = store();
    let long = format!("/{}.jpg", "n".repeat(251));
    s.write(|w| w.publish(P, &v(&long), Overwrite::KeepBoth, false, up("b1", 1), 0))
        .unwrap();
    let r = s.read().unwrap();
    assert!(matches!(
        r.check_upload(P, &v(&long), Overwrite::KeepBoth, false),
        Err(ftpgate::store::Error::DerivedNameTooLong(_))
    ));
    drop(r);
    assert!(matches!(
        s.write(|w| w.publish(P, &v(&long), Overwrite::KeepBoth, false, up("b2", 1), 0)),
        Err(ftpgate::store::Error::DerivedNameTooLong(_))
    ));
    // One byte shorter still fits: `-2` makes it 255.
    let fits = format!("/{}.jpg", "n".repeat(249));
    for b in ["c1", "c2"] {
        s.write(|w| w.publish(P, &v(&fits), Overwrite::KeepBoth, false, up(b, 1), 0))
            .unwrap();
    }
}

/// `create_dirs`: an upload into missing directories makes them in the same transaction,
/// outermost first, each with its marker queued before the put; a file where a directory
/// must go is refused and nothing is written.
#[test]
fn an_upload_creates_missing_directories_when_the_pipe_says_so() {
    let (_d, s) = store();
    s.write(|w| w.mkdir(P, &v("/cam7"), 1)).unwrap();
    s.write(|w| {
        w.publish(
            P,
            &v("/cam7/2026/11/snap.jpg"),
            Overwrite::Replace,
            true,
            up("b1", 5),
            0,
        )
    })
    .unwrap();
    let r = s.read().unwrap();
    for dir in ["/cam7/2026", "/cam7/2026/11"] {
        assert_eq!(
            r.entry(P, &v(dir)).unwrap().unwrap().kind,
            Kind::Dir,
            "{dir}"
        );
    }
    drop(r);
    let mkdir = |p: &str| Action::MkDir { path: p.into() };
    assert_eq!(
        actions(&s),
        vec![
            mkdir("/cam7"),
            mkdir("/cam7/2026"),
            mkdir("/cam7/2026/11"),
            put("/cam7/2026/11/snap.jpg", "b1", 5)
        ]
    );
    let before = actions(&s).len();
    assert!(matches!(
        s.write(|w| w.publish(
            P,
            &v("/cam7/2026/11/snap.jpg/x/y.jpg"),
            Overwrite::Replace,
            true,
            up("b2", 1),
            0
        )),
        Err(ftpgate::store::Error::NotADirectory(_))
    ));
    assert_eq!(actions(&s).len(), before, "nothing was written");
}
