//! What redb's quick repair costs and saves, on this machine's disk: the time of a
//! durable commit of one small row, with and without quick repair, in a state file of
//! about 68 MiB (the default bound of remembered entries) and about 1.1 GB (a backlog of
//! millions); and the time to open each file after the process died without closing it
//! (a crash or power cut) just after a commit that was not durable by itself, as the
//! daemon's forwarder makes them, and whether redb had to repair it (with redb 4.6 on
//! this machine it did not, in either mode: a crash between transactions leaves nothing
//! to repair; one during a commit does, and `scripts/bench-backlog` times that start-up).
//! `store::Store` commits without it; this is the measurement behind that choice.
//!
//! Run: `cargo bench --bench commit` (about a minute; as root it drops the page cache
//! before each open, as a reboot would). `BENCH_DIR` holds the files (default /var/tmp).

use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};

const ROWS: TableDefinition<u64, &[u8]> = TableDefinition::new("rows");

fn main() {
    // The child: fill, time the commits, then die without closing the database.
    if let Ok(spec) = std::env::var("COMMIT_CHILD") {
        let mut it = spec.split(',');
        let (path, rows, quick) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let each = fill_and_commit(path, rows.parse().unwrap(), quick);
        println!("{}", each.as_micros());
        std::process::exit(0);
    }
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let dir = tempfile::tempdir_in(&base).unwrap();
    let path = dir.path().join("commit.redb");
    println!(
        "{:<12}{:<8}{:>14}{:>22}",
        "state file", "mode", "commit, µs", "open after a crash"
    );
    for rows in [200_000u64, 2_000_000] {
        for quick in ["quick", "plain", "upgrade"] {
            let _ = std::fs::remove_file(&path);
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .env("COMMIT_CHILD", format!("{},{rows},{quick}", path.display()))
                .output()
                .unwrap();
            let each = String::from_utf8_lossy(&out.stdout).trim().to_string();
            // As after a reboot: nothing of the file in memory (needs root).
            let _ = std::process::Command::new("sync").status();
            let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
            let repaired = std::rc::Rc::new(std::cell::Cell::new(false));
            let saw = repaired.clone();
            let t = Instant::now();
            let mut builder = Database::builder();
            builder.set_repair_callback(move |_| saw.set(true));
            drop(builder.create(&path).unwrap());
            let open = t.elapsed();
            let repaired = if repaired.get() {
                "repaired"
            } else {
                "no repair"
            };
            let mib = std::fs::metadata(&path).unwrap().len() >> 20;
            println!(
                "{:<12}{quick:<8}{each:>14}{:>19.3} s ({repaired})",
                format!("{mib} MiB"),
                open.as_secs_f64()
            );
        }
    }
}

/// Fills `path` with `rows` rows of 300 bytes, then times 200 durable commits of one row:
/// with quick repair (`quick`), without (`plain`), or without after 100 with (`upgrade`:
/// a state file an earlier release committed to with quick repair).
fn fill_and_commit(path: &str, rows: u64, mode: &str) -> Duration {
    let db = Database::builder()
        .set_cache_size(4 << 20)
        .create(path)
        .unwrap();
    const BATCH: u64 = 1000;
    for b in 0..rows / BATCH {
        let mut w = db.begin_write().unwrap();
        w.set_durability(Durability::None).unwrap();
        {
            let mut t = w.open_table(ROWS).unwrap();
            for i in 0..BATCH {
                t.insert(b * BATCH + i, &[7u8; 300][..]).unwrap();
            }
        }
        w.commit().unwrap();
    }
    let commit = |i: u64, quick: bool| {
        let mut w = db.begin_write().unwrap();
        w.set_quick_repair(quick);
        {
            let mut t = w.open_table(ROWS).unwrap();
            t.insert(rows + i, &[1u8; 100][..]).unwrap();
        }
        w.commit().unwrap();
    };
    if mode == "upgrade" {
        (1000..1100).for_each(|i| commit(i, true));
    }
    let t = Instant::now();
    (0..200).for_each(|i| commit(i, mode == "quick"));
    let each = t.elapsed() / 200;
    // As the daemon's forwarder does between durable commits: a commit that is not
    // durable by itself (its claims), which the crash catches unflushed.
    let mut w = db.begin_write().unwrap();
    w.set_durability(Durability::None).unwrap();
    w.open_table(ROWS)
        .unwrap()
        .insert(u64::MAX, &[2u8; 10][..])
        .unwrap();
    w.commit().unwrap();
    each
}
