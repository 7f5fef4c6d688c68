//! The forwarder on a database whose disk can lose power ([`crate::store::power_cut`]).

use std::sync::Arc;
use std::time::Duration;

use super::slots::Running;
use super::{Config, Forwarder, claims, claims_timer};
use crate::spool::{Limits, Spool};
use crate::state::StateDir;
use crate::store::catalog::Upload;
use crate::store::namespace::Overwrite;
use crate::store::pipes::PipeSpec;
use crate::store::power_cut::Disk;
use crate::store::{Store, View};
use crate::vfs::VPath;

/// A state directory, a database on a disk that can lose power, the spool, and Pipe
/// `cams` into S3 at 127.0.0.1:`port`.
struct World {
    _dir: tempfile::TempDir,
    disk: Disk,
    store: Arc<Store>,
    spool: Arc<Spool>,
}

fn world(port: u16) -> World {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    state.create().unwrap();
    let disk = Disk::default();
    let store = Arc::new(Store::open_on(&disk).unwrap());
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
    World {
        _dir: dir,
        disk,
        store,
        spool,
    }
}

/// Publishes an upload at `path` into `cams`; returns its op's id.
fn queue(store: &Store, spool: &Spool, path: &str) -> u64 {
    let bytes = path.as_bytes().to_vec();
    let body = crate::support::random_hex(8);
    let at = spool.ready_path(&body);
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(at, &bytes).unwrap();
    let up = Upload {
        body,
        size: bytes.len() as u64,
        sum: crate::checksum::Hasher::crc32c_of(&bytes),
        mtime: 0,
        sender: "cam".into(),
    };
    let path = VPath::from_normalised(path);
    store
        .write(|w| w.publish("cams", &path, Overwrite::Replace, false, up, 0))
        .unwrap();
    let ops = store.read().unwrap().ops_page(None, 0, usize::MAX).unwrap();
    ops.last().unwrap().id
}

/// The moment a delivery reaches the destination, the power fails: the op must still
/// say it may have been sent, or a DELE after the reboot would cancel it without
/// deleting what arrived.
#[test]
fn a_delivery_starts_only_once_its_claim_would_survive_a_power_cut() {
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
    let World {
        _dir,
        disk,
        store,
        spool,
        ..
    } = world(port);
    let id = queue(&store, &spool, "/x.jpg");

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

/// While devices upload, a Pipe may hold only its share of claims. With that share
/// claimed and more ops due, the loop must sleep until something changes: it used to
/// compute "due now" from the Pipe's full `parallel` and ran its rounds back to back,
/// burning a core (and the uploads' CPU) for nothing.
#[test]
fn while_devices_upload_a_pipe_with_its_share_claimed_does_not_wake_the_loop() {
    let w = world(9);
    for i in 0..40 {
        queue(&w.store, &w.spool, &format!("/f{i}.jpg"));
    }
    let f = Forwarder::new(w.store.clone(), w.spool.clone(), Config::default());
    w.spool.uploading();
    let pipe = w.store.read().unwrap().pipes().unwrap().remove(0);
    let now = crate::clock::now_ms();
    let share = f.parallel_now(&pipe, now) * claims::DEPTH;
    assert!(
        share < pipe.parallel() * claims::DEPTH,
        "uploads get a smaller share"
    );
    let mut running = Running::default();
    for _ in 0..share {
        running.claimed("cams");
    }
    assert_eq!(f.room(&pipe, &running, now), 0);
    let wait = f.wait(&w.store.read().unwrap(), &running, now).unwrap();
    assert_eq!(
        wait,
        Duration::from_secs(1),
        "nothing to do until a delivery ends"
    );
    // One delivery ended: claims are made half a share at a time while devices upload.
    running.released("cams", false);
    assert_eq!(f.room(&pipe, &running, now), 0);
    let wait = f.wait(&w.store.read().unwrap(), &running, now).unwrap();
    assert_eq!(wait, Duration::from_secs(1));
    // Half the share free: room, and the due ops want the loop at once.
    for _ in 1..share / 2 {
        running.released("cams", false);
    }
    assert_eq!(f.room(&pipe, &running, now), share / 2);
    let wait = f.wait(&w.store.read().unwrap(), &running, now).unwrap();
    assert_eq!(wait, Duration::ZERO);
}

#[test]
fn held_claims_set_a_timer_only_until_their_wait_is_over() {
    assert_eq!(claims_timer(None), None);
    assert_eq!(claims_timer(Some(Duration::ZERO)), Some(claims::WAIT));
    let half = claims::WAIT / 2;
    assert_eq!(claims_timer(Some(half)), Some(claims::WAIT - half));
    // Over: a durable commit or an ended delivery wakes the loop; a timer of zero would
    // run it back to back.
    assert_eq!(claims_timer(Some(claims::WAIT)), None);
    assert_eq!(claims_timer(Some(claims::WAIT * 3)), None);
}

/// A `keep-both` Pipe keeps other objects at the destination, but a resumed upload
/// (`APPE`) replaces the file's own earlier version, which a delivery tried before may
/// have left there: the conditional put finds it, and the catalog says it is ours.
#[test]
fn a_pipe_that_never_overwrites_still_replaces_its_own_earlier_version() {
    let w = world(1);
    let out = tempfile::tempdir().unwrap();
    let spec = PipeSpec {
        id: Some("line".into()),
        name: "line".into(),
        dest: format!("file://{}", out.path().display()),
        overwrite: Overwrite::KeepBoth,
        enabled: true,
        ..Default::default()
    };
    let pipe = spec.build("line".into(), None, 0).unwrap();
    w.store.write(|t| t.put_pipe(&pipe)).unwrap();
    let publish = |bytes: &[u8]| {
        let body = crate::support::random_hex(16);
        let at = w.spool.ready_path(&body);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, bytes).unwrap();
        let up = Upload {
            body,
            size: bytes.len() as u64,
            sum: crate::checksum::Hasher::crc32c_of(bytes),
            mtime: 0,
            sender: "cam".into(),
        };
        let path = VPath::from_normalised("/a.jpg");
        w.store
            .write(|t| t.publish("line", &path, Overwrite::Replace, false, up, 0))
            .unwrap();
    };
    publish(b"first part");
    // Tried once (and it reached the destination, though its answer did not come back).
    w.store
        .write(|t| {
            let ops = t.claim_ready("line", u64::MAX, 10)?;
            let retry = crate::store::namespace::outbox::Outcome::Retry {
                due_ms: 0,
                error: "timed out".into(),
            };
            t.settle(&[(ops[0].id, retry)])
        })
        .unwrap();
    std::fs::write(out.path().join("a.jpg"), b"first part").unwrap();
    publish(b"first part, then the rest");
    let op = w
        .store
        .write(|t| t.claim_ready("line", u64::MAX, 10))
        .unwrap()
        .remove(0);
    let forwarder = Forwarder::new(w.store.clone(), w.spool.clone(), Config::default());
    forwarder.execute(&pipe, &op).unwrap();
    assert_eq!(
        std::fs::read(out.path().join("a.jpg")).unwrap(),
        b"first part, then the rest"
    );
}

/// A dead endpoint is probed with one op at a time, and each probe is usually an op never
/// tried before. The Pipe's backoff must still grow with its failed probes, up to
/// `backoff::CAP` (docs/OPERATING.md: "probed with backoff, at most 15 s apart"): it used to come from
/// the probe op's own attempts, so a Pipe with a backlog was probed every second for as
/// long as the outage lasted, with a warning logged each time.
#[test]
fn a_dead_endpoint_is_probed_less_and_less_often_whatever_op_is_the_probe() {
    let w = world(9);
    let f = Forwarder::new(w.store.clone(), w.spool.clone(), Config::default());
    let mut running = Running::default();
    let mut waits = Vec::new();
    for i in 0..6 {
        let id = queue(&w.store, &w.spool, &format!("/probe{i}.jpg"));
        let mut op = w.store.read().unwrap().op(id).unwrap().unwrap();
        op.attempts = 1;
        running.claimed("cams");
        running.started("cams");
        let mut ended = vec![(op, Err(super::SinkError::transient("connection refused")))];
        let before = super::now_ms();
        f.outcomes(&mut ended, &mut running);
        waits.push(f.offline_until("cams").unwrap() - before);
    }
    // 1, 2, 4, 8, 15, 15 s, each within the jitter of ±25 %.
    assert!(
        waits[3] >= 6_000,
        "fourth probe failed; next in {waits:?} ms"
    );
    assert!(waits[5] >= 11_000 && waits[5] <= 15_000, "{waits:?} ms");
    // Once it answers, the next failure starts again from a second.
    let id = queue(&w.store, &w.spool, "/ok.jpg");
    let op = w.store.read().unwrap().op(id).unwrap().unwrap();
    running.claimed("cams");
    running.started("cams");
    let sent = super::deliver::Sent {
        bytes: 1,
        put: None,
    };
    f.outcomes(&mut vec![(op.clone(), Ok(sent))], &mut running);
    running.claimed("cams");
    running.started("cams");
    let before = super::now_ms();
    f.outcomes(
        &mut vec![(op, Err(super::SinkError::transient("connection refused")))],
        &mut running,
    );
    assert!(f.offline_until("cams").unwrap() - before <= 1_250);
}
