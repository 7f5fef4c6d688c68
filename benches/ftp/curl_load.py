"""Runs Debian's curl as SESSIONS devices would and times them (scripts/bench-peers).

  curl_load.py URL SESSIONS MODE FILE...

URL ends in '/'; each session uploads every FILE under its own name, NAME_PREFIX-sS-I
(NAME_PREFIX from the environment: a round's names must be new to anonymous servers). MODE is `one`
(one curl, one connection, every file: `curl -T "{f1,f2,...}"`, EPSV), `one-pasv` (the
same with PASV) or `per-file` (one curl, so one connection and login, per file). Extra
curl options come from CURL_OPTS (FTPS: "--ssl-reqd -k"). Prints files/s and the curl
processes' CPU per file (this script only waits).
"""
import os, resource, shlex, subprocess, sys, tempfile, time

url, sessions, mode, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
opts = shlex.split(os.environ.get("CURL_OPTS", "")) + ["-sS", "--fail"]
if mode == "one-pasv":
    opts.append("--disable-epsv")

prefix = os.environ.get("NAME_PREFIX", "f")
# Each session's files get their own names (anonymous servers do not overwrite).
links = tempfile.mkdtemp(prefix="curl-load.")
names = []
for s in range(sessions):
    mine = []
    for i, f in enumerate(files):
        name = os.path.join(links, f"{prefix}-s{s}-{i}.bin")
        os.symlink(os.path.abspath(f), name)
        mine.append(name)
    names.append(mine)


def session_cmds(mine):
    if mode in ("one", "one-pasv"):
        return [["curl", *opts, "-T", "{" + ",".join(mine) + "}", url]]
    return [["curl", *opts, "-T", f, url] for f in mine]


before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
# One shell per session runs its curl commands one after another.
procs = [
    subprocess.Popen(["sh", "-c", " && ".join(shlex.join(c) for c in session_cmds(m))])
    for m in names
]
failed = sum(p.wait() != 0 for p in procs)
secs = time.monotonic() - t0
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
n = sessions * len(files)
for d in os.listdir(links):
    os.unlink(os.path.join(links, d))
os.rmdir(links)
print(f"files={n} secs={secs:.3f} files_per_s={n / secs:.0f} client_cpu_us_per_file={cpu * 1e6 / n:.0f} failed_sessions={failed}")
sys.exit(1 if failed else 0)
