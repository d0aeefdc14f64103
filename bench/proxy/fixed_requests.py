#!/usr/bin/env python3
"""A fixed number of GET requests, one after another on one keep-alive connection, for the
instructions-per-request figure of `cargo xtask bench --only proxy` (the server runs under
callgrind, so the client's speed does not matter; the count does). Standard library only.

Exits non-zero at the first answer that is not 2xx or a connection that closes.
Prints `REQUESTS <n>` on success.
"""

from __future__ import annotations

import argparse
import http.client
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--requests", type=int, required=True)
    ap.add_argument("--header", action="append", default=[], help="`Name: value`, repeatable")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    headers = {"User-Agent": "easyauth-bench-callgrind"}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
    for i in range(args.requests):
        conn.request("GET", "/", headers=headers)
        resp = conn.getresponse()
        resp.read()
        if not 200 <= resp.status <= 299:
            print(f"request {i + 1}: status {resp.status}", file=sys.stderr)
            return 1
        if resp.will_close:
            print(f"request {i + 1}: the server closed the connection", file=sys.stderr)
            return 1
    conn.close()
    print(f"REQUESTS {args.requests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
