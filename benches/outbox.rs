//! The outbox's cost per op against the size of the backlog, without the network: a
//! database holding N queued 4 KiB uploads (names as `scripts/bench-backlog` makes them),
//! then the forwarder's work per delivered op (claim a batch, settle it in one durable
//! commit), alone and interleaved with uploads committed in groups as the FTP side does.
//! If the rate at 1M is well below the rate at 10k, the store is what slows a long
//! outage's drain.
//!
//! Run: `cargo bench --bench outbox` (10k and 100k), or
//! `OUTBOX_BACKLOG=10000,1000000 cargo bench --bench outbox` (the 1M database takes
//! minutes to build). `BENCH_DIR` holds the database (default /var/tmp: a real disk).

use std::time::Instant;

use ftpgate::checksum::Checksum;
use ftpgate::store::Store;
use ftpgate::store::catalog::Upload;
use ftpgate::store::namespace::Overwrite;
use ftpgate::store::outbox::Outcome;
use ftpgate::store::pipes::PipeSpec;
use ftpgate::vfs::VPath;

/// Sessions uploading (each into its own directory), as in bench-backlog.
const SESSIONS: usize = 8;
/// Ops claimed and settled per durable commit: about what the forwarder settles every
/// 50 ms at 1,000 deliveries a second.
const BATCH: usize = 64;
/// Uploads per group commit while building the backlog.
const BUILD_GROUP: usize = 1000;
/// Ops drained per measurement, at most (and at most a quarter of the backlog).
const DRAIN: usize = 20_000;
/// Uploads committed per group on the FTP side during the interleaved run.
const INGEST_GROUP: usize = 8;

fn main() {
    let sizes: Vec<usize> = std::env::var("OUTBOX_BACKLOG")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("OUTBOX_BACKLOG: comma-separated counts")
        })
        .collect();
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
    println!(
        "{:>9}  {:>12}  {:>30}  {:>30}  {:>8}",
        "backlog",
        "build, ops/s",
        "drain: ops/s (CPU, written/op)",
        "drain + ingest: the same",
        "db, MiB"
    );
    for n in sizes {
        let dir = tempfile::tempdir_in(&base).unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path).unwrap();
        let mut next = 0usize;
        let t = Instant::now();
        setup(&store);
        while next < n {
            let k = BUILD_GROUP.min(n - next);
            uploads(&store, next..next + k);
            next += k;
        }
        let build = n as f64 / t.elapsed().as_secs_f64();
        let count = DRAIN.min(n / 4);
        let alone = drain(&store, count, None);
        let mixed = drain(&store, count, Some(&mut next));
        let size = std::fs::metadata(&path).unwrap().len() as f64 / (1 << 20) as f64;
        println!("{n:>9}  {build:>12.0}  {alone:>30}  {mixed:>30}  {size:>8.0}");
    }
}

fn setup(store: &Store) {
    let spec = PipeSpec {
        id: Some("cams".into()),
        name: "cams".into(),
        dest: "file:///srv/never-used".into(),
        enabled: true,
        ..Default::default()
    };
    let pipe = spec.build("cams".into(), None, 0).unwrap();
    store
        .write(|w| {
            w.put_pipe(&pipe)?;
            for s in 0..SESSIONS {
                w.mkdir("cams", &VPath::from_normalised(&format!("/load-s{s}")), 0)?;
            }
            Ok(())
        })
        .unwrap();
}

/// The i-th upload: session i % SESSIONS, its (i / SESSIONS)-th file.
fn upload(w: &ftpgate::store::Writer, i: usize) -> ftpgate::store::Result<()> {
    let path = VPath::from_normalised(&format!("/load-s{}/f{}", i % SESSIONS, i / SESSIONS));
    let up = Upload {
        body: ftpgate::spool::new_id(),
        size: 4096,
        sum: Checksum::Crc32c(i as u32),
        mtime: 0,
        sender: "cam".into(),
    };
    w.publish("cams", &path, Overwrite::Replace, false, up, 0)
        .map(|_| ())
}

/// Uploads `range` in one group commit.
fn uploads(store: &Store, range: std::ops::Range<usize>) {
    store
        .write(|w| range.clone().try_for_each(|i| upload(w, i)))
        .unwrap();
}

/// Delivers `count` ops as the forwarder does (each commit settles the last batch and
/// claims the next); with `ingest`, one group of uploads is committed between rounds.
/// Returns delivered ops per second, and CPU (µs) and disk writes (KiB) per op.
fn drain(store: &Store, count: usize, mut ingest: Option<&mut usize>) -> Rate {
    let t = Instant::now();
    let (cpu0, written0) = (cpu_us(), written());
    let mut claimed: Vec<u64> = Vec::new();
    let mut delivered = 0;
    while delivered < count {
        let settled: Vec<(u64, Outcome)> = claimed.iter().map(|id| (*id, Outcome::Done)).collect();
        delivered += settled.len();
        claimed = store
            .write(|w| {
                w.settle(&settled)?;
                Ok(w.claim_ready("cams", u64::MAX, BATCH)?
                    .into_iter()
                    .map(|op| op.id)
                    .collect())
            })
            .unwrap();
        assert!(
            !claimed.is_empty(),
            "the backlog ran out: raise OUTBOX_BACKLOG"
        );
        if let Some(next) = ingest.as_deref_mut() {
            uploads(store, *next..*next + INGEST_GROUP);
            *next += INGEST_GROUP;
        }
    }
    Rate {
        ops_s: delivered as f64 / t.elapsed().as_secs_f64(),
        cpu_us: (cpu_us() - cpu0) as f64 / delivered as f64,
        written_kib: (written() - written0) as f64 / 1024.0 / delivered as f64,
    }
}

struct Rate {
    ops_s: f64,
    cpu_us: f64,
    written_kib: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let s = format!(
            "{:.0} ({:.0} µs, {:.1} KiB)",
            self.ops_s, self.cpu_us, self.written_kib
        );
        f.pad(&s)
    }
}

/// CPU this process has used, user and system, in µs.
fn cpu_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    // Clock ticks are 100 per second on every Linux this runs on.
    (f[0] + f[1]) * 10_000
}

/// Bytes this process has caused to be written to storage.
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .parse()
        .unwrap()
}
