//! Bodies written at offsets, as SFTP writes them: in order, out of order, over bytes
//! already written. The recorded size and checksum are always those of the final bytes,
//! and the spool counts exactly the bytes on its disk.

use super::*;
use crate::checksum::Hasher;

fn crc_of(bytes: &[u8]) -> String {
    Hasher::crc32c_of(bytes).hex()
}

/// Writes `writes` (offset, bytes) into a new body and commits it as `path`.
fn write_and_commit(w: &World, path: &str, writes: &[(u64, &[u8])]) -> (u64, String) {
    smol::block_on(async {
        let mut body = w.spool.start().await.unwrap();
        for (at, data) in writes {
            body.write_at(*at, data).unwrap();
        }
        let (_, size, sum) = w.spool.commit(body, publish(path)).await.ok().unwrap();
        (size, sum.hex())
    })
}

#[test]
fn in_order_writes_keep_the_running_checksum() {
    let w = World::new();
    let all = bytes(100_000);
    let writes: Vec<(u64, &[u8])> = all
        .chunks(32_768)
        .enumerate()
        .map(|(i, c)| (i as u64 * 32_768, c))
        .collect();
    let (size, sum) = write_and_commit(&w, "/a.bin", &writes);
    assert_eq!((size, sum), (100_000, crc_of(&all)));
    assert_eq!(w.spool.used(), w.on_disk());
}

#[test]
fn out_of_order_and_overwriting_writes_are_checksummed_as_the_final_bytes() {
    let w = World::new();
    // "hello world", written back to front, then its first word rewritten.
    let writes: Vec<(u64, &[u8])> = vec![(6, b"world"), (0, b"hello "), (0, b"HELLO")];
    let (size, sum) = write_and_commit(&w, "/b.txt", &writes);
    assert_eq!(size, 11);
    assert_eq!(sum, crc_of(b"HELLO world"));
    assert_eq!(w.recorded("/b.txt"), Some(11));
    assert_eq!(w.spool.used(), w.on_disk());
}

#[test]
fn a_write_at_an_offset_past_the_quota_is_refused_and_nothing_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    state.create().unwrap();
    let store = Arc::new(Store::open(&state.database()).unwrap());
    let lim = Limits {
        max_bytes: 1 << 20,
        min_free: 0,
        ..Limits::default()
    };
    let spool = Spool::open_on(Arc::new(Faulty::default()), &state, store, lim).unwrap();
    smol::block_on(async {
        let mut body = spool.start().await.unwrap();
        body.write_at(0, &bytes(1000)).unwrap();
        let e = body.write_at(2 << 20, b"far").unwrap_err();
        assert!(matches!(e, Error::Full(_)), "{e}");
        assert_eq!(body.size(), 1000);
        assert_eq!(spool.used(), 1000);
        body.discard().await;
    });
}
