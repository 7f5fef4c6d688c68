//! How big the state file gets, and what a listing costs, as uploads go on: the catalog
//! and outbox through the store's own commit path (publish in group commits, claim and
//! settle as the forwarder does, the retention sweep as the daemon runs it), in process.
//!
//! * `sizes`: the state file and remembered entries after 10k, 100k and 1M delivered
//!   uploads with a short retention (`--keep-delivered 60s`, cameras sending 4 files a
//!   second), and after 1M with the defaults (1d, at most 150,000 remembered). Flat means
//!   1M ≤ 1.1 × 100k + 1 MiB.
//! * `queued`: bytes of state per queued (undelivered) upload, 100k of them.
//! * `list`: listing a 20-entry directory in a Pipe holding 1k entries against one
//!   holding 1M (the cap raised), medians of five alternated rounds.
//! * `fill`: `STATE_FILL=DB,PIPE,DIR,N` adds N delivered files to DIR of PIPE in the
//!   state file DB (for `scripts/bench-state`'s listing over FTP).
//!
//! * `compact`: `STATE_COMPACT=DB` compacts the state file DB (no daemon running), as
//!   start-up does when more than half of it is free, and prints its sizes (to tell a
//!   drained file's layout from its contents, see `docs/BENCHMARKS.md`).
//!
//! Run: `cargo bench --bench state` (all but fill), or `STATE_BENCH=sizes,list` for some.
//! `BENCH_DIR` holds the databases (default /var/tmp: a real disk).

use std::time::{Duration, Instant};

use ftpgate::checksum::Checksum;
use ftpgate::store::catalog::Upload;
use ftpgate::store::catalog::expire::{DEFAULT_CAP, DEFAULT_KEEP_MS};
use ftpgate::store::namespace::Overwrite;
use ftpgate::store::outbox::Outcome;
use ftpgate::store::pipes::PipeSpec;
use ftpgate::store::{Store, View};
use ftpgate::vfs::VPath;

/// Cameras uploading into a directory of their own per day.
const CAMERAS: usize = 40;
/// Uploads per group commit.
const GROUP: usize = 500;
/// Steady-clock time between two uploads of the whole gateway: 40 cameras every 10 s.
const EVERY_MS: u64 = 250;

fn main() {
    if let Ok(spec) = std::env::var("STATE_FILL") {
        return fill(&spec);
    }
    if let Ok(spec) = std::env::var("STATE_WALK") {
        return walk(&spec);
    }
    if let Ok(db) = std::env::var("STATE_COMPACT") {
        return compact(&db);
    }
    let which = std::env::var("STATE_BENCH").unwrap_or_else(|_| "sizes,queued,list".into());
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let dir = tempfile::tempdir_in(&base).unwrap();
    for part in which.split(',') {
        match part.trim() {
            "sizes" => sizes(dir.path()),
            "queued" => queued(dir.path()),
            "list" => list(dir.path()),
            other => panic!("STATE_BENCH: unknown part {other:?}"),
        }
    }
}

fn store_at(dir: &std::path::Path, name: &str, keep: Option<&str>) -> (Store, std::path::PathBuf) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path).unwrap();
    let pipe = PipeSpec {
        id: Some("cams".into()),
        name: "cams".into(),
        dest: "file:///srv/never-used".into(),
        enabled: true,
        create_dirs: true,
        keep_delivered: keep.map(str::to_string),
        ..Default::default()
    }
    .build("cams".into(), None, 0)
    .unwrap();
    store.write(|w| w.put_pipe(&pipe)).unwrap();
    (store, path)
}

fn upload(i: usize) -> (VPath, Upload) {
    let day = i as u64 * EVERY_MS / 86_400_000;
    let path = VPath::from_normalised(&format!(
        "/cam{:02}/day{day:04}/snap-{i:09}.jpg",
        i % CAMERAS
    ));
    let up = Upload {
        body: ftpgate::spool::new_id(),
        size: 200_000,
        sum: Checksum::Crc32c(i as u32),
        mtime: 1_767_225_600 + i as u64 / 4,
        sender: format!("cam{:02}", i % CAMERAS),
    };
    (path, up)
}

/// Uploads `range`, one group commit, then delivers them as the forwarder would and runs
/// the retention sweep, with the steady clock moved on by the group's time.
fn round(store: &Store, range: std::ops::Range<usize>, cap: u64) {
    let n = range.len();
    store
        .write(|w| {
            for i in range.clone() {
                let (path, up) = upload(i);
                w.publish("cams", &path, Overwrite::Replace, true, up, 0)?;
            }
            Ok(())
        })
        .unwrap();
    deliver_all(store, "cams");
    store.advance_steady(Duration::from_millis(EVERY_MS * n as u64));
    while store.write(|w| w.expire(cap, 5000)).unwrap().more {}
}

/// Rows in each table that could grow (`STATE_TABLES=1`).
fn tables(store: &Store) {
    use ftpgate::store::schema::*;
    use redb::ReadableTableMetadata;
    let r = store.read().unwrap();
    let n = |len: u64| len;
    eprintln!(
        "  used {:.1} MiB; rows: entries {} remembered {} outbox {} garbage {} keep_both {} key_ops {}",
        store.used_bytes().unwrap() as f64 / 1048576.0,
        n(r.table(ENTRIES).unwrap().len().unwrap()),
        n(r.table(REMEMBERED).unwrap().len().unwrap()),
        n(r.table(OUTBOX).unwrap().len().unwrap()),
        n(r.table(GARBAGE).unwrap().len().unwrap()),
        n(r.table(KEEP_BOTH).unwrap().len().unwrap()),
        n(r.table(KEY_OPS).unwrap().len().unwrap()),
    );
}

fn mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).unwrap().len() as f64 / 1048576.0
}

fn sizes(dir: &std::path::Path) {
    println!("state file after N delivered uploads (40 cameras, a day folder each)");
    println!(
        "{:>9}  {:>16}  {:>10}  {:>12}  {:>10}",
        "uploads", "retention", "remembered", "state, MiB", "uploads/s"
    );
    let runs: [(&str, Option<&str>, &[usize]); 2] = [
        ("60s", Some("60s"), &[10_000, 100_000, 1_000_000]),
        ("defaults (1d)", None, &[1_000_000]),
    ];
    for (label, keep, marks) in runs {
        let (store, path) = store_at(dir, "sizes.redb", keep);
        let t = Instant::now();
        let mut next = 0;
        for &mark in marks {
            while next < mark {
                round(&store, next..next + GROUP, DEFAULT_CAP);
                next += GROUP;
            }
            let remembered = store.read().unwrap().remembered().unwrap();
            if std::env::var("STATE_TABLES").is_ok() {
                tables(&store);
            }
            println!(
                "{mark:>9}  {label:>16}  {remembered:>10}  {:>12.1}  {:>10.0}",
                mib(&path),
                next as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "(default window {} h, default cap {DEFAULT_CAP})",
        DEFAULT_KEEP_MS / 3_600_000
    );
}

fn queued(dir: &std::path::Path) {
    const N: usize = 100_000;
    let (store, path) = store_at(dir, "queued.redb", None);
    let empty = std::fs::metadata(&path).unwrap().len();
    for start in (0..N).step_by(GROUP) {
        store
            .write(|w| {
                for i in start..start + GROUP {
                    let (path, up) = upload(i);
                    w.publish("cams", &path, Overwrite::Replace, true, up, 0)?;
                }
                Ok(())
            })
            .unwrap();
    }
    let full = std::fs::metadata(&path).unwrap().len();
    println!(
        "queued: {N} undelivered uploads: state file {:.1} MiB, {:.0} bytes per queued upload (op, indexes and catalog entry)",
        full as f64 / 1048576.0,
        (full - empty) as f64 / N as f64
    );
    table_bytes(&store, N as u64);
}

/// Bytes per `n` of each table that grows with the backlog: stored (keys and values),
/// and the pages' whole size (leaf and branch pages, free space in them included).
fn table_bytes(store: &Store, n: u64) {
    use ftpgate::store::schema::*;
    use redb::{ReadableTableMetadata, TableStats};
    let r = store.read().unwrap();
    let per = |name: &str, st: TableStats| {
        let pages = (st.leaf_pages() + st.branch_pages()) * 4096;
        println!(
            "  {name:<9} stored {:>5.0} B, pages {:>5.0} B",
            st.stored_bytes() as f64 / n as f64,
            pages as f64 / n as f64
        );
    };
    per("outbox", r.table(OUTBOX).unwrap().stats().unwrap());
    per("key_ops", r.table(KEY_OPS).unwrap().stats().unwrap());
    per("ready", r.table(READY).unwrap().stats().unwrap());
    per("pipe_ops", r.table(PIPE_OPS).unwrap().stats().unwrap());
    per("bodies", r.table(BODIES).unwrap().stats().unwrap());
    per("entries", r.table(ENTRIES).unwrap().stats().unwrap());
}

/// Entries in a Pipe of `n` for the listing comparison: a 20-entry directory and `n` more
/// delivered files elsewhere.
fn listing_store(dir: &std::path::Path, name: &str, n: usize) -> Store {
    let (store, _) = store_at(dir, name, Some("3650d"));
    fill_store(&store, "cams", "/elsewhere", n);
    fill_store(&store, "cams", "/cam07/today", 20);
    store
}

fn list(dir: &std::path::Path) {
    let small = listing_store(dir, "list-1k.redb", 1_000);
    let large = listing_store(dir, "list-1m.redb", 1_000_000);
    let d = VPath::from_normalised("/cam07/today");
    let time = |s: &Store| {
        const N: u32 = 2000;
        let t = Instant::now();
        for _ in 0..N {
            let r = s.read().unwrap();
            let page = r.children_page("cams", &d, None, 512).unwrap();
            assert_eq!(page.len(), 20);
        }
        t.elapsed().as_secs_f64() * 1e6 / N as f64
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(time(&small));
        b.push(time(&large));
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    println!(
        "list of a 20-entry directory: {:.1} µs in a Pipe of 1k entries, {:.1} µs in one of 1M: ratio {:.2} (medians of 5 alternated rounds of 2000)",
        a[2],
        b[2],
        b[2] / a[2]
    );
}

/// Adds `n` delivered files named `f000000001`... under `dir` (made if missing).
fn fill_store(store: &Store, pipe: &str, dir: &str, n: usize) {
    let dirs = VPath::from_normalised(dir);
    store
        .write(|w| {
            let mut at = VPath::root();
            for part in dirs.as_str().split('/').filter(|p| !p.is_empty()) {
                at = at.child(part);
                if w.entry(pipe, &at)?.is_none() {
                    w.mkdir(pipe, &at, 0)?;
                }
            }
            Ok(())
        })
        .unwrap();
    for start in (0..n).step_by(5000) {
        let end = (start + 5000).min(n);
        store
            .write(|w| {
                for i in start..end {
                    let up = Upload {
                        body: ftpgate::spool::new_id(),
                        size: 1000,
                        sum: Checksum::Crc32c(i as u32),
                        mtime: 1_767_225_600,
                        sender: "cam".into(),
                    };
                    w.publish(
                        pipe,
                        &dirs.child(&format!("f{i:09}")),
                        Overwrite::Replace,
                        false,
                        up,
                        0,
                    )?;
                }
                Ok(())
            })
            .unwrap();
        deliver_all(store, pipe);
    }
}

/// Delivers everything queued in `pipe` as the forwarder would. The freed bodies are
/// forgotten at once, as the daemon's garbage collection does after deleting them (here
/// they are made-up ids: nothing to delete).
fn deliver_all(store: &Store, pipe: &str) {
    loop {
        let ops = store
            .write(|w| w.claim_ready(pipe, u64::MAX, 1000))
            .unwrap();
        if ops.is_empty() {
            break;
        }
        let done: Vec<(u64, Outcome)> = ops.iter().map(|o| (o.id, Outcome::Done)).collect();
        store
            .write(|w| {
                let freed = w.settle(&done)?;
                w.forget_garbage(&freed)
            })
            .unwrap();
    }
}

fn fill(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let [db, pipe, dir, n] = parts[..] else {
        panic!("STATE_FILL=DB,PIPE,DIR,N");
    };
    let store = Store::open(std::path::Path::new(db)).unwrap();
    fill_store(&store, pipe, dir, n.parse().unwrap());
    // The markers and deletes of the fill are the destination's business, not the bench's.
    let left: Vec<u64> = store
        .read()
        .unwrap()
        .ops_page(Some(pipe), 0, 1_000_000)
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    let done: Vec<(u64, Outcome)> = left.iter().map(|id| (*id, Outcome::Done)).collect();
    store.write(|w| w.settle(&done)).unwrap();
}

/// `STATE_WALK=DB,PIPE,DIR`: lists DIR page by page as the FTP side does, printing RSS.
fn walk(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let [db, pipe, dir] = parts[..] else {
        panic!("STATE_WALK=DB,PIPE,DIR");
    };
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("RssAnon"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let store = Store::open(std::path::Path::new(db)).unwrap();
    println!("opened: {}", rss());
    let d = VPath::from_normalised(dir);
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let page = store
            .read()
            .unwrap()
            .children_page(pipe, &d, after.as_deref(), 512)
            .unwrap();
        n += page.len();
        match page.last() {
            Some((name, _)) => after = Some(name.clone()),
            None => break,
        }
    }
    println!("listed {n}: {}", rss());
}

/// `STATE_COMPACT=DB`: compacts DB whatever its free share, printing the sizes.
fn compact(db: &str) {
    let path = std::path::Path::new(db);
    let mut store = redb::Database::create(path).unwrap();
    let used = |d: &redb::Database| {
        let txn = d.begin_write().unwrap();
        let s = txn.stats().unwrap();
        let b = s.allocated_pages() * s.page_size() as u64;
        txn.abort().unwrap();
        b
    };
    let mib = |b: u64| b as f64 / 1048576.0;
    let size = || std::fs::metadata(path).unwrap().len();
    println!(
        "before: file {:.1} MiB, pages in use {:.1} MiB",
        mib(size()),
        mib(used(&store))
    );
    store.compact().unwrap();
    println!(
        "after:  file {:.1} MiB, pages in use {:.1} MiB",
        mib(size()),
        mib(used(&store))
    );
}
