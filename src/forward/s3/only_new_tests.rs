//! A Pipe that never overwrites (`refuse`, `keep-both`) keeps an object another upload
//! left at the destination, even one the namespace has forgotten, and still recognises
//! its own object when a put is sent again (against s3s-fs, which honours
//! `If-None-Match` and `If-Match` as AWS S3 does).

use super::test_server::{meta, s3};
use super::*;
use crate::forward::sink::Sink;

fn put(sink: &S3Sink, dir: &Path, key: &str, body: &[u8], meta: &Meta) -> Result<(), SinkError> {
    let file = dir.join("body");
    std::fs::write(&file, body).unwrap();
    let sum = crate::checksum::Hasher::crc32c_of(body);
    sink.put(key, &file, body.len() as u64, &sum, meta)
        .map(|_| ())
}

#[test]
fn a_pipe_that_never_overwrites_keeps_another_object_and_recognises_its_own() {
    let server = s3();
    let sink = server.sink();
    let spool = tempfile::tempdir().unwrap();
    let stored = |key: &str| std::fs::read(server.root.path().join("plant").join(key)).ok();

    // An object of a name the gateway has forgotten (or that someone else put there).
    put(
        &sink,
        spool.path(),
        "cell/a.jpg",
        b"the first camera's",
        &meta(false),
    )
    .unwrap();
    let e = put(
        &sink,
        spool.path(),
        "cell/a.jpg",
        b"a later upload",
        &meta(true),
    )
    .unwrap_err();
    assert!(e.exists && !e.transient, "{e:?}");
    assert!(
        e.message.contains("cell/a.jpg already exists"),
        "{}",
        e.message
    );
    assert_eq!(stored("cell/a.jpg").unwrap(), b"the first camera's");
    // Multipart puts are conditional too (on their completion).
    let big: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 253) as u8).collect();
    let e = put(&sink, spool.path(), "cell/a.jpg", &big, &meta(true)).unwrap_err();
    assert!(e.exists, "{e:?}");
    assert_eq!(stored("cell/a.jpg").unwrap(), b"the first camera's");

    // A new name is written; the same put again (its answer was lost) is done.
    put(&sink, spool.path(), "cell/b.jpg", b"new", &meta(true)).unwrap();
    put(&sink, spool.path(), "cell/b.jpg", b"new", &meta(true)).unwrap();
    assert_eq!(stored("cell/b.jpg").unwrap(), b"new");
    // Its mtime changed while it was on its way: sent again over its own object.
    let later = Meta {
        mtime: 1_800_000_000,
        ..meta(true)
    };
    put(&sink, spool.path(), "cell/b.jpg", b"new", &later).unwrap();
    let head = sink
        .client
        .send("HEAD", "cell/b.jpg", &[], HeaderMap::new(), &[])
        .unwrap()
        .headers;
    assert_eq!(head.get("x-amz-meta-mtime").unwrap(), "1800000000");

    // A Pipe that replaces still replaces.
    put(&sink, spool.path(), "cell/a.jpg", b"replaced", &meta(false)).unwrap();
    assert_eq!(stored("cell/a.jpg").unwrap(), b"replaced");
}
