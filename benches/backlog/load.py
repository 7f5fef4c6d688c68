"""Upload load for scripts/bench-backlog: SESSIONS logged-in sessions upload FILES files of
SIZE random bytes (names PREFIX/sN/fM) and print the rate per tenth of the run, then the
whole run's rate.

  load.py HOST PORT USER PASS SESSIONS FILES SIZE PREFIX
"""
import ftplib, io, os, sys, threading, time

host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sessions, files, size, prefix = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
done = 0
ends = []  # when each session finished: the run's end, not the progress loop's next tick
lock = threading.Lock()


def session(n, count):
    global done
    f = ftplib.FTP()
    f.connect(host, port, timeout=120)
    f.login(user, pw)
    f.voidcmd("TYPE I")
    d = f"{prefix}-s{n}"
    try:
        f.mkd(d)
    except ftplib.error_perm:
        pass
    for i in range(count):
        f.storbinary(f"STOR {d}/f{i}", io.BytesIO(os.urandom(size)))
        with lock:
            done += 1
    f.quit()
    with lock:
        ends.append(time.monotonic())


per = [files // sessions + (1 if i < files % sessions else 0) for i in range(sessions)]
threads = [threading.Thread(target=session, args=(i, per[i])) for i in range(sessions)]
start = time.monotonic()
for t in threads:
    t.start()
step = max(1, files // 10)
last_n, last_t = 0, start
while any(t.is_alive() for t in threads):
    time.sleep(0.2)
    with lock:
        n = done
    if n - last_n >= step:
        now = time.monotonic()
        print(f"  ingest {n:>9} files  {(n - last_n) / (now - last_t):8.0f} files/s", flush=True)
        last_n, last_t = n, now
for t in threads:
    t.join()
secs = max(ends) - start
print(f"INGEST {files / secs:.0f}")
