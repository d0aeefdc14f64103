"""Attacks on the authentication module found by a trial as an attacker would, each reproduced
against the real `easyauth proxy` with its safe outcome asserted:

- client-directed sign-in with a forged (`alg: none`) ID token and a made-up refresh token;
- an `h2c` upgrade that would turn the connection into a tunnel past the module (against
  hypercorn, an app server that does accept h2c);
- App Service front-end headers (`X-ARR-ClientCert`, ...) forged by a client."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import h2.config
import h2.connection
import h2.events
import pytest
import requests

from easyauth_e2e import ARTIFACTS, World, describe, free_port
from proxy_e2e import (
    API_UA,
    BROWSER_UA,
    ProxyBrowser,
    ProxyFactory,
    ProxyIdp,
    ProxyServer,
    SignedIn,
    aad_settings,
    api_get,
    browser_sign_in,
    raw_request,
    require_echo,
    unsigned_token,
    unverified_claims,
)

pytestmark = pytest.mark.proxy

E2E = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# Client-directed sign-in keeps only tokens it validated


def current_tokens(signed: SignedIn, frontend: ProxyServer) -> dict[str, str]:
    """alice's current access and ID tokens as the front end's app sees them (refreshed when
    the short-lived access token is about to expire)."""
    h = require_echo(signed.browser.get(frontend.url("/page")))["headers"]
    if unverified_claims(h["x-ms-token-aad-access-token"])["exp"] - time.time() < 5:
        r = signed.browser.get(frontend.url("/.auth/refresh"))
        assert r.status_code == 200, describe(r)
        h = require_echo(signed.browser.get(frontend.url("/page")))["headers"]
    return {"access": h["x-ms-token-aad-access-token"], "id": h["x-ms-token-aad-id-token"]}


def client_login(proxy: ProxyServer, body: dict[str, Any]) -> requests.Response:
    return requests.post(proxy.url("/.auth/login/aad"), json=body, headers={"User-Agent": API_UA},
                         timeout=30)


def test_a_forged_id_token_refuses_client_directed_sign_in(frontend: ProxyServer,
                                                           alice_frontend: SignedIn):
    tokens = current_tokens(alice_frontend, frontend)
    claims = unverified_claims(tokens["id"])
    forged = unsigned_token({**claims, "name": "Mallory", "preferred_username": "mallory@evil.test",
                             "roles": ["Admin"]})
    r = client_login(frontend, {"access_token": tokens["access"], "id_token": forged,
                                "refresh_token": "made-up-refresh-token"})
    assert r.status_code == 401, describe(r)
    assert "ID token was rejected" in r.headers.get("x-easyauth-reason", ""), describe(r)
    # An ID token signed by the provider but for another app (audience) is refused too.
    other_app = dict(claims, aud="00000000-0000-0000-0000-000000000000")
    r = client_login(frontend, {"access_token": tokens["access"], "id_token": unsigned_token(other_app)})
    assert r.status_code == 401, describe(r)


def test_an_id_token_of_another_user_refuses_client_directed_sign_in(
        frontend: ProxyServer, alice_frontend: SignedIn, proxy_idp: ProxyIdp, world: World):
    bob = ProxyBrowser(os.environ["SSL_CERT_FILE"])
    si = browser_sign_in(bob, frontend, frontend.url("/bob"), provider_host=proxy_idp.host, user=world.bob)
    assert si.final is not None, si.final_location
    bob_id = require_echo(si.final)["headers"]["x-ms-token-aad-id-token"]
    alice = current_tokens(alice_frontend, frontend)
    r = client_login(frontend, {"access_token": alice["access"], "id_token": bob_id})
    assert r.status_code == 401, describe(r)
    assert "another user" in r.headers.get("x-easyauth-reason", ""), describe(r)


def test_only_validated_tokens_reach_the_app_and_a_posted_refresh_token_never_does(
        frontend: ProxyServer, alice_frontend: SignedIn, world: World):
    tokens = current_tokens(alice_frontend, frontend)
    made_up = "made-up-refresh-token-0123456789"
    r = client_login(frontend, {"access_token": tokens["access"], "id_token": tokens["id"],
                                "refresh_token": made_up})
    assert r.status_code == 200, describe(r)
    zumo = r.json()["authenticationToken"]
    echo = require_echo(api_get(frontend.url("/zumo"), headers={"X-ZUMO-AUTH": zumo}), "X-ZUMO-AUTH")
    h = echo["headers"]
    assert h.get("x-ms-client-principal-name") == world.alice.upn, h
    assert h.get("x-ms-token-aad-access-token") == tokens["access"], h
    assert h.get("x-ms-token-aad-id-token") == tokens["id"], "the validated ID token is kept"
    assert "x-ms-token-aad-refresh-token" not in h, "a client's refresh token is never presented as the platform's"
    assert made_up not in json.dumps(h)
    me = api_get(frontend.url("/.auth/me"), headers={"X-ZUMO-AUTH": zumo})
    assert me.status_code == 200, describe(me)
    assert "refresh_token" not in me.json()[0] and made_up not in me.text, me.json()
    assert me.json()[0]["id_token"] == tokens["id"]
    # /.auth/refresh never sends the made-up token to the provider with the app's secret.
    r = api_get(frontend.url("/.auth/refresh"), headers={"X-ZUMO-AUTH": zumo})
    assert r.status_code == 401, describe(r)
    assert "no refresh token" in r.headers.get("x-easyauth-reason", ""), describe(r)
    assert made_up not in frontend.log_path.read_text(errors="replace")


# --------------------------------------------------------------------------------------------
# Only WebSocket upgrades pass the module


class H2cApp:
    """apps/h2c_app.py: hypercorn, which accepts `Upgrade: h2c`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "H2cApp":
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log = open(ARTIFACTS / f"h2c-app-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(E2E / "apps" / "h2c_app.py"), "--port",
                                      str(self.port)], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"h2c app exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the h2c app did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def h2c_app() -> Iterator[H2cApp]:
    app = H2cApp().start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def h2c_proxy(proxies: ProxyFactory, proxy_idp: ProxyIdp, world: World, h2c_app: H2cApp) -> ProxyServer:
    """The front end's settings (401 for API clients) with /public/* excluded, before hypercorn."""
    return proxies.start("h2c", aad_settings(proxy_idp, world, excluded=["/public/*"]),
                         upstream=h2c_app.url)


FORGED = [("x-ms-client-principal-name", "admin@contoso.onmicrosoft.com"),
          ("x-ms-client-principal-id", "00000000-0000-0000-0000-00000000ad01")]


def recv_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Reads an HTTP/1.1 response head; returns (status, headers, bytes read past the head)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, headers, rest


def h2c_attack(port: int, path: str, authorization: str | None = None) -> dict[str, Any]:
    """Asks for `Upgrade: h2c` on `path`; if the answer is 101, speaks HTTP/2 on the connection
    and sends a second request with forged identity headers (the tunnel attack). Returns what
    happened, including every response body the other end sent."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    settings = conn.initiate_upgrade_connection().decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {API_UA}\r\n"
               f"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {settings}\r\n")
    if authorization:
        request += f"Authorization: {authorization}\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall((request + "\r\n").encode())
        status, headers, rest = recv_head(sock)
        out: dict[str, Any] = {"status": status, "headers": headers, "bodies": {}}
        if status != 101:
            length = int(headers.get("content-length", "0") or 0)
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            out["bodies"][1] = rest[:length]
            # Whatever the proxy did, try the HTTP/2 request on the same connection anyway.
            sock.sendall(conn.data_to_send())
            conn.send_headers(3, [(":method", "GET"), (":path", "/secret"), (":scheme", "http"),
                                  (":authority", f"127.0.0.1:{port}"), *FORGED], end_stream=True)
            sock.sendall(conn.data_to_send())
            try:
                out["after"] = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                out["after"] = b""
            return out
        # 101: the connection is HTTP/2 now; the answer to the upgrade request is stream 1.
        sock.sendall(conn.data_to_send())
        conn.send_headers(3, [(":method", "GET"), (":path", "/secret"), (":scheme", "http"),
                              (":authority", f"127.0.0.1:{port}"), *FORGED], end_stream=True)
        sock.sendall(conn.data_to_send())
        pending = {1, 3}
        if rest:
            pending_events = conn.receive_data(rest)
        else:
            pending_events = []
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            for event in pending_events:
                if isinstance(event, h2.events.DataReceived):
                    out["bodies"][event.stream_id] = out["bodies"].get(event.stream_id, b"") + event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    pending.discard(event.stream_id)
            sock.sendall(conn.data_to_send())
            if not pending:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            pending_events = conn.receive_data(chunk)
        return out
    finally:
        sock.close()


def test_control_the_app_server_accepts_h2c_and_the_tunnel_carries_forged_headers(h2c_app: H2cApp):
    """Straight to hypercorn: the upgrade succeeds and the second (HTTP/2) request arrives with
    whatever headers the client chose. This is what must never happen through the module."""
    out = h2c_attack(h2c_app.port, "/public/x")
    assert out["status"] == 101, out
    second = json.loads(out["bodies"][3])
    assert second["http_version"] == "2" and second["headers"]["x-ms-client-principal-name"] == FORGED[0][1]


@pytest.mark.parametrize("path", ["/public/x", "/protected"])
def test_an_h2c_upgrade_is_never_tunnelled(h2c_proxy: ProxyServer, path: str):
    out = h2c_attack(h2c_proxy.port, path)
    assert out["status"] != 101, out
    if path == "/public/x":
        assert out["status"] == 200, out
        seen = json.loads(out["bodies"][1])
        assert seen["http_version"] == "1.1", seen
        for name in ("upgrade", "http2-settings"):
            assert name not in seen["headers"], f"{name} reached the app: {seen['headers']}"
        assert "upgrade" not in seen["headers"].get("connection", "").lower(), seen["headers"]
    else:
        assert out["status"] == 401, out
    # The HTTP/2 bytes that follow are not a request the app ever sees.
    assert FORGED[0][1].encode() not in out.get("after", b""), out
    log = h2c_proxy.log_path.read_text(errors="replace")
    assert "protocol upgrade other than WebSocket was removed" in log


def test_websocket_upgrades_still_pass(frontend: ProxyServer, alice_frontend: SignedIn):
    """The one protocol the module tunnels (after deciding on the request)."""
    key = base64.b64encode(os.urandom(16)).decode()
    cookie = "; ".join(f"{k}={v}" for k, v in alice_frontend.browser.session_cookies().items())
    sock = socket.create_connection(("127.0.0.1", frontend.port), timeout=10)
    try:
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {frontend.host}\r\nUser-Agent: {BROWSER_UA}\r\n"
                      f"Cookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                      f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n").encode())
        status, headers, _ = recv_head(sock)
        assert status == 101 and headers.get("upgrade", "").lower() == "websocket", (status, headers)
    finally:
        sock.close()


# --------------------------------------------------------------------------------------------
# Headers App Service's front end owns


CLIENT_CERT = base64.b64encode(b"0\x82forged DER certificate").decode()
FRONT_END_SPOOFED = [
    ("X-ARR-ClientCert", CLIENT_CERT),
    ("x-arr-clientcert", CLIENT_CERT),
    ("X_ARR_CLIENTCERT", CLIENT_CERT),
    ("X-ARR-SSL", "forged"),
    ("X-Client-IP", "203.0.113.7"),
    ("X-Client-Port", "4444"),
    ("X-Forwarded-TlsVersion", "forged"),
    ("X-WAWS-Unencoded-URL", "/forged"),
    ("X-Original-URL", "/admin"),
    ("X-Site-Deployment-Id", "forged"),
    ("DISGUISED-HOST", "forged.example"),
    ("WAS-DEFAULT-HOSTNAME", "forged.example"),
]


@pytest.mark.parametrize("name,value", FRONT_END_SPOOFED, ids=[n for n, _ in FRONT_END_SPOOFED])
def test_front_end_headers_from_clients_never_reach_the_app(anonymous_proxy: ProxyServer,
                                                            frontend: ProxyServer,
                                                            alice_frontend: SignedIn,
                                                            name: str, value: str):
    r = raw_request(anonymous_proxy.port, "GET", "/anon", {"User-Agent": API_UA, name: value})
    echo = r.echo()
    assert echo is not None, r
    canonical = name.lower().replace("_", "-")
    assert canonical not in echo["headers"] and name.lower() not in echo["headers"], echo["headers"]
    assert value not in json.dumps(echo["headers"]), echo["headers"]
    signed = require_echo(alice_frontend.browser.get(frontend.url("/cert"), headers={name: value}))
    assert value not in json.dumps(signed["headers"]), signed["headers"]
