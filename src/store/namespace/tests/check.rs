//! The end of a case: with the destination up, the queue drains; then the destination
//! must hold exactly what the model says and every index must be empty.

use super::*;

impl World {
    /// Destination up, no more crashes: deliver until nothing is left.
    pub(super) fn drain(&mut self) {
        for d in self.dest.values_mut() {
            d.up = true;
        }
        // What the forwarder claimed it delivers, once the claims are on disk.
        self.store.write(|_| Ok(())).unwrap();
        let waiting = std::mem::take(&mut self.waiting);
        self.claimed.extend(waiting.into_iter().map(|(_, op)| op));
        for op in std::mem::take(&mut self.claimed) {
            self.dest.get_mut(op.pipe.as_str()).unwrap().apply(&op);
            self.unsettled.push((op, Outcome::Done));
        }
        self.settle();
        for _ in 0..10_000 {
            self.now += 1000;
            let mut any = false;
            for pipe in PIPES {
                let now = self.now;
                let ops = self.store.write(|w| w.claim_ready(pipe, now, 3)).unwrap();
                for op in ops {
                    any = true;
                    self.dest.get_mut(pipe).unwrap().apply(&op);
                    self.unsettled.push((op, Outcome::Done));
                }
            }
            self.claimed.clear();
            self.settle();
            let left: u64 = PIPES
                .iter()
                .map(|p| self.store.read().unwrap().backlog(p).unwrap().ops)
                .sum();
            if left == 0 {
                return;
            }
            assert!(
                any || self.claimed.is_empty(),
                "ops left but none ready:\n{}",
                self.log.join("\n")
            );
        }
        let left = self.store.read().unwrap().ops_page(None, 0, 1000).unwrap();
        let left: Vec<String> = left
            .iter()
            .map(|o| {
                format!(
                    "{} {:?} waits_for={} parked={:?} in_flight={}",
                    o.id, o.action, o.waits_for, o.parked, o.in_flight
                )
            })
            .collect();
        panic!(
            "the outbox did not drain\n{}\nleft:\n{}",
            self.log.join("\n"),
            left.join("\n")
        );
    }

    pub(super) fn check(&self) {
        let catalog = self.listing();
        let r = self.store.read().unwrap();
        let log = || self.log.join("\n");
        for pipe in PIPES {
            let dest = &self.dest[pipe];
            assert!(
                dest.violations.is_empty(),
                "{:?}\n{}",
                dest.violations,
                log()
            );
            // The destination holds what the namespace shows and what it forgot.
            let mut expected = self.model[pipe].clone();
            expected.files.extend(dest.forgotten.files.clone());
            expected.dirs.extend(dest.forgotten.dirs.clone());
            let mut held = dest.ns.clone();
            for k in &dest.reused {
                if !expected.files.contains_key(k) {
                    held.files.remove(k);
                }
            }
            assert_eq!(
                held,
                expected,
                "pipe {pipe}: the destination differs from the model\n{}",
                log()
            );
            // The catalog lists the same namespace.
            let mut listed = Namespace::default();
            for (path, (e, _)) in &catalog[pipe] {
                if e.kind == Kind::Dir {
                    listed.dirs.insert(path.clone());
                } else {
                    listed.files.insert(path.clone(), String::new());
                }
            }
            let mut expected = self.model[pipe].clone();
            expected.files.values_mut().for_each(String::clear);
            assert_eq!(listed, expected, "pipe {pipe}: catalog\n{}", log());
            assert_eq!(r.backlog(pipe).unwrap(), Default::default());
        }
        for (name, len) in [
            ("outbox", r.table(schema::OUTBOX).unwrap().len().unwrap()),
            ("ready", r.table(schema::READY).unwrap().len().unwrap()),
            ("key_ops", r.table(schema::KEY_OPS).unwrap().len().unwrap()),
            ("waiters", r.table(schema::WAITERS).unwrap().len().unwrap()),
            (
                "pipe_ops",
                r.table(schema::PIPE_OPS).unwrap().len().unwrap(),
            ),
            ("bodies", r.table(schema::BODIES).unwrap().len().unwrap()),
            (
                "in_flight",
                r.table(schema::IN_FLIGHT).unwrap().len().unwrap(),
            ),
        ] {
            assert_eq!(
                len,
                0,
                "table {name} is not empty after the drain\n{}",
                log()
            );
        }
        // Every body ever uploaded is either at the destination or garbage.
        let garbage: BTreeSet<String> = r.garbage().unwrap().into_iter().collect();
        let delivered: BTreeSet<&String> = self
            .dest
            .values()
            .flat_map(|d| d.ns.files.values())
            .collect();
        for b in &self.accepted {
            if !delivered.contains(b) {
                assert!(garbage.contains(b), "body {b} leaked\n{}", log());
            }
        }
    }
}
