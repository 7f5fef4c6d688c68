//! The `file://` sink against a real directory: never-overwrite puts, the sweep, the
//! directory syncs, and a destination left alone.

use super::*;

fn meta() -> Meta {
    Meta {
        sender: "cam".into(),
        pipe: "line1".into(),
        gateway: "gw".into(),
        mtime: 1_700_000_000,
        only_new: false,
        upload: "0123456789abcdef0123456789abcdef".into(),
    }
}

#[test]
fn a_pipe_that_never_overwrites_keeps_another_file_and_recognises_its_own() {
    let root = tempfile::tempdir().unwrap();
    let sink = DirSink::new(root.path().into(), "line1", false);
    let spool = tempfile::tempdir().unwrap();
    let put = |key: &str, bytes: &[u8], meta: &Meta| {
        let body = spool.path().join("body");
        fs::write(&body, bytes).unwrap();
        let sum = crate::checksum::Hasher::crc32c_of(bytes);
        sink.put(key, &body, bytes.len() as u64, &sum, meta)
    };
    let only_new = Meta {
        only_new: true,
        ..meta()
    };
    let at = root.path().join("a.jpg");
    fs::write(&at, b"the first camera's").unwrap();
    let e = put("a.jpg", b"a later upload", &only_new).unwrap_err();
    assert!(e.exists && !e.transient, "{e:?}");
    assert_eq!(fs::read(&at).unwrap(), b"the first camera's");
    assert_eq!(
        fs::read_dir(sink.staging()).unwrap().count(),
        0,
        "nothing left staged"
    );
    // Its own bytes (sent again, with a new mtime): done, the mtime set.
    put("b.jpg", b"new", &only_new).unwrap();
    let later = Meta {
        mtime: 1_800_000_000,
        ..only_new.clone()
    };
    put("b.jpg", b"new", &later).unwrap();
    let modified = fs::metadata(root.path().join("b.jpg"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        modified,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000)
    );
    // A Pipe that replaces still replaces.
    put("a.jpg", b"replaced", &meta()).unwrap();
    assert_eq!(fs::read(&at).unwrap(), b"replaced");
}

#[test]
fn a_sweep_removes_what_earlier_daemons_left_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let sink = DirSink::new(root.path().into(), "line1", false);
    let body = root.path().join("body");
    fs::write(&body, b"bytes").unwrap();
    let sum = crate::checksum::Hasher::crc32c_of(b"bytes");
    sink.put("a/b.jpg", &body, 5, &sum, &meta()).unwrap();
    let staging = sink.staging();
    // A put leaves nothing behind.
    assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
    // A killed daemon's temporary file, and one this daemon is writing right now.
    let leftover = staging.join("tmp-00000000-abcdef");
    let running = staging.join(staged_name("tmp"));
    fs::write(&leftover, b"half").unwrap();
    fs::write(&running, b"in progress").unwrap();
    assert_eq!(sink.sweep().unwrap(), 1);
    assert!(!leftover.exists());
    assert!(running.exists(), "a delivery in progress keeps its file");
    assert_eq!(fs::read(root.path().join("a/b.jpg")).unwrap(), b"bytes");
    assert_eq!(fs::read(&body).unwrap(), b"bytes");
}

/// What a power cut would take back unless the directory was fsynced: every name a
/// delivery creates, renames or removes has its directory synced before the sink
/// reports success.
#[test]
fn every_name_a_delivery_changes_has_its_directory_synced() {
    use crate::support::SYNCED;
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let sink = DirSink::new(r.into(), "line1", false);
    let body = r.join("body");
    fs::write(&body, b"bytes").unwrap();
    let sum = crate::checksum::Hasher::crc32c_of(b"bytes");
    let synced = |f: &dyn Fn()| {
        SYNCED.with(|s| s.borrow_mut().clear());
        f();
        SYNCED.with(|s| s.borrow().clone())
    };
    let put = synced(&|| {
        sink.put("a/b/c.jpg", &body, 5, &sum, &meta()).unwrap();
    });
    for dir in [r.to_path_buf(), r.join("a"), r.join("a/b")] {
        assert!(put.contains(&dir), "{} not synced: {put:?}", dir.display());
    }
    let rename = synced(&|| sink.rename("a/b/c.jpg", "d/e.jpg").unwrap());
    for dir in [r.to_path_buf(), r.join("d"), r.join("a/b")] {
        assert!(
            rename.contains(&dir),
            "{} not synced: {rename:?}",
            dir.display()
        );
    }
    let delete = synced(&|| sink.delete("d/e.jpg").unwrap());
    assert!(delete.contains(&r.join("d")), "{delete:?}");
    let mkdir = synced(&|| sink.mkdir("x/y").unwrap());
    assert!(mkdir.contains(&r.to_path_buf()) && mkdir.contains(&r.join("x")));
    let rmdir = synced(&|| sink.rmdir("x/y").unwrap());
    assert!(rmdir.contains(&r.join("x")), "{rmdir:?}");
}

#[test]
fn a_destination_never_swept_or_probed_is_left_as_it_is() {
    let root = tempfile::tempdir().unwrap();
    let sink = DirSink::new(root.path().into(), "line1", false);
    assert_eq!(sink.sweep().unwrap(), 0);
    sink.probe().unwrap();
    let names: Vec<_> = fs::read_dir(root.path()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "only the staging directory");
    assert_eq!(fs::read_dir(sink.staging()).unwrap().count(), 0);
}
