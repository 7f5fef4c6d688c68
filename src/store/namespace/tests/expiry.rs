//! Time passing in the model test: the steady clock moves, the gateway forgets what
//! expired, and the model forgets the same (never an undelivered file).

use super::*;

impl World {
    /// Time passes on the steady clock and the gateway forgets what expired: only
    /// delivered files and empty directories, each at least one window old, with no op
    /// queued on it; never an undelivered file. Sometimes the cap is tiny, so the oldest
    /// go first whatever their age. The model forgets the same, and the destination keeps
    /// it.
    pub(super) fn expire(&mut self) {
        let by = self.rng.below(2 * KEEP_MS as usize) as u64;
        self.store
            .advance_steady(std::time::Duration::from_millis(by));
        let cap = if self.rng.below(4) == 0 { 2 } else { u64::MAX };
        let before = self.listing();
        let steady = self.store.steady_ms();
        let done = self.store.write(|w| w.expire(cap, 1000)).unwrap();
        let after = self.listing();
        self.log.push(format!(
            "steady +{by} ms, expire cap={cap}: {} forgotten",
            done.forgotten
        ));
        let log = || self.log.join("\n");
        for (pipe, entries) in &before {
            for (path, (e, queued)) in entries {
                if after[pipe].contains_key(path) {
                    continue;
                }
                assert!(
                    !queued,
                    "{pipe} {path} forgotten with an op queued\n{}",
                    log()
                );
                assert!(
                    e.kind == Kind::Dir || e.state == Delivery::Delivered,
                    "{pipe} {path} forgotten undelivered: {e:?}\n{}",
                    log()
                );
                // A directory its last entry left in this sweep is remembered from now:
                // only the cap forgets it at once.
                let since = e.kept_since.unwrap_or(steady);
                assert!(
                    e.kept_since.is_some() || e.kind == Kind::Dir,
                    "{pipe} {path} was not remembered\n{}",
                    log()
                );
                assert!(
                    cap < u64::MAX || since + KEEP_MS <= steady,
                    "{pipe} {path} forgotten before its window ended\n{}",
                    log()
                );
                let m = self.model.get_mut(pipe.as_str()).unwrap();
                let dest = self.dest.get_mut(pipe.as_str()).unwrap();
                if e.kind == Kind::Dir {
                    assert!(m.dirs.remove(path.as_str()), "{path} not in the model");
                    dest.forgotten.dirs.insert(path.clone());
                } else {
                    let body = m.files.remove(path.as_str()).expect("in the model");
                    dest.forgotten.files.insert(path.clone(), body);
                }
            }
        }
        for (pipe, entries) in &after {
            assert!(
                entries.keys().all(|p| before[pipe].contains_key(p)),
                "expiry made entries\n{}",
                log()
            );
        }
    }

    /// Every catalog entry of each Pipe, with whether an op is queued on its path.
    pub(super) fn listing(&self) -> BTreeMap<String, BTreeMap<String, (Entry, bool)>> {
        let r = self.store.read().unwrap();
        let mut out = BTreeMap::new();
        for pipe in PIPES {
            let mut entries = BTreeMap::new();
            let mut dirs = vec![VPath::root()];
            while let Some(d) = dirs.pop() {
                for (name, e) in r.children_page(pipe, &d, None, usize::MAX).unwrap() {
                    let p = d.child(&name);
                    if e.kind == Kind::Dir {
                        dirs.push(p.clone());
                    }
                    let queued = r.last_op_on(pipe, p.as_str()).unwrap().is_some();
                    entries.insert(p.to_string(), (e, queued));
                }
            }
            out.insert(pipe.to_string(), entries);
        }
        out
    }
}
