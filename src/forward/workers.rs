//! The threads deliveries run on. They run below the priority of everything else in the
//! daemon (a higher nice value, [`NICE`]), so while devices upload, catching up with a
//! backlog takes the CPU the uploads leave, and an idle box gives it all to the drain.
//! A `226` never waits for a delivery: on a two-core gateway draining a month's backlog,
//! the cameras keep their upload rate.
//!
//! Threads are started when a delivery finds none free and then kept, so there are at
//! most as many as deliveries ever ran at once (bounded by the Pipes' `parallel`). They
//! hold no lock the uploads wait for: a delivery reads its spool body and talks to the
//! destination; its outcome is recorded by the forwarder's round at normal priority.

use std::sync::{Arc, Mutex};

/// How much lower the delivery threads' priority is: CPU time under contention is shared
/// about 1:9 with a thread at the default priority.
pub(super) const NICE: i32 = 10;

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

/// Gives the calling thread the nice value [`NICE`] (on Linux, nice is per thread). A
/// system that refuses leaves the thread at normal priority, which is only slower to share.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(me), target(now)) {
            log::debug!("forwarder: delivery thread stays at normal priority: {e}");
        }
    }
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
                tx.send((i, nice, name)).unwrap();
            });
        }
        let mut seen: Vec<_> = (0..20).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        let base = rustix::process::getpriority_process(None).unwrap();
        for (i, (n, nice, name)) in seen.into_iter().enumerate() {
            assert_eq!(n, i);
            assert_eq!(nice, target(base), "job {i}");
            assert_eq!(name.as_deref(), Some("ftpgate-deliver"));
        }
        // This thread, like the daemon's others, keeps its priority.
        assert_eq!(
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap(),
            base
        );
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
