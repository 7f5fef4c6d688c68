"""Per-file breakdown of a strace log for scripts/profile-small.

  strace_files.py LOG FILES THREADS_FILE

LOG is `strace -f -T -o LOG` of the daemon; FILES how many uploads it took; THREADS_FILE
lines of "TID NAME" (the daemon's threads, read from /proc when the trace began); threads
started later are named by their own prctl(PR_SET_NAME) in the trace. Prints, per thread
kind, the system calls per file, and for the calls that wait on the disk (fsync, fdatasync,
the directory operations) the time spent in them per file.
"""
import collections
import re
import sys

LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)(?:\(| resumed>)(.*?)(?: <([\d.]+)>)?$")
DISK = {"fsync", "fdatasync", "openat", "renameat2", "rename", "linkat", "link", "unlinkat",
        "unlink", "mkdirat", "rmdir", "ftruncate", "fallocate", "pwrite64", "write", "sync_file_range"}


def kind(name):
    """Threads of one job share a kind: ftpgate-recv-3 and ftpgate-recv-9 are 'ftpgate-recv'."""
    name = re.sub(r"[-_]?\d+$", "", name.strip())
    return name or "?"


def main(log, files, threads_file):
    files = int(files)
    names = {}
    for line in open(threads_file):
        tid, _, name = line.strip().partition(" ")
        if tid:
            names[tid] = kind(name)
    calls = collections.Counter()
    secs = collections.Counter()
    for line in open(log, errors="replace"):
        if "unfinished ...>" in line or " +++ " in line or " --- " in line:
            continue
        m = LINE.match(line)
        if not m:
            continue
        tid, call, args, took = m.groups()
        if call == "prctl" and "PR_SET_NAME" in args:
            # A thread started during the run names itself.
            names[tid] = kind(args.split('"')[1] if '"' in args else "?")
        who = names.get(tid, "ftpgate (other)")
        calls[(who, call)] += 1
        if took and call in DISK:
            secs[(who, call)] += float(took)
    by_thread = collections.defaultdict(list)
    for (who, call), n in calls.items():
        by_thread[who].append((n, call))
    print(f"{'thread':<22}{'call':<18}{'per file':>10}{'ms per file':>13}")
    for who in sorted(by_thread, key=lambda w: -sum(n for n, _ in by_thread[w])):
        rows = sorted(by_thread[who], reverse=True)
        total = sum(n for n, _ in rows)
        print(f"{who:<22}{'(all)':<18}{total / files:>10.1f}")
        for n, call in rows:
            if n / files < 0.05:
                continue
            ms = secs.get((who, call))
            ms = f"{ms * 1000 / files:>13.3f}" if ms else ""
            print(f"{'':<22}{call:<18}{n / files:>10.2f}{ms}")


if __name__ == "__main__":
    main(*sys.argv[1:])
