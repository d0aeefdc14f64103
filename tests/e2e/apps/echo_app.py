"""Upstream test app for `easyauth proxy` (Python stdlib only).

    python echo_app.py --port N

Every request is answered with JSON
`{"method", "path", "query", "headers": {lower-cased name: values joined with ", "}, "body_len",
"body_sha256"}`, except:

- `/sse`: 3 server-sent events 300 ms apart (chunked), `data: event <i> <unix time>`;
- `/ws`: a WebSocket (RFC 6455) that echoes text/binary frames back until closed;
- `/slow`: sleeps 3 s, then the JSON echo.

Bodies are read whatever the path (Content-Length or chunked), so `/upload` counts a large body.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo-app/1"

    def log_message(self, fmt: str, *args) -> None:  # keep the test output quiet
        sys.stderr.write("echo: " + (fmt % args) + "\n")

    # ------------------------------------------------------------------------------------
    def _read_body(self) -> tuple[int, str]:
        h = hashlib.sha256()
        total = 0
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        raise ConnectionError("body truncated")
                    h.update(chunk)
                    total += len(chunk)
                    remaining -= len(chunk)
                self.rfile.readline(3)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    raise ConnectionError("body truncated")
                h.update(chunk)
                total += len(chunk)
                remaining -= len(chunk)
        return total, h.hexdigest()

    def _headers_dict(self) -> dict[str, str]:
        out: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            out.setdefault(name.lower(), []).append(value)
        return {k: ", ".join(v) for k, v in out.items()}

    def _echo(self) -> None:
        body_len, digest = self._read_body()
        u = urlsplit(self.path)
        path = u.path
        if path == "/slow":
            time.sleep(3)
        payload = json.dumps({
            "method": self.command,
            "path": path,
            "raw_target": self.path,
            "query": u.query,
            "headers": self._headers_dict(),
            "body_len": body_len,
            "body_sha256": digest,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _sse(self) -> None:
        self._read_body()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(3):
            if i:
                time.sleep(0.3)
            data = f"id: {i}\ndata: event {i} {time.time():.3f}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _websocket(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key")
        if not key or "websocket" not in (self.headers.get("Upgrade") or "").lower():
            self._echo()
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        # tell the client what identity the proxy forwarded on the upgrade request
        principal = self.headers.get("X-MS-CLIENT-PRINCIPAL-NAME") or ""
        self.send_header("X-Echo-Principal-Name", principal)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = read_ws_frame(self.rfile)
            if frame is None:
                return
            opcode, data = frame
            if opcode == 0x8:  # close
                self.wfile.write(ws_frame(0x8, data[:2]))
                self.wfile.flush()
                return
            if opcode == 0x9:  # ping
                self.wfile.write(ws_frame(0xA, data))
            elif opcode in (0x1, 0x2):
                self.wfile.write(ws_frame(opcode, data))
            self.wfile.flush()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path == "/sse":
                self._sse()
            elif path == "/ws":
                self._websocket()
            else:
                self._echo()
        except (ConnectionError, socket.timeout, BrokenPipeError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch


def read_exact(rfile, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = rfile.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_ws_frame(rfile) -> tuple[int, bytes] | None:
    head = read_exact(rfile, 2)
    if head is None:
        return None
    opcode = head[0] & 0x0F
    masked = head[1] & 0x80
    length = head[1] & 0x7F
    if length == 126:
        ext = read_exact(rfile, 2)
        if ext is None:
            return None
        length = struct.unpack("!H", ext)[0]
    elif length == 127:
        ext = read_exact(rfile, 8)
        if ext is None:
            return None
        length = struct.unpack("!Q", ext)[0]
    mask = read_exact(rfile, 4) if masked else b""
    if masked and mask is None:
        return None
    data = read_exact(rfile, length) if length else b""
    if data is None:
        return None
    if masked:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def ws_frame(opcode: int, data: bytes, mask: bool = False) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(data)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        key = b"\x01\x02\x03\x04"
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return head + data


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    print(f"echo app listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
