//! A model-based test of the namespace: random sequences of uploads, deletes, renames of
//! files and directories, MKD and RMD on two Pipes, interleaved with a simulated
//! forwarder that claims ready ops, delivers them to a model destination, settles them
//! in batches, sees the destination go down and up, and crashes at random points. The
//! database lives on a disk that can lose power ([`crate::store::power_cut`]): a crash
//! keeps only what durable commits wrote, so the unsettled batch and every claim not yet
//! carried to disk are lost, as with `kill -9` or a power cut. Afterwards, with the destination up, the
//! queue drains and the destination must hold exactly what a plain model of the FTP
//! namespace says: every path with the body of the upload that won, every directory
//! marker, nothing else; and every index must be empty.
//!
//! `FTPGATE_MODEL_CASES` and `FTPGATE_MODEL_SEED` run more cases or replay one.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::catalog::{Delivery, Entry, Kind, Upload};
use crate::store::namespace::Overwrite;
use crate::store::outbox::{Op, Outcome};
use crate::store::schema;
use redb::ReadableTableMetadata;

use crate::store::power_cut::Disk;
use crate::store::{Store, SyncState, Unsynced, View};
use crate::vfs::VPath;

mod cases;
mod check;
mod expiry;
mod model;
mod retention;

/// The Pipes' retention window in the model test.
const KEEP_MS: u64 = 60_000;

use model::{DIRS, Destination, NAMES, Namespace, PIPES, Rng, model_rename};

struct World {
    store: Store,
    disk: Disk,
    rng: Rng,
    model: BTreeMap<&'static str, Namespace>,
    dest: BTreeMap<&'static str, Destination>,
    /// Claimed in a non-durable commit: like the forwarder, the model delivers them only
    /// once a durable commit has carried the claim to disk.
    waiting: Vec<(Unsynced, Op)>,
    /// Claimed (on disk) and not yet delivered.
    claimed: Vec<Op>,
    /// Delivered (or failed), not yet settled: lost by a crash.
    unsettled: Vec<(Op, Outcome)>,
    next_body: u64,
    /// Bodies of uploads the store accepted.
    accepted: Vec<String>,
    now: u64,
    log: Vec<String>,
}

impl World {
    fn new(seed: u64) -> World {
        let disk = Disk::default();
        let store = Store::open_on(&disk).unwrap();
        store
            .write(|w| {
                for p in PIPES {
                    let spec = crate::store::pipes::PipeSpec {
                        id: Some(p.into()),
                        name: p.into(),
                        dest: "file:///tmp/never-used".into(),
                        enabled: true,
                        keep_delivered: Some(format!("{}s", KEEP_MS / 1000)),
                        ..Default::default()
                    };
                    w.put_pipe(&spec.build(p.into(), None, 0).unwrap())?;
                }
                Ok(())
            })
            .unwrap();
        World {
            store,
            disk,
            rng: Rng(seed | 1),
            model: PIPES.iter().map(|p| (*p, Namespace::default())).collect(),
            dest: PIPES
                .iter()
                .map(|p| {
                    let d = Destination {
                        up: true,
                        ..Default::default()
                    };
                    (*p, d)
                })
                .collect(),
            waiting: Vec::new(),
            claimed: Vec::new(),
            unsettled: Vec::new(),
            next_body: 0,
            accepted: Vec::new(),
            now: 1_000_000,
            log: Vec::new(),
        }
    }

    /// One client command against the store and the model; refusals must agree.
    fn client_step(&mut self) {
        let pipe = *self.rng.pick(&PIPES);
        let v = |s: &str| VPath::from_normalised(s);
        let now = self.now / 1000;
        let choice = self.rng.below(10);
        let (what, result) = match choice {
            0..=3 => {
                let path = *self.rng.pick(&NAMES);
                self.next_body += 1;
                let body = format!("b{}", self.next_body);
                let up = Upload {
                    body: body.clone(),
                    size: 10,
                    sum: crate::checksum::Checksum::Crc32c(0),
                    mtime: now,
                    sender: "s".into(),
                };
                // Half the uploads come from a device that cannot MKD (`create_dirs`).
                let create = self.rng.below(2) == 0;
                let r = self.store.write(|w| {
                    w.publish(pipe, &v(path), Overwrite::Replace, create, up, self.now)
                        .map(|_| ())
                });
                let m = self.model.get_mut(pipe).unwrap();
                let above: Vec<&str> = path
                    .match_indices('/')
                    .map(|(i, _)| &path[..i])
                    .filter(|d| !d.is_empty())
                    .collect();
                let ok = if create {
                    !above.iter().any(|d| m.files.contains_key(*d)) && !m.dirs.contains(path)
                } else {
                    m.parent_ok(path) && !m.dirs.contains(path)
                };
                if ok {
                    if create {
                        m.dirs.extend(above.iter().map(|d| d.to_string()));
                    }
                    m.files.insert(path.to_string(), body.clone());
                    self.accepted.push(body.clone());
                }
                let how = if create { "STOR+dirs" } else { "STOR" };
                (format!("{pipe} {how} {path} ({body})"), (r.is_ok(), ok))
            }
            4 => {
                let path = *self.rng.pick(&NAMES);
                let r = self
                    .store
                    .write(|w| w.delete(pipe, &v(path), now).map(|_| ()));
                let ok = self
                    .model
                    .get_mut(pipe)
                    .unwrap()
                    .files
                    .remove(path)
                    .is_some();
                (format!("{pipe} DELE {path}"), (r.is_ok(), ok))
            }
            5 | 6 => {
                let all: Vec<&str> = NAMES.iter().chain(DIRS.iter()).copied().collect();
                let (from, to) = (*self.rng.pick(&all), *self.rng.pick(&all));
                let r = self
                    .store
                    .write(|w| w.rename(pipe, &v(from), &v(to), now).map(|_| ()));
                let ok = model_rename(self.model.get_mut(pipe).unwrap(), from, to);
                (format!("{pipe} RNFR {from} RNTO {to}"), (r.is_ok(), ok))
            }
            7 => {
                let dir = *self.rng.pick(&DIRS);
                let r = self.store.write(|w| w.mkdir(pipe, &v(dir), now));
                let m = self.model.get_mut(pipe).unwrap();
                let ok = m.parent_ok(dir) && !m.dirs.contains(dir) && !m.files.contains_key(dir);
                if ok {
                    m.dirs.insert(dir.to_string());
                }
                (format!("{pipe} MKD {dir}"), (r.is_ok(), ok))
            }
            _ => {
                let dir = *self.rng.pick(&DIRS);
                let r = self.store.write(|w| w.rmdir(pipe, &v(dir), now));
                let m = self.model.get_mut(pipe).unwrap();
                let ok = m.dirs.contains(dir) && m.is_empty_dir(dir);
                if ok {
                    m.dirs.remove(dir);
                }
                (format!("{pipe} RMD {dir}"), (r.is_ok(), ok))
            }
        };
        self.log.push(what.clone());
        assert_eq!(
            result.0,
            result.1,
            "store and model disagree on whether {what} is allowed\n{}",
            self.log.join("\n")
        );
    }

    /// One step of the forwarder or of the world around it.
    fn forwarder_step(&mut self) {
        let store = &self.store;
        self.waiting
            .retain(|(commit, op)| match store.sync_state(commit) {
                SyncState::Pending => true,
                SyncState::OnDisk => {
                    self.claimed.push(op.clone());
                    false
                }
                SyncState::Lost => unreachable!("the model never reopens without a crash"),
            });
        match self.rng.below(14) {
            // Claims in a durable commit (nobody uploading) or a non-durable one.
            0..=3 => {
                let pipe = *self.rng.pick(&PIPES);
                let n = 1 + self.rng.below(4);
                let now = self.now;
                let claim = |w: &crate::store::Writer| w.claim_ready(pipe, now, n);
                let durable = self.rng.below(2) == 0;
                let (ops, commit) = if durable {
                    (self.store.write(claim).unwrap(), None)
                } else {
                    let (ops, commit) = self.store.write_volatile(claim).unwrap();
                    (ops, Some(commit))
                };
                for op in &ops {
                    let how = if durable { "" } else { " (not on disk yet)" };
                    self.log
                        .push(format!("claim {} {:?}{how}", op.id, op.action));
                }
                match commit {
                    None => self.claimed.extend(ops),
                    Some(c) => self.waiting.extend(ops.into_iter().map(|op| (c, op))),
                }
            }
            // Claims waited too long: the forwarder's own durable commit.
            12 if !self.waiting.is_empty() => {
                self.log.push("durable commit".into());
                self.store.write(|_| Ok(())).unwrap();
            }
            4..=6 if !self.claimed.is_empty() => {
                let i = self.rng.below(self.claimed.len());
                let op = self.claimed.remove(i);
                let dest = self.dest.get_mut(op.pipe.as_str()).unwrap();
                let outcome = if dest.up {
                    dest.apply(&op);
                    Outcome::Done
                } else {
                    Outcome::Retry {
                        due_ms: self.now + 500,
                        error: "down".into(),
                    }
                };
                self.log.push(format!("deliver {} -> {outcome:?}", op.id));
                self.unsettled.push((op, outcome));
            }
            7 | 8 if !self.unsettled.is_empty() => self.settle(),
            9 => {
                let pipe = *self.rng.pick(&PIPES);
                let d = self.dest.get_mut(pipe).unwrap();
                d.up = !d.up;
                self.log.push(format!("{pipe} destination up={}", d.up));
            }
            10 => self.crash(),
            11 => self.expire(),
            // The wall clock jumps: NTP answers at last on a box that booted in 1970, or
            // it is set back. Ops waiting on a backoff must neither all wait forever nor
            // go early in a way that breaks their order.
            13 => {
                let years = 365 * 86_400_000 * (1 + self.rng.below(50) as u64);
                self.now = if self.rng.below(2) == 0 {
                    self.now.saturating_add(years)
                } else {
                    self.now.saturating_sub(years).max(1)
                };
                self.log
                    .push(format!("wall clock jumps to {} ms", self.now));
            }
            _ => self.now += 300,
        }
    }

    fn settle(&mut self) {
        let batch: Vec<(u64, Outcome)> =
            self.unsettled.drain(..).map(|(op, o)| (op.id, o)).collect();
        self.log.push(format!("settle {batch:?}"));
        self.store.write(|w| w.settle(&batch)).unwrap();
    }

    /// The power fails (or the daemon is killed): what durable commits wrote survives,
    /// unsettled outcomes and claims in memory do not; start-up releases the claims.
    fn crash(&mut self) {
        self.log.push("crash".into());
        self.waiting.clear();
        self.claimed.clear();
        self.unsettled.clear();
        self.disk = self.disk.cut();
        self.store = Store::open_on(&self.disk).unwrap();
        self.store.write(|w| w.release_claims()).unwrap();
    }
}

fn run_case(seed: u64, steps: usize) {
    let mut w = World::new(seed);
    w.log.push(format!("seed {seed}"));
    for _ in 0..steps {
        if w.rng.below(2) == 0 {
            w.client_step();
        } else {
            w.forwarder_step();
        }
    }
    w.drain();
    w.check();
}

#[test]
fn the_destination_ends_as_the_namespace_says_whatever_the_order_of_events() {
    let cases: u64 = std::env::var("FTPGATE_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    if let Some(seed) = std::env::var("FTPGATE_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return run_case(seed, 300);
    }
    for case in 0..cases {
        run_case(0x9E37_79B9_7F4A_7C15 ^ case.wrapping_mul(0x1000_0001), 300);
    }
}

fn v(s: &str) -> VPath {
    VPath::from_normalised(s)
}

/// A one-byte upload whose body is `b`.
fn up(b: &str) -> Upload {
    Upload {
        body: b.into(),
        size: 1,
        sum: crate::checksum::Checksum::Crc32c(0),
        mtime: 0,
        sender: "s".into(),
    }
}
