#!/usr/bin/env python3
"""Opens N keep-alive connections to a server, sends one request on each (headers given), reads
every answer, then holds all of them open and idle while it samples the server's resident memory
(VmRSS from /proc/PID/status). Standard library only.

Prints `IDLE rss_before_kib=.. rss_idle_kib=.. anon_kib=.. file_kib=.. hwm_kib=.. open=.. ok=..`; exits non-zero when a
connection fails or an answer is not 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"idle_conns.py: no {field} in /proc/{pid}/status")


async def one(host: str, port: int, request: bytes, answered: list[int], hold: asyncio.Event,
              sem: asyncio.Semaphore):
    async with sem:  # at most 100 connections opening at once (the listen backlog)
        return await _one(host, port, request, answered, hold)


async def _one(host: str, port: int, request: bytes, answered: list[int], hold: asyncio.Event):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
        if k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    answered[0] += 1
    return reader, writer, status


async def held(host, port, request, answered, hold, sem):
    reader, writer, status = await one(host, port, request, answered, hold, sem)
    await hold.wait()
    writer.close()
    return status


async def main_async(args) -> int:
    headers = "".join(f"{h}\r\n" for h in args.header)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n{headers}"
               "Connection: keep-alive\r\n\r\n").encode()
    before = status_kib(args.pid, "VmRSS")
    hold = asyncio.Event()
    answered = [0]
    sem = asyncio.Semaphore(100)
    tasks = [asyncio.create_task(held(args.host, args.port, request, answered, hold, sem))
             for _ in range(args.connections)]
    deadline = time.monotonic() + args.timeout
    # wait until every connection got its answer (each task then blocks on `hold`)
    while True:
        await asyncio.sleep(0.2)
        failed = [t for t in tasks if t.done()]
        if failed:
            for t in failed:
                if t.exception():
                    print(f"idle_conns.py: a connection failed: {t.exception()!r}", file=sys.stderr)
                    hold.set()
                    return 1
        if answered[0] >= args.connections:
            break
        if time.monotonic() > deadline:
            print(f"idle_conns.py: only {answered[0]} of {args.connections} answered in "
                  f"{args.timeout}s", file=sys.stderr)
            hold.set()
            return 1
    await asyncio.sleep(args.settle)
    samples = []
    for _ in range(5):
        samples.append(status_kib(args.pid, "VmRSS"))
        await asyncio.sleep(0.2)
    idle = max(samples)
    hwm = status_kib(args.pid, "VmHWM")
    anon = status_kib(args.pid, "RssAnon")
    file_ = status_kib(args.pid, "RssFile")
    conns = open_connections(args.pid)
    hold.set()
    statuses = await asyncio.gather(*tasks, return_exceptions=True)
    ok = sum(1 for s in statuses if isinstance(s, int) and 200 <= s < 300)
    print(f"IDLE rss_before_kib={before} rss_idle_kib={idle} anon_kib={anon} file_kib={file_} "
          f"hwm_kib={hwm} open={conns} ok={ok} of={args.connections}")
    if ok != args.connections:
        bad = [s for s in statuses if not (isinstance(s, int) and 200 <= s < 300)][:5]
        print(f"idle_conns.py: {args.connections - ok} connections had no 2xx answer: {bad}",
              file=sys.stderr)
        return 1
    return 0


def open_connections(pid: int) -> int:
    """Established TCP sockets the server holds (counted from its fd table)."""
    import os
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return 0
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server process to sample")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--path", default="/")
    ap.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds idle before sampling")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
