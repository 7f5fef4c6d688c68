//! The forwarder on a database whose disk can lose power ([`crate::store::power_cut`]).

use std::sync::Arc;
use std::time::Duration;

use super::{Config, Forwarder};
use crate::spool::{Limits, Spool};
use crate::state::StateDir;
use crate::store::catalog::Upload;
use crate::store::namespace::Overwrite;
use crate::store::pipes::PipeSpec;
use crate::store::power_cut::Disk;
use crate::store::{Store, View};
use crate::vfs::VPath;

/// The moment a delivery reaches the destination, the power fails: the op must still
/// say it may have been sent, or a DELE after the reboot would cancel it without
/// deleting what arrived.
#[test]
fn a_delivery_starts_only_once_its_claim_would_survive_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    state.create().unwrap();
    let disk = Disk::default();
    let store = Arc::new(Store::open_on(&disk).unwrap());
    // An S3 endpoint that says when a connection arrives and never answers.
    let endpoint = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in endpoint.incoming().flatten() {
            held.push(conn);
            let _ = arrived_tx.send(());
        }
    });
    let spec = PipeSpec {
        id: Some("cams".into()),
        name: "cams".into(),
        dest: "s3://plant/cell4".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: true,
        access_key: Some("AK".into()),
        secret_key: Some("SK".to_string().into()),
        enabled: true,
        ..Default::default()
    };
    let pipe = spec.build("cams".into(), None, 0).unwrap();
    store.write(|w| w.put_pipe(&pipe)).unwrap();
    let limits = Limits {
        min_free: 0,
        ..Limits::default()
    };
    let spool = Spool::open(&state, store.clone(), limits).unwrap();
    let bytes = b"a camera's snapshot".to_vec();
    std::fs::write(state.spool_ready().join("b1"), &bytes).unwrap();
    let up = Upload {
        body: "b1".into(),
        size: bytes.len() as u64,
        sum: crate::checksum::Hasher::crc32c_of(&bytes),
        mtime: 0,
        sender: "cam".into(),
    };
    let path = VPath::from_normalised("/x.jpg");
    store
        .write(|w| w.publish("cams", &path, Overwrite::Replace, false, up, 0))
        .unwrap();
    let id = store.read().unwrap().ops_page(None, 0, 10).unwrap()[0].id;

    let forwarder = Forwarder::new(store.clone(), spool, Config::default());
    std::thread::spawn(move || smol::block_on(forwarder.run()));
    arrived
        .recv_timeout(Duration::from_secs(10))
        .expect("the delivery did not start");

    let rebooted = Store::open_on(&disk.cut()).unwrap();
    let op = rebooted.read().unwrap().op(id).unwrap().unwrap();
    assert!(
        op.attempts >= 1,
        "the delivery started, but after a power cut the op says it was never tried"
    );
}
