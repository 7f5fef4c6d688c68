"""Prints one cell of scripts/bench-peers' results: medians per server, and ftpgate's
ratio to the fastest peer.

  peers_table.py RESULTS.tsv SIZE SESSIONS MODE TLS CLIENT
"""
import csv, statistics, sys

path, size, sessions, mode, tls, client = sys.argv[1:]
rows = [r for r in csv.DictReader(open(path), delimiter="\t")
        if (r["size"], r["sessions"], r["mode"], r["tls"], r["client"]) == (size, sessions, mode, tls, client)]
servers = list(dict.fromkeys(r["server"] for r in rows))
label = {"one": "one connection, EPSV", "one-pasv": "one connection, PASV", "per-file": "a connection per file"}
print(f"\n{int(size) // 1024} KiB x {sessions} session(s), {label.get(mode, mode)}, {tls}, {client}")
print(f"  {'server':<10} {'files/s':>8} {'(min-max)':>13} {'server us/file':>15} {'client us/file':>15}  failed")
medians = {}
for s in servers:
    mine = [r for r in rows if r["server"] == s]
    ok = [r for r in mine if r["files_per_s"] != "failed"]
    if not ok:
        print(f"  {s:<10} {'-':>8} {'':>13} {'-':>15} {'-':>15}  {len(mine)}")
        continue
    fps = [float(r["files_per_s"]) for r in ok]
    medians[s] = statistics.median(fps)
    scpu = statistics.median(float(r["server_cpu_us"]) for r in ok)
    ccpu = statistics.median(float(r["client_cpu_us"]) for r in ok)
    spread = f"({min(fps):.0f}-{max(fps):.0f})"
    print(f"  {s:<10} {medians[s]:>8.0f} {spread:>13} {scpu:>15.0f} {ccpu:>15.0f}  {len(mine) - len(ok)}")
peers = {s: m for s, m in medians.items() if s != "ftpgate"}
if "ftpgate" in medians and peers:
    best = max(peers, key=peers.get)
    print(f"  ftpgate / fastest peer ({best}): {medians['ftpgate'] / peers[best]:.2f}")
