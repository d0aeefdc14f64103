"""Real third-party servers for the e2e suites, each private to the test run: a free loopback
port, its files in a temporary folder, stopped at the end. The machine's own instances (if any)
are never used. `cargo xtask test` installs the Debian packages.

- `RedisServer`: redis-server with append-only persistence (a restart keeps the data).
- `Nginx`: nginx as a round-robin load balancer in front of some loopback servers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from easyauth_e2e import ARTIFACTS, free_port


def _binary(name: str, *candidates: str, package: str) -> str:
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"`{name}` is not installed: install the Debian package `{package}` "
                           "(cargo xtask test does)")
    return found


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} after {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


class RedisServer:
    def __init__(self, workdir: Path):
        self.binary = _binary("redis-server", "/usr/bin/redis-server", package="redis-server")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def start(self) -> "RedisServer":
        assert self.proc is None
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _wait_listening(self.port, self.proc, self.log_path)
        return self

    def stop(self) -> None:
        """SIGKILL: what persisted is what the append-only file had."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


class Nginx:
    """nginx (master and workers, as deployed) balancing round-robin over `upstreams`
    (`host:port`), passing the request's Host on, so each upstream sees the site the browser
    used."""

    def __init__(self, workdir: Path, upstreams: list[str], *, port: int | None = None):
        self.binary = _binary("nginx", "/usr/sbin/nginx", package="nginx")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.port = port or free_port()
        self.upstreams = upstreams
        self.proc: subprocess.Popen | None = None
        self.log_path = ARTIFACTS / f"nginx-{self.port}.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.dir / "logs" / "access.log"

    def config(self) -> str:
        servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=5s;" for u in self.upstreams)
        return f"""
daemon off;
worker_processes 2;
pid {self.dir}/nginx.pid;
error_log {self.log_path} info;
events {{ worker_connections 1024; }}
http {{
    access_log {self.access_log} combined;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    upstream replicas {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""

    def start(self) -> "Nginx":
        assert self.proc is None
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "-p", str(self.dir), "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _wait_listening(self.port, self.proc, self.log_path)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
