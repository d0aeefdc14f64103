"""The identity provider refuses oversized forms and parameter floods at once, in Entra's error
shape, and keeps answering everyone else meanwhile (parsing is linear and bounded)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import requests

from easyauth_e2e import IdpServer, World, describe

LIMIT = 64 * 1024


def tls_socket(idp: IdpServer) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(idp.ca_path))
    raw = socket.create_connection(("127.0.0.1", idp.port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_response(sock: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def assert_entra_413(status: int, body: bytes) -> None:
    assert status == 413, (status, body[:300])
    err = json.loads(body)
    assert err["error"] == "invalid_request" and err["error_codes"] == [90015], err
    assert err["error_description"].startswith("AADSTS90015:"), err


def test_a_declared_oversized_body_is_refused_before_it_is_sent(idp: IdpServer, world: World):
    sock = tls_socket(idp)
    try:
        path = f"/{world.tenant_id}/oauth2/v2.0/token"
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {idp.host}\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode() + b"a=" + b"x" * 1024)
        status, _, body = read_response(sock)
        assert_entra_413(status, body)
    finally:
        sock.close()


def test_a_parameter_flood_is_refused_while_others_are_served(idp: IdpServer, world: World):
    """Two 1.4 MB bodies of 180,000 distinct empty parameters (the quadratic-parsing attack) at
    once: both are refused from their declared size, and discovery is answered meanwhile."""
    flood = "&".join(f"p{i}" for i in range(180_000)).encode()
    results: list[tuple[int, bytes]] = []

    def post() -> None:
        sock = tls_socket(idp)
        try:
            sock.sendall((f"POST /{world.tenant_id}/oauth2/v2.0/token HTTP/1.1\r\nHost: {idp.host}\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n"
                          f"Content-Length: {len(flood)}\r\n\r\n").encode() + flood[:4096])
            status, _, body = read_response(sock)
            results.append((status, body))
        finally:
            sock.close()

    floods = [threading.Thread(target=post) for _ in range(2)]
    for t in floods:
        t.start()
    discovery = requests.get(idp.discovery_url(), timeout=30)
    for t in floods:
        t.join(60)
    assert discovery.status_code == 200, describe(discovery)
    assert len(results) == 2
    for status, body in results:
        assert_entra_413(status, body)
    # Under the size limit but with too many parameters: 400, the same code.
    many = "&".join(f"p{i}" for i in range(5_000))
    r = requests.post(idp.token_endpoint, data=many, timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error_codes"] == [90015], describe(r)


def test_a_slow_oversized_upload_is_cut_off_and_does_not_stall_the_server(idp: IdpServer, world: World):
    """A chunked body trickles in; the server keeps answering others, and refuses the upload as
    soon as it passes the limit, without waiting for the rest."""
    sock = tls_socket(idp)
    answered = threading.Event()
    outcome: dict[str, object] = {}

    def trickle() -> None:
        sent = 0
        try:
            sock.sendall((f"POST /{world.tenant_id}/oauth2/v2.0/token HTTP/1.1\r\nHost: {idp.host}\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n").encode())
            while sent < 4 * LIMIT and not answered.is_set():
                chunk = b"a" * 1024
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                time.sleep(0.05)
        except OSError:
            pass
        outcome["sent"] = sent

    t = threading.Thread(target=trickle)
    t.start()
    # While it trickles, the server answers other clients.
    served_during = []
    for _ in range(3):
        served_during.append(requests.get(idp.discovery_url(), timeout=30).status_code)
    uploading = t.is_alive()
    status, _, body = read_response(sock)
    answered.set()
    t.join(30)
    sock.close()
    assert uploading, "the upload finished before the other requests were answered"
    assert served_during == [200, 200, 200]
    assert_entra_413(status, body)
    assert int(outcome["sent"]) < 4 * LIMIT, outcome
