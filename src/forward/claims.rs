//! Claims that wait for the disk before their deliveries start.
//!
//! Claiming an op records that it may reach the destination (its `attempts`): a DELE or
//! a rename that comes later must then clean up there too. While devices upload, the
//! forwarder claims in non-durable commits, which redb keeps in memory until the next
//! durable one (the uploads' own commits come every few milliseconds). A delivery that
//! started before then and a crash (power cut or `kill -9`) would leave an object at the
//! destination that the outbox no longer knows it may have sent. So the claims of a
//! non-durable commit wait here until a later durable commit carries them to disk; the
//! forwarder makes one itself if none comes within [`WAIT`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::store::outbox::Op;
use crate::store::{Pipe, Store, SyncState, Unsynced};

/// How long claims wait for someone else's durable commit.
pub const WAIT: Duration = Duration::from_millis(20);

/// Claimed ops whose claims are not on disk yet, oldest first.
#[derive(Default)]
pub struct Waiting {
    batches: VecDeque<Batch>,
}

/// The ops one non-durable commit claimed, and since when they wait.
struct Batch {
    commit: Unsynced,
    since: Instant,
    ops: Vec<(Pipe, Op)>,
}

/// What [`Waiting::take`] found.
#[derive(Default)]
pub struct Taken {
    /// On disk now: their deliveries may start.
    pub ready: Vec<(Pipe, Op)>,
    /// Gone with a reopened database: never delivered, and ready again in the outbox.
    pub lost: Vec<(Pipe, Op)>,
}

impl Waiting {
    pub fn push(&mut self, commit: Unsynced, claimed: Vec<(Pipe, Op)>) {
        if !claimed.is_empty() {
            self.batches.push_back(Batch {
                commit,
                since: Instant::now(),
                ops: claimed,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// How long until the oldest batch has waited [`WAIT`] (zero: it has).
    pub fn due_in(&self) -> Option<Duration> {
        let oldest = self.batches.front()?;
        Some(WAIT.saturating_sub(oldest.since.elapsed()))
    }

    /// Takes the batches whose fate is known. Commits reach the disk in order, so this
    /// stops at the first one still pending.
    pub fn take(&mut self, store: &Store) -> Taken {
        let mut taken = Taken::default();
        while let Some(oldest) = self.batches.front() {
            let into = match store.sync_state(&oldest.commit) {
                SyncState::Pending => break,
                SyncState::OnDisk => &mut taken.ready,
                SyncState::Lost => &mut taken.lost,
            };
            if let Some(batch) = self.batches.pop_front() {
                into.extend(batch.ops);
            }
        }
        taken
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

    fn store_with_one_upload(disk: &Disk) -> (Store, Pipe) {
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
            md5: String::new(),
            mtime: 0,
            sender: "s".into(),
        };
        store
            .write(|w| {
                w.put_pipe(&pipe)?;
                w.publish(
                    "cams",
                    &VPath::from_normalised("/x.jpg"),
                    Overwrite::Replace,
                    false,
                    up,
                    0,
                )
                .map(|_| ())
            })
            .unwrap();
        (store, pipe)
    }

    fn claim(store: &Store, pipe: &Pipe, waiting: &mut Waiting) -> u64 {
        let (ops, commit) = store
            .write_volatile(|w| w.claim_ready("cams", 0, 10))
            .unwrap();
        assert_eq!(ops.len(), 1);
        let id = ops[0].id;
        waiting.push(
            commit,
            ops.into_iter().map(|op| (pipe.clone(), op)).collect(),
        );
        id
    }

    #[test]
    fn a_claim_a_power_cut_would_lose_is_not_delivered() {
        let disk = Disk::default();
        let (store, pipe) = store_with_one_upload(&disk);
        let mut waiting = Waiting::default();
        let id = claim(&store, &pipe, &mut waiting);
        let taken = waiting.take(&store);
        assert!(taken.ready.is_empty() && taken.lost.is_empty());
        assert!(waiting.due_in().is_some());
        // Why it waits: cut the power now and the claim (the op's "may have been sent")
        // is gone, so a DELE after the reboot would cancel the put without a delete.
        let after = disk.cut();
        drop(store);
        let rebooted = Store::open_on(&after).unwrap();
        let op = rebooted.read().unwrap().op(id).unwrap().unwrap();
        assert_eq!((op.attempts, op.in_flight), (0, false));
    }

    #[test]
    fn a_durable_commit_after_the_claim_lets_its_delivery_start() {
        let disk = Disk::default();
        let (store, pipe) = store_with_one_upload(&disk);
        let mut waiting = Waiting::default();
        let id = claim(&store, &pipe, &mut waiting);
        // Somebody's durable commit (an upload's, say).
        store.write(|_| Ok(())).unwrap();
        let taken = waiting.take(&store);
        assert_eq!(
            taken.ready.iter().map(|(_, op)| op.id).collect::<Vec<_>>(),
            [id]
        );
        assert!(waiting.is_empty());
        // And the claim survives a power cut from then on.
        let after = disk.cut();
        drop(store);
        let rebooted = Store::open_on(&after).unwrap();
        assert_eq!(
            rebooted.read().unwrap().op(id).unwrap().unwrap().attempts,
            1
        );
    }
}
