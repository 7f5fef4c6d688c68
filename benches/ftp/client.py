"""Load generator for scripts/bench-ftp: the same workloads against any FTP server.

  client.py big HOST PORT USER PASS FILE            one upload, prints MB/s
  client.py many HOST PORT USER PASS SESSIONS FILES SIZE   prints files/s (logins not timed)
  client.py idle HOST PORT USER PASS N RSS_CMD      holds N logged-in sessions, prints RSS_CMD's output

FTP_DIR=dir makes every session change into dir first (vsftpd's anonymous upload dir).
FTP_TLS=1 uses explicit FTPS with PROT P, resuming the control session on data connections.
"""
import ftplib, io, os, ssl, subprocess, sys, threading, time


class ReuseTLS(ftplib.FTP_TLS):
    """FTPS that offers the control session on data connections, as devices that
    resume do (stock ftplib does not)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def connect(host, port, user, pw):
    if os.environ.get("FTP_TLS"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        f = ReuseTLS(context=ctx)
        f.connect(host, int(port), timeout=60)
        f.auth()
        f.login(user, pw)
        f.prot_p()
    else:
        f = ftplib.FTP()
        f.connect(host, int(port), timeout=60)
        f.login(user, pw)
    if os.environ.get("FTP_DIR"):
        f.cwd(os.environ["FTP_DIR"])
    f.voidcmd("TYPE I")
    return f


def big(host, port, user, pw, path):
    f = connect(host, port, user, pw)
    size = os.path.getsize(path)
    t = time.monotonic()
    with open(path, "rb") as src:
        f.storbinary("STOR big.bin", src, blocksize=256 * 1024)
    secs = time.monotonic() - t
    # For a server that does not fsync: the time until the bytes are durable as well.
    if os.environ.get("FSYNC_AFTER"):
        fd = os.open(os.environ["FSYNC_AFTER"], os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        secs = time.monotonic() - t
    f.quit()
    print(f"{size / secs / 1e6:.1f}")


def many(host, port, user, pw, sessions, files, size):
    """Every session logs in first; the clock starts once all have (a login's password
    check is not an upload's cost). With GO_FILE set, the client then creates
    GO_FILE.ready and waits for GO_FILE to exist before it starts (a profiler's cue)."""
    sessions, files, size = int(sessions), int(files), int(size)
    body = os.urandom(size)
    errors = []
    logged_in = threading.Barrier(sessions + 1)

    def worker(n):
        f = None
        try:
            f = connect(host, port, user, pw)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        logged_in.wait()
        if f is None:
            return
        try:
            for i in range(files):
                f.storbinary(f"STOR s{n}-f{i}.bin", io.BytesIO(body))
            f.quit()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(sessions)]
    for th in threads:
        th.start()
    go = os.environ.get("GO_FILE")
    if go:
        open(go + ".ready", "w").close()
        while not os.path.exists(go):
            time.sleep(0.01)
    t = time.monotonic()
    logged_in.wait()
    for th in threads:
        th.join()
    secs = time.monotonic() - t
    if errors:
        sys.exit(f"{len(errors)} sessions failed: {errors[:3]}")
    print(f"{sessions * files / secs:.0f}")


def idle(host, port, user, pw, n, rss_cmd):
    """Prints RSS with one session logged in, then with N: the difference is what
    sessions cost, apart from one-time costs such as the first login."""
    rss = lambda: int(subprocess.run(["sh", "-c", rss_cmd], capture_output=True, text=True, check=True).stdout.strip())
    conns = [connect(host, port, user, pw)]
    time.sleep(0.5)
    one = rss()
    for _ in range(int(n) - 1):
        conns.append(connect(host, port, user, pw))
    time.sleep(1.0)
    print(one, rss())
    for c in conns:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    {"big": big, "many": many, "idle": idle}[sys.argv[1]](*sys.argv[2:])
