//! Released bodies are emptied and reused by later uploads (see `spool::spares`), never
//! under a reader.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::*;

/// The spool body of the newest version of `path`, and where it is.
fn body_of(w: &World, path: &str) -> (String, PathBuf) {
    let entry = w
        .store
        .read()
        .unwrap()
        .entry(PIPE, &VPath::from_normalised(path))
        .unwrap()
        .unwrap();
    let id = entry.body.unwrap();
    let file = w.spool.body_path(&id).unwrap();
    (id, file)
}

#[test]
fn a_released_body_is_emptied_and_the_next_upload_reuses_its_file() {
    let w = World::new();
    w.upload("/a", &bytes(10_000)).unwrap();
    let (id, file) = body_of(&w, "/a");
    let inode = std::fs::metadata(&file).unwrap().ino();
    // The new version replaces the undelivered one: its body is released.
    w.upload("/a", &bytes(30_000)).unwrap();
    let spare = w.state.spool_spare().join(&id);
    let kept = std::fs::metadata(&spare).unwrap();
    assert_eq!(kept.len(), 0, "emptied: no stored byte stays behind");
    assert_eq!(kept.ino(), inode, "kept, not deleted");
    w.upload("/b", &bytes(5_000)).unwrap();
    let (_, b) = body_of(&w, "/b");
    assert_eq!(
        std::fs::metadata(&b).unwrap().ino(),
        inode,
        "the next upload took the spare"
    );
    assert_eq!(
        std::fs::read(&b).unwrap(),
        bytes(5_000),
        "with its own bytes only"
    );
    assert_eq!(std::fs::read(body_of(&w, "/a").1).unwrap(), bytes(30_000));
    assert_eq!(w.on_disk(), w.spool.used());
}

#[test]
fn a_body_released_while_it_is_read_is_deleted_not_emptied() {
    let w = World::new();
    w.upload("/a", &bytes(10_000)).unwrap();
    let (id, file) = body_of(&w, "/a");
    let reading = w.spool.reading(&id);
    let mut open = std::fs::File::open(&file).unwrap();
    w.upload("/a", &bytes(20_000)).unwrap();
    assert!(!file.exists(), "released");
    assert!(
        !w.state.spool_spare().join(&id).exists(),
        "not kept for reuse while it is read"
    );
    let mut got = Vec::new();
    open.read_to_end(&mut got).unwrap();
    assert_eq!(got, bytes(10_000), "the reader still reads the whole body");
    drop(reading);
    // Released without a reader: kept.
    let (id2, _) = body_of(&w, "/a");
    w.upload("/a", &bytes(1_000)).unwrap();
    assert!(w.state.spool_spare().join(&id2).exists());
    assert_eq!(w.on_disk(), w.spool.used());
}
