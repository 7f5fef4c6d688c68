//! Which byte ranges of an upload the client has written (pure). SFTP writes carry their
//! own offsets, so a file can have holes the client never filled: a crashed client, or
//! one that opened an existing file without truncating it and wrote only its end. A file
//! with a hole is never published as if complete; `CLOSE` names the first gap instead.
//!
//! In-order writes keep a single range, so the common case is one comparison. The number
//! of separate ranges is bounded ([`MAX_RANGES`]): a client scattering more is refused.

/// Most disjoint written ranges tracked for one handle.
pub const MAX_RANGES: usize = 1024;

/// Written ranges, sorted, disjoint and not touching (adjacent ranges are merged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    ranges: Vec<(u64, u64)>,
}

/// The write would make more than [`MAX_RANGES`] separate ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the writes are scattered over more than {MAX_RANGES} separate ranges")]
pub struct TooScattered;

impl Coverage {
    /// Nothing written yet.
    pub fn new() -> Coverage {
        Coverage::default()
    }

    /// Bytes `0..len` are already there (a resumed partial or a continued file).
    pub fn prefilled(len: u64) -> Coverage {
        let mut c = Coverage::new();
        if len > 0 {
            c.ranges.push((0, len));
        }
        c
    }

    /// Records bytes `start..end` as written.
    pub fn add(&mut self, start: u64, end: u64) -> Result<(), TooScattered> {
        if start >= end {
            return Ok(());
        }
        // The common case: extending the last range.
        if let Some(last) = self.ranges.last_mut()
            && start >= last.0
            && start <= last.1
        {
            last.1 = last.1.max(end);
            return Ok(());
        }
        // The ranges that touch or overlap start..end merge with it.
        let first = self.ranges.partition_point(|r| r.1 < start);
        let past = self.ranges.partition_point(|r| r.0 <= end);
        if first == past {
            if self.ranges.len() >= MAX_RANGES {
                return Err(TooScattered);
            }
            self.ranges.insert(first, (start, end));
            return Ok(());
        }
        let merged = (
            start.min(self.ranges[first].0),
            end.max(self.ranges[past - 1].1),
        );
        self.ranges.splice(first..past, [merged]);
        Ok(())
    }

    /// The first range of `0..len` nobody wrote, if any.
    pub fn first_gap(&self, len: u64) -> Option<(u64, u64)> {
        let mut at = 0;
        for &(s, e) in &self.ranges {
            if s > at {
                return Some((at, s.min(len)));
            }
            at = e;
        }
        (at < len).then_some((at, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_writes_leave_no_gap() {
        let mut c = Coverage::new();
        for i in 0..100 {
            c.add(i * 10, i * 10 + 10).unwrap();
        }
        assert_eq!(c.ranges, vec![(0, 1000)]);
        assert_eq!(c.first_gap(1000), None);
        assert_eq!(c.first_gap(1001), Some((1000, 1001)));
    }

    #[test]
    fn out_of_order_writes_merge_once_the_holes_fill() {
        let mut c = Coverage::new();
        c.add(20, 30).unwrap();
        c.add(0, 10).unwrap();
        assert_eq!(c.first_gap(30), Some((10, 20)));
        c.add(40, 50).unwrap();
        assert_eq!(c.ranges, vec![(0, 10), (20, 30), (40, 50)]);
        // One write spanning two holes joins everything.
        c.add(5, 45).unwrap();
        assert_eq!(c.ranges, vec![(0, 50)]);
        assert_eq!(c.first_gap(50), None);
        // Rewriting bytes already there changes nothing.
        c.add(10, 20).unwrap();
        assert_eq!(c.ranges, vec![(0, 50)]);
    }

    #[test]
    fn a_write_past_the_start_of_a_fresh_file_leaves_a_gap_at_zero() {
        let mut c = Coverage::new();
        c.add(100, 200).unwrap();
        assert_eq!(c.first_gap(200), Some((0, 100)));
        assert_eq!(Coverage::prefilled(100).first_gap(100), None);
        let mut c = Coverage::prefilled(100);
        c.add(100, 150).unwrap();
        assert_eq!(c.first_gap(150), None);
        assert_eq!(Coverage::new().first_gap(0), None);
    }

    #[test]
    fn scattering_is_bounded() {
        let mut c = Coverage::new();
        for i in 0..MAX_RANGES as u64 {
            c.add(i * 10 + 5, i * 10 + 6).unwrap();
        }
        assert_eq!(c.add(1_000_000, 1_000_001), Err(TooScattered));
        // Filling a hole still works at the bound.
        c.add(0, 5).unwrap();
    }

    #[test]
    fn random_writes_agree_with_a_byte_map() {
        // A small deterministic generator: no dependency, same cases every run.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut c = Coverage::new();
            let mut map = [false; 64];
            for _ in 0..next(12) {
                let s = next(64);
                let e = (s + 1 + next(8)).min(64);
                c.add(s, e).unwrap();
                map[s as usize..e as usize]
                    .iter_mut()
                    .for_each(|b| *b = true);
            }
            let want = map.iter().position(|b| !b).map(|s| {
                let e = map[s..].iter().position(|b| *b).map_or(64, |n| s + n);
                (s as u64, e as u64)
            });
            assert_eq!(c.first_gap(64), want, "{c:?}");
        }
    }
}
