//! The threads deliveries run on. They run below everything else in the daemon: under
//! Linux's `SCHED_IDLE` policy, which runs a thread only on CPU time no other thread wants
//! and lets a waking upload thread take the CPU from it at once, and at nice +[`NICE`]
//! besides (what is left where `SCHED_IDLE` is refused). So while devices upload, catching
//! up with a backlog takes the CPU the uploads leave, and an idle box gives it all to the
//! drain. A `226` never waits for a delivery: on a two-core gateway draining a month's
//! backlog, the cameras keep their upload rate.
//!
//! Measured (scripts/bench-backlog, 100k queued, 2 cores, one run each): uploads while
//! the backlog drains ran at 0.61–0.74× their rate alone with nice +10 only (median 0.72×
//! of five runs) and 0.70–0.93× with `SCHED_IDLE` (median 0.84× of four). Nice only shares
//! the CPU about 1:9, and a niced delivery on the CPU still delays every upload thread
//! that wakes up behind it.
//!
//! Threads are started when a delivery finds none free and then kept, so there are at
//! most as many as deliveries ever ran at once (bounded by the Pipes' `parallel`). They
//! hold no lock the uploads wait for: a delivery reads its spool body and talks to the
//! destination; its outcome is recorded by the forwarder's round at normal priority (a
//! round holds redb's writer, which uploads wait for).

use std::sync::{Arc, Mutex};

#[cfg(target_os = "linux")]
use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

/// How much higher the delivery threads' nice value is: where `SCHED_IDLE` is refused,
/// CPU time under contention is still shared about 1:9 with a thread at the default one.
pub(super) const NICE: i32 = 10;

/// The policy delivery threads run under (Linux's `SCHED_IDLE`).
#[cfg(target_os = "linux")]
const IDLE: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);

type Job = Box<dyn FnOnce() + Send>;

/// A pool of delivery threads that grows on demand.
pub(super) struct Workers {
    tx: smol::channel::Sender<Job>,
    rx: smol::channel::Receiver<Job>,
    /// Threads waiting for a job and not yet promised one.
    idle: Arc<Mutex<usize>>,
}

impl Default for Workers {
    fn default() -> Self {
        let (tx, rx) = smol::channel::unbounded();
        Workers {
            tx,
            rx,
            idle: Arc::default(),
        }
    }
}

impl Workers {
    /// Runs `job` on a delivery thread, starting one if none is free. A thread that cannot
    /// be started (the system is out of threads) leaves the job to the next free one.
    pub(super) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let free = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let free = *idle > 0;
            if free {
                *idle -= 1;
            }
            free
        };
        if !free {
            let (rx, idle) = (self.rx.clone(), self.idle.clone());
            let started = std::thread::Builder::new()
                .name("ftpgate-deliver".into())
                .spawn(move || work(rx, idle));
            if let Err(e) = started {
                log::warn!(
                    "forwarder: cannot start a delivery thread ({e}); the delivery waits for a free one"
                );
            }
        }
        // Only fails once every receiver is gone, and `self` holds one.
        let _ = self.tx.send_blocking(Box::new(job));
    }
}

fn work(rx: smol::channel::Receiver<Job>, idle: Arc<Mutex<usize>>) {
    lower_priority();
    while let Ok(job) = rx.recv_blocking() {
        job();
        *idle.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
}

/// The nice value for a thread now at `nice`: [`NICE`] above it (from 0 at least), at most
/// the lowest priority, 19.
fn target(nice: i32) -> i32 {
    (nice.max(0) + NICE).min(19)
}

/// Puts the calling thread under `SCHED_IDLE` and gives it the nice value [`NICE`] (on
/// Linux both are per thread). A system that refuses either leaves the thread where it
/// was, which is only slower to share.
pub(super) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
        // It also sets nice 0, which fails (after setting the policy) for a daemon started
        // at a higher nice value without privileges: the policy is what tells.
        let set = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            thread_priority::ThreadPriority::Min,
            IDLE,
        );
        if thread_priority::thread_schedule_policy().ok() != Some(IDLE) {
            refused(format!("SCHED_IDLE: {:?}", set.err()));
        }
        if let Err(e) = rustix::process::setpriority_process(Some(me), target(now)) {
            refused(format!("nice +{NICE}: {e}"));
        }
    }
}

/// Says once per process that the system refused to lower the delivery threads (a
/// seccomp filter, say): uploads then share the CPU with the drain.
#[cfg(target_os = "linux")]
fn refused(what: String) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        log::warn!(
            "forwarder: delivery threads are not below the uploads' priority ({what} refused); \
             a draining backlog shares the CPU with uploads"
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_threads_below_the_daemons_priority() {
        let workers = Workers::default();
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            workers.run(move || {
                let me = rustix::thread::gettid();
                let nice = rustix::process::getpriority_process(Some(me)).unwrap();
                let name = std::thread::current().name().map(String::from);
                let policy = thread_priority::thread_schedule_policy().unwrap();
                tx.send((i, nice, policy, name)).unwrap();
            });
        }
        let mut seen: Vec<_> = (0..20).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        let base = rustix::process::getpriority_process(None).unwrap();
        for (i, (n, nice, policy, name)) in seen.into_iter().enumerate() {
            assert_eq!(n, i);
            assert_eq!(nice, target(base), "job {i}");
            assert_eq!(policy, IDLE, "job {i}");
            assert_eq!(name.as_deref(), Some("ftpgate-deliver"));
        }
        // This thread, like the daemon's others, keeps its priority.
        assert_eq!(
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap(),
            base
        );
        assert_ne!(thread_priority::thread_schedule_policy().unwrap(), IDLE);
    }

    #[test]
    fn threads_are_reused_once_free() {
        let workers = Workers::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for _ in 0..10 {
            let tx = tx.clone();
            workers.run(move || tx.send(rustix::thread::gettid()).unwrap());
            threads.push(rx.recv().unwrap());
            // The thread counts itself free once the job has returned.
            while *workers.idle.lock().unwrap() == 0 {
                std::thread::yield_now();
            }
        }
        threads.dedup();
        assert_eq!(
            threads.len(),
            1,
            "one thread ran all ten, one after another"
        );
    }
}
