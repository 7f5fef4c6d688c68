//! The memory S3 deliveries may hold at once, in the whole process: bytes of upload
//! bodies read into memory to be sent. A small put holds its whole body (up to
//! [`MULTIPART_THRESHOLD`](super::MULTIPART_THRESHOLD)); a multipart upload holds a
//! [`PART_SIZE`](super::PART_SIZE) buffer per part in flight. Both take their bytes from
//! [`MEMORY`] first and give them back when sent, so however many Pipes deliver at once,
//! peak memory for bodies is [`MEMORY_BYTES`] (20 MiB). A delivery waits until its
//! bytes are free; one larger than the whole budget takes all of it.

use std::sync::{Condvar, Mutex};

/// Bytes of bodies in memory at once: four multipart buffers' worth.
pub const MEMORY_BYTES: u64 = 4 * super::PART_SIZE as u64;

pub(super) static MEMORY: Budget = Budget::new(MEMORY_BYTES);

/// A number of bytes, taken and given back.
pub(super) struct Budget {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

/// Bytes of a [`Budget`], given back on drop.
pub(super) struct Ticket {
    budget: &'static Budget,
    bytes: u64,
}

impl Budget {
    pub(super) const fn new(total: u64) -> Budget {
        Budget {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` are free (all of the budget, if it asks for more).
    pub(super) fn take(&'static self, bytes: u64) -> Ticket {
        let bytes = bytes.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < bytes {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= bytes;
        Ticket {
            budget: self,
            bytes,
        }
    }

    /// `bytes` if they are free now.
    pub(super) fn try_take(&'static self, bytes: u64) -> Option<Ticket> {
        let bytes = bytes.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        (*free >= bytes).then(|| {
            *free -= bytes;
            Ticket {
                budget: self,
                bytes,
            }
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        *self.budget.free.lock().unwrap_or_else(|p| p.into_inner()) += self.bytes;
        // Waiters want different amounts: each looks again.
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_bytes_and_gives_them_back() {
        static B: Budget = Budget::new(10);
        let a = B.take(6);
        let b = B.try_take(4).expect("four more are free");
        assert!(B.try_take(1).is_none(), "ten is the bound");
        drop(a);
        let c = B.try_take(5).expect("returned bytes can be taken again");
        // A waiter gets the bytes another thread gives back; one asking for more than
        // the whole budget gets all of it.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| B.take(50));
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(b);
            drop(c);
            let all = waiter.join().unwrap();
            assert_eq!(all.bytes, 10);
        });
        assert_eq!(*B.free.lock().unwrap(), 10);
    }

    /// A small put holds its whole body in memory: it waits for its bytes like a
    /// multipart buffer does, so peak memory during a drain is the budget's.
    #[test]
    fn a_small_put_waits_for_its_bytes_of_the_budget() {
        use crate::forward::sink::Sink;
        let server = super::super::test_server::s3();
        let sink = server.sink();
        let body = server.root.path().join("body");
        std::fs::write(&body, vec![5u8; 1 << 20]).unwrap();
        let sum = crate::checksum::Hasher::crc32c_of(&vec![5u8; 1 << 20]);
        let meta = super::super::test_server::meta(false);
        // Everything but half a MiB is held by other deliveries.
        let held = MEMORY.take(MEMORY_BYTES - (512 << 10));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let r = sink.put("cell/held.bin", &body, 1 << 20, &sum, &meta);
                tx.send(r).unwrap();
            });
            let waited = rx.recv_timeout(std::time::Duration::from_millis(500));
            assert!(waited.is_err(), "the put went ahead without its memory");
            drop(held);
            let sent = rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
            sent.unwrap();
        });
    }
}
