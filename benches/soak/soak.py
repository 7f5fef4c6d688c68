"""Soak load for scripts/soak: DEVICES sessions upload files in a loop (connect, log in,
STOR over EPSV, QUIT) from 127.0.0.1 while ABUSERS connections from 127.0.0.2-9 misbehave
(trickle a byte a second and never finish a line; log in and trickle a partial command;
open a passive port and never connect), reconnecting whenever they are closed. Runs for
SECONDS, then everyone leaves. Prints per-minute progress and a summary line:

  SOAK uploads_ok=N uploads_failed=N refused_connects=N abuser_connects=N

  soak.py HOST PORT USER PASS DEVICES ABUSERS SECONDS
"""
import asyncio, os, random, sys, time

host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
devices, abusers, seconds = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
stats = {"uploads_ok": 0, "uploads_failed": 0, "refused_connects": 0, "abuser_connects": 0}
failures = {}
deadline = time.monotonic() + seconds


async def reply(r):
    line = await r.readline()
    if not line:
        raise ConnectionError("closed")
    text = line.decode(errors="replace").rstrip()
    code = text[:3]
    if len(text) > 3 and text[3] == "-":
        while True:
            more = (await r.readline()).decode(errors="replace")
            if not more or more.startswith(code + " "):
                break
    return int(code), text


async def cmd(r, w, line):
    w.write(line.encode() + b"\r\n")
    await w.drain()
    return await reply(r)


async def device(n):
    body = os.urandom(64 * 1024)
    i = 0
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.open_connection(host, port, local_addr=("127.0.0.1", 0))
            code, text = await reply(r)
            if code != 220:
                stats["refused_connects"] += 1
                failures[text] = failures.get(text, 0) + 1
                w.close()
                await asyncio.sleep(1)
                continue
            await cmd(r, w, f"USER {user}")
            code, text = await cmd(r, w, f"PASS {pw}")
            if code != 230:
                raise RuntimeError(text)
            await cmd(r, w, "TYPE I")
            if i == 0:  # its folder (the reply says whether it existed)
                await cmd(r, w, "MKD soak")
                await cmd(r, w, f"MKD soak/d{n}")
            code, text = await cmd(r, w, "EPSV")
            dport = int(text.split("|")[3])
            dr, dw = await asyncio.open_connection(host, dport)
            code, text = await cmd(r, w, f"STOR soak/d{n}/f{i}.bin")
            if code != 150:
                raise RuntimeError(text)
            dw.write(body)
            await dw.drain()
            dw.close()
            code, text = await reply(r)
            if code == 226:
                stats["uploads_ok"] += 1
            else:
                raise RuntimeError(text)
            await cmd(r, w, "QUIT")
            w.close()
            i += 1
        except Exception as e:  # a device reports and tries again
            stats["uploads_failed"] += 1
            key = str(e)[:80]
            failures[key] = failures.get(key, 0) + 1
        await asyncio.sleep(random.uniform(0.2, 2.0))


async def abuser(n):
    src = f"127.0.0.{2 + n % 8}"
    kind = n % 3
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.open_connection(host, port, local_addr=(src, 0))
            stats["abuser_connects"] += 1
            await reply(r)
            if kind == 1:  # logs in, then never finishes a line
                await cmd(r, w, f"USER {user}")
                await cmd(r, w, f"PASS {pw}")
            elif kind == 2:  # logs in, opens a passive port, never connects
                await cmd(r, w, f"USER {user}")
                await cmd(r, w, f"PASS {pw}")
                await cmd(r, w, "EPSV")
                w.write(b"STOR never.bin\r\n")
                await w.drain()
            while time.monotonic() < deadline:
                w.write(b"N")
                await w.drain()
                try:
                    data = await asyncio.wait_for(r.read(512), timeout=1.0)
                    if not data:
                        break
                except asyncio.TimeoutError:
                    pass
            w.close()
        except Exception:
            await asyncio.sleep(0.5)


async def progress():
    start = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(max(0.0, min(60, deadline - time.monotonic())))
        print(f"  {time.monotonic() - start:5.0f}s {stats}", flush=True)


async def main():
    tasks = [device(n) for n in range(devices)] + [abuser(n) for n in range(abusers)]
    await asyncio.gather(progress(), *tasks)


asyncio.run(main())
for k, v in sorted(failures.items(), key=lambda kv: -kv[1])[:5]:
    print(f"  failure x{v}: {k}")
print("SOAK " + " ".join(f"{k}={v}" for k, v in stats.items()))
