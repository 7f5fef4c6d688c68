//! The spare pool on a real directory: kept, listed in batches, trimmed, renewed, and
//! settled after a crash.

use super::*;
use crate::spool::disk::Os;

fn empty_files(dir: &Path, names: impl IntoIterator<Item = String>) {
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        std::fs::write(dir.join(name), b"").unwrap();
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn every_released_body_is_kept_and_only_a_batch_is_listed_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (spare, bodies) = (dir.path().join("spare"), dir.path().join("ready"));
    empty_files(&spare, (0..5).map(|i| format!("e{i}")));
    // A crash lost the truncation of one.
    std::fs::write(spare.join("full"), b"bytes of a delivered upload").unwrap();
    let s = Spares::open(&Os, spare.clone(), 3).unwrap();
    assert_eq!(s.lock().names.len(), 3, "one batch listed");
    assert!(s.lock().unlisted);
    // Far more released bodies than a batch: all kept, none deleted.
    std::fs::create_dir_all(&bodies).unwrap();
    for i in 0..10 {
        std::fs::write(bodies.join(format!("b{i}")), b"12345").unwrap();
        let b = bodies.join(format!("b{i}"));
        assert_eq!(s.keep(&Os, [b.clone(), b], &format!("b{i}")), Some(5));
    }
    assert_eq!(count(&bodies), 0);
    assert_eq!(std::fs::metadata(spare.join("b9")).unwrap().len(), 0);
    // A body that is nowhere: nothing done.
    let gone = bodies.join("gone");
    assert_eq!(s.keep(&Os, [gone.clone(), gone], "gone"), None);
    // Every one is taken in turn, the unlisted read a batch at a time, and the full
    // one is deleted on the way, not handed out.
    let taken = dir.path().join("new");
    for n in 0..15 {
        let file = s.take(&Os, &taken).unwrap_or_else(|| panic!("spare {n}"));
        assert_eq!(file.metadata().unwrap().len(), 0);
        std::fs::remove_file(&taken).unwrap();
    }
    assert!(s.take(&Os, &taken).is_none(), "all taken");
    assert_eq!(count(&spare), 0);
}

#[test]
fn the_unlisted_are_trimmed_only_while_uploads_do_not_draw_the_pool_down() {
    let dir = tempfile::tempdir().unwrap();
    let spare = dir.path().join("spare");
    empty_files(&spare, (0..20).map(|i| format!("e{i}")));
    let s = Spares::open(&Os, spare.clone(), 4).unwrap();
    // Uploads took two since the last trim, nothing was kept: no trim.
    let taken = dir.path().join("new");
    for _ in 0..2 {
        s.take(&Os, &taken).unwrap();
        std::fs::remove_file(&taken).unwrap();
    }
    assert_eq!(s.trim(&Os, 5).unwrap(), 0);
    assert_eq!(count(&spare), 18);
    // Quiet since: trimmed a batch at a time down to the listed ones.
    for batch in [5, 5, 5, 1, 0] {
        assert_eq!(s.trim(&Os, 5).unwrap(), batch);
    }
    assert_eq!(count(&spare), 2, "the listed ones stay");
    for _ in 0..2 {
        s.take(&Os, &taken).unwrap();
        std::fs::remove_file(&taken).unwrap();
    }
    assert!(s.take(&Os, &taken).is_none());
}

#[test]
fn the_directory_a_large_pool_left_is_renewed_once_it_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let spare = dir.path().join("spare");
    empty_files(&spare, (0..3000).map(|i| format!("{i:032x}")));
    let s = Spares::open(&Os, spare.clone(), 4).unwrap();
    let big = std::fs::metadata(&spare).unwrap().len();
    if big <= idle_dir_bytes(4) {
        eprintln!("SKIPPED: this file system does not report a directory's blocks");
        return;
    }
    while s.trim(&Os, 1000).unwrap() == 1000 {}
    let size = std::fs::metadata(&spare).unwrap().len();
    assert!(size <= idle_dir_bytes(4), "{big} bytes, then {size}");
    assert_eq!(count(&spare), 4, "the listed spares moved with it");
    assert!(!spare.with_extension("new").exists());
    let taken = dir.path().join("new-body");
    for n in 0..4 {
        s.take(&Os, &taken).unwrap_or_else(|| panic!("spare {n}"));
        std::fs::remove_file(&taken).unwrap();
    }
    assert!(s.take(&Os, &taken).is_none());
}

#[test]
fn a_renewal_a_crash_cut_short_is_settled_when_the_pool_opens() {
    let dir = tempfile::tempdir().unwrap();
    let spare = dir.path().join("spare");
    let new = spare.with_extension("new");
    // Cut after the old directory went: the new one takes its place.
    empty_files(&new, ["a".to_string(), "b".to_string()]);
    let s = Spares::open(&Os, spare.clone(), 10).unwrap();
    assert!(!new.exists());
    assert_eq!(s.lock().names.len(), 2);
    // Cut before: the old one stays, the half-filled new one goes.
    empty_files(&new, ["c".to_string()]);
    let s = Spares::open(&Os, spare.clone(), 10).unwrap();
    assert!(!new.exists());
    assert_eq!(s.lock().names.len(), 2);
}

#[test]
fn a_filesystem_keeps_an_eighth_of_its_inodes_free() {
    assert!(has_room(0, 0), "no fixed number of inodes");
    assert!(has_room(800, 101));
    assert!(!has_room(800, 100));
    assert!(!has_room(800, 0));
}

#[test]
fn a_spare_name_a_power_cut_kept_beside_its_body_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (spare, tmp) = (dir.path().join("spare"), dir.path().join("tmp"));
    std::fs::create_dir_all(&spare).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    // An empty upload took a spare; the power cut kept both names.
    std::fs::write(tmp.join("body"), b"").unwrap();
    std::fs::hard_link(tmp.join("body"), spare.join("taken")).unwrap();
    std::fs::write(spare.join("free"), b"").unwrap();
    let s = Spares::open(&Os, spare.clone(), 10).unwrap();
    assert!(
        !spare.join("taken").exists(),
        "a body's second name is no spare"
    );
    assert!(tmp.join("body").exists(), "the body stays");
    assert!(spare.join("free").exists());
    let into = dir.path().join("new");
    assert!(s.take(&Os, &into).is_some());
    assert!(s.take(&Os, &into).is_none(), "one spare only");
}
