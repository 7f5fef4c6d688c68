//! The threads transfers run on (see [`super::receive`]), kept for the next transfer with
//! their receive buffer. Starting a thread and mapping a fresh 256 KiB buffer for every
//! upload, then unmapping both, was the largest single cost of a small upload: about a
//! third of the daemon's CPU per 64 KiB file (docs/BENCHMARKS.md). A thread waits
//! [`KEEP`] for its next transfer, then ends, so the threads alive are at most the
//! transfers of the last few seconds, and an idle daemon has none.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

/// A transfer, given the thread's receive buffer.
pub(super) type Job = Box<dyn FnOnce(&mut [u8]) + Send>;

/// How long a thread waits for another transfer before it ends.
const KEEP: Duration = Duration::from_secs(10);

/// The receive buffer: one per transfer thread, the per-transfer memory budget.
pub(super) const BUF_SIZE: usize = 256 * 1024;

/// The thread's stack: the receive loop, a TLS read and a file write.
const STACK: usize = 256 << 10;

struct Idle {
    id: u64,
    jobs: SyncSender<Job>,
}

struct Pool {
    idle: Vec<Idle>,
    started: u64,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: Vec::new(),
    started: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `job` on a waiting thread, or a new one; gives it back if no thread can be
/// started (the caller runs it elsewhere).
pub(super) fn run(job: Job) -> Result<(), Job> {
    let mut job = job;
    loop {
        let waiting = pool().idle.pop();
        match waiting {
            Some(t) => match t.jobs.send(job) {
                Ok(()) => return Ok(()),
                // It ended meanwhile: the job comes back.
                Err(e) => job = e.0,
            },
            None => return start(job),
        }
    }
}

fn start(job: Job) -> Result<(), Job> {
    let id = {
        let mut p = pool();
        p.started += 1;
        p.started
    };
    let (jobs, mine) = sync_channel::<Job>(1);
    let again = jobs.clone();
    let started = std::thread::Builder::new()
        .name("ftpgate-recv".into())
        .stack_size(STACK)
        .spawn(move || work(id, again, mine));
    match started {
        // The thread waits on its channel: the send cannot fail.
        Ok(_) => jobs.send(job).map_err(|e| e.0),
        Err(e) => {
            log::warn!("cannot start a thread for a transfer ({e}); using the shared pool");
            Err(job)
        }
    }
}

fn work(id: u64, jobs: SyncSender<Job>, mine: Receiver<Job>) {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut next = mine.recv().ok();
    while let Some(job) = next.take() {
        job(&mut buf);
        pool().idle.push(Idle {
            id,
            jobs: jobs.clone(),
        });
        next = match mine.recv_timeout(KEEP) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                let mut p = pool();
                match p.idle.iter().position(|t| t.id == id) {
                    Some(i) => {
                        p.idle.swap_remove(i);
                        None
                    }
                    // Taken a moment ago: its job is on the way.
                    None => {
                        drop(p);
                        mine.recv().ok()
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_run_at_once_each_with_a_whole_buffer_and_threads_are_kept() {
        let (tx, rx) = std::sync::mpsc::channel();
        // Three at once run at once (none waits for a thread another one holds).
        let gate = std::sync::Arc::new(std::sync::Barrier::new(3));
        for _ in 0..3 {
            let (tx, gate) = (tx.clone(), gate.clone());
            let job: Job = Box::new(move |buf: &mut [u8]| {
                gate.wait();
                tx.send((std::thread::current().id(), buf.len())).unwrap();
            });
            assert!(run(job).is_ok());
        }
        let mut threads = std::collections::HashSet::new();
        for _ in 0..3 {
            let (thread, len) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(len, BUF_SIZE);
            threads.insert(thread);
        }
        assert_eq!(threads.len(), 3);
        // Done, they wait for the next transfer instead of ending.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool().idle.is_empty() {
            assert!(std::time::Instant::now() < deadline, "no thread was kept");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
