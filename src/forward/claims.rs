//! Claims held by the forwarder until their deliveries start.
//!
//! Claiming an op records that it may reach the destination (its `attempts`): a DELE or
//! a rename that comes later must then clean up there too. So a delivery may start only
//! once its claim is on disk; a crash (power cut or `kill -9`) after the start and before
//! that would leave an object at the destination the outbox no longer knows it may have
//! sent. Claims are mostly made in non-durable commits, which redb keeps in memory until
//! the next durable one (an upload's, or the forwarder's own group commit of outcomes):
//! they wait here, *unsynced*, until then.
//!
//! To keep that wait off the delivery path, the forwarder claims ahead: up to
//! [`DEPTH`] × a Pipe's `parallel` ops, of which `parallel` run at a time. The claims
//! already on disk are *queued* per Pipe and start the moment a slot frees; a durable
//! commit is forced only when a Pipe could start a delivery and has none queued.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::store::outbox::Op;
use crate::store::{Pipe, Store, SyncState, Unsynced};

/// Claims per delivery slot: one running, the rest queued or on their way to disk.
pub const DEPTH: usize = 4;

/// How long claims wait for somebody else's durable commit (while devices upload) when a
/// Pipe has nothing else to start.
pub const WAIT: Duration = Duration::from_millis(20);

/// A claimed op and the Pipe record it was claimed under.
pub type Claimed = (Pipe, Op);

/// Claimed ops whose deliveries have not started.
#[derive(Default)]
pub struct Held {
    /// Claims not on disk yet, oldest commit first.
    unsynced: VecDeque<Batch>,
    /// Claims on disk, by Pipe, oldest claim first.
    queued: BTreeMap<String, VecDeque<Claimed>>,
}

/// The ops one non-durable commit claimed, and since when they wait.
struct Batch {
    commit: Unsynced,
    since: Instant,
    ops: Vec<Claimed>,
}

impl Held {
    /// Holds what a round claimed: queued at once if its commit was durable (`None`).
    pub fn add(&mut self, commit: Option<Unsynced>, claimed: Vec<Claimed>) {
        match commit {
            _ if claimed.is_empty() => {}
            None => self.enqueue(claimed),
            Some(commit) => self.unsynced.push_back(Batch {
                commit,
                since: Instant::now(),
                ops: claimed,
            }),
        }
    }

    fn enqueue(&mut self, claimed: Vec<Claimed>) {
        for c in claimed {
            self.queued
                .entry(c.1.pipe.clone())
                .or_default()
                .push_back(c);
        }
    }

    /// Queues the claims that have reached the disk. Commits reach it in order, so this
    /// stops at the first still pending. Returns the claims a reopened database lost:
    /// never started, and ready again in the outbox.
    pub fn sync(&mut self, store: &Store) -> Vec<Claimed> {
        let mut lost = Vec::new();
        while let Some(oldest) = self.unsynced.front() {
            match store.sync_state(&oldest.commit) {
                SyncState::Pending => break,
                SyncState::OnDisk => {
                    if let Some(b) = self.unsynced.pop_front() {
                        self.enqueue(b.ops);
                    }
                }
                SyncState::Lost => {
                    if let Some(b) = self.unsynced.pop_front() {
                        lost.extend(b.ops);
                    }
                }
            }
        }
        lost
    }

    /// The next queued claim of `pipe`, if there is one.
    pub fn next(&mut self, pipe: &str) -> Option<Claimed> {
        self.queued.get_mut(pipe)?.pop_front()
    }

    /// Gives back what [`Held::next`] returned: it stays the oldest.
    pub fn put_back(&mut self, c: Claimed) {
        self.queued
            .entry(c.1.pipe.clone())
            .or_default()
            .push_front(c);
    }

    /// Every queued claim of `pipe` (its destination went offline).
    pub fn take_queued(&mut self, pipe: &str) -> Vec<Claimed> {
        self.queued.remove(pipe).map(Vec::from).unwrap_or_default()
    }

    /// Pipes with claims queued.
    pub fn queued_pipes(&self) -> Vec<String> {
        self.queued
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Pipes with claims on their way to disk.
    pub fn unsynced_pipes(&self) -> Vec<String> {
        let mut pipes: Vec<String> = self
            .unsynced
            .iter()
            .flat_map(|b| b.ops.iter().map(|(_, op)| op.pipe.clone()))
            .collect();
        pipes.sort();
        pipes.dedup();
        pipes
    }

    pub fn any_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// How long the oldest unsynced claims have waited.
    pub fn waited(&self) -> Option<Duration> {
        Some(self.unsynced.front()?.since.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::View;
    use crate::store::catalog::Upload;
    use crate::store::namespace::Overwrite;
    use crate::store::pipes::PipeSpec;
    use crate::store::power_cut::Disk;
    use crate::vfs::VPath;

    fn store_with_one_upload(disk: &Disk) -> Store {
        let store = Store::open_on(disk).unwrap();
        let spec = PipeSpec {
            id: Some("cams".into()),
            name: "cams".into(),
            dest: "file:///tmp/never-used".into(),
            enabled: true,
            ..Default::default()
        };
        let pipe = spec.build("cams".into(), None, 0).unwrap();
        let up = Upload {
            body: "b1".into(),
            size: 1,
            sum: crate::checksum::Checksum::Crc32c(0),
            mtime: 0,
            sender: "s".into(),
        };
        let path = VPath::from_normalised("/x.jpg");
        store
            .write(|w| {
                w.put_pipe(&pipe)?;
                w.publish("cams", &path, Overwrite::Replace, false, up, 0)
                    .map(|_| ())
            })
            .unwrap();
        store
    }

    /// Claims the upload in a non-durable commit and holds it.
    fn claim(store: &Store, held: &mut Held) -> u64 {
        let (ops, commit) = store
            .write_volatile(|w| Ok((w.claim_ready("cams", 0, 10)?, w.pipes()?)))
            .unwrap();
        let (ops, pipes) = ops;
        assert_eq!(ops.len(), 1);
        let id = ops[0].id;
        held.add(
            Some(commit),
            ops.into_iter().map(|op| (pipes[0].clone(), op)).collect(),
        );
        id
    }

    /// The op `id` as the database has it after a power cut now.
    fn after_power_cut(disk: &Disk, store: Store, id: u64) -> crate::store::outbox::Op {
        let after = disk.cut();
        drop(store);
        let rebooted = Store::open_on(&after).unwrap();
        rebooted.read().unwrap().op(id).unwrap().unwrap()
    }

    #[test]
    fn a_claim_a_power_cut_would_lose_is_not_started() {
        let disk = Disk::default();
        let store = store_with_one_upload(&disk);
        let mut held = Held::default();
        let id = claim(&store, &mut held);
        assert!(held.sync(&store).is_empty());
        assert!(held.next("cams").is_none());
        assert_eq!(held.unsynced_pipes(), ["cams"]);
        // Why it waits: cut the power now and the claim (the op's "may have been sent")
        // is gone, so a DELE after the reboot would cancel the put without a delete.
        let op = after_power_cut(&disk, store, id);
        assert_eq!((op.attempts, op.in_flight), (0, false));
    }

    #[test]
    fn a_durable_commit_after_the_claim_lets_its_delivery_start() {
        let disk = Disk::default();
        let store = store_with_one_upload(&disk);
        let mut held = Held::default();
        let id = claim(&store, &mut held);
        // Somebody's durable commit (an upload's, say).
        store.write(|_| Ok(())).unwrap();
        assert!(held.sync(&store).is_empty());
        assert_eq!(held.next("cams").map(|(_, op)| op.id), Some(id));
        assert!(!held.any_unsynced());
        // And the claim survives a power cut from then on.
        assert_eq!(after_power_cut(&disk, store, id).attempts, 1);
    }
}
