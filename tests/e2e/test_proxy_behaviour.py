"""`easyauth proxy` request handling: unauthenticated actions, CORS preflight, the CSRF rule,
streaming (SSE, WebSocket), upstream errors (502/504) and large uploads."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time

import pytest
import requests

from easyauth_e2e import World, describe, free_port
from proxy_e2e import (
    API_UA,
    BROWSER_UA,
    ProxyBrowser,
    ProxyFactory,
    ProxyIdp,
    ProxyServer,
    aad_settings,
    auth_headers,
    raw_request,
    require_echo,
    sign_in_alice_via,
)

pytestmark = pytest.mark.proxy

import sys  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "apps"))
from echo_app import read_ws_frame, ws_frame  # noqa: E402


@pytest.fixture(scope="module")
def action_proxy(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    def get(action: str) -> ProxyServer:
        return proxies.shared(f"action-{action}", lambda: proxies.start(
            f"action-{action}", aad_settings(proxy_idp, world, action=action)))
    return get


@pytest.mark.parametrize("action,status", [("Return401", 401), ("Return403", 403), ("Return404", 404)])
def test_rejecting_actions(action_proxy, action: str, status: int):
    p = action_proxy(action)
    for ua in (BROWSER_UA, API_UA):
        r = requests.get(p.url("/page"), headers={"User-Agent": ua}, allow_redirects=False, timeout=30)
        assert r.status_code == status, f"{action} with UA {ua!r}:\n{describe(r)}"
        assert "headers" not in r.text, "the app answered"
    if status == 401:
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), describe(r)
    else:
        assert "WWW-Authenticate" not in r.headers, describe(r)


def test_redirect_to_login_page_action(frontend: ProxyServer, proxy_idp: ProxyIdp):
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(frontend.url("/page?a=1"))
    assert r.status_code == 302, describe(r)
    loc = r.headers["Location"]
    assert "/.auth/login/aad" in loc or loc.startswith(proxy_idp.base), loc
    r = requests.get(frontend.url("/page"), headers={"User-Agent": API_UA}, allow_redirects=False, timeout=30)
    assert r.status_code == 401, describe(r)
    r = b.get(frontend.url("/page"), headers={"X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 401, describe(r)


def test_allow_anonymous_action(anonymous_proxy: ProxyServer):
    for ua in (BROWSER_UA, API_UA):
        r = requests.get(anonymous_proxy.url("/page"), headers={"User-Agent": ua}, allow_redirects=False,
                         timeout=30)
        echo = require_echo(r, "AllowAnonymous")
        assert auth_headers(echo) == {}, echo


def test_allow_anonymous_with_a_signed_in_user_still_gets_identity(anonymous_proxy: ProxyServer,
                                                                   proxy_idp: ProxyIdp, world: World):
    """AllowAnonymous: a request with valid credentials still gets the identity headers."""
    from proxy_e2e import app_token
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret,
                      f"{world.backend.identifier_uri}/.default")
    r = requests.get(anonymous_proxy.url("/page"), headers={"User-Agent": API_UA,
                                                             "Authorization": f"Bearer {token}"}, timeout=30)
    echo = require_echo(r, "AllowAnonymous with a bearer")
    assert echo["headers"].get("x-ms-client-principal-idp") == "aad", auth_headers(echo)


def test_forwarded_headers(anonymous_proxy: ProxyServer):
    r = requests.get(anonymous_proxy.url("/fwd?x=%20y"), headers={"User-Agent": API_UA,
                                                                   "X-Forwarded-Host": "evil.test"}, timeout=30)
    echo = require_echo(r)
    h = echo["headers"]
    assert echo["query"] == "x=%20y", echo
    assert h.get("x-forwarded-proto") == "http", h
    assert "127.0.0.1" in h.get("x-forwarded-for", ""), h
    assert "evil.test" not in h.get("x-forwarded-host", ""), \
        f"a client's X-Forwarded-Host was believed without forwardProxy: {h}"


# --------------------------------------------------------------------------------------------
# CORS preflight and CSRF


def test_cors_preflight_reaches_the_app_without_auth(frontend: ProxyServer):
    headers = {"User-Agent": BROWSER_UA, "Origin": "https://spa.test",
               "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    r = requests.options(frontend.url("/api/items"), headers=headers, allow_redirects=False, timeout=30)
    echo = require_echo(r, "CORS preflight")
    assert echo["method"] == "OPTIONS" and echo["path"] == "/api/items", echo
    assert auth_headers(echo) == {}, echo
    # an OPTIONS that is not a preflight is authenticated like anything else
    r = requests.options(frontend.url("/api/items"), headers={"User-Agent": API_UA}, allow_redirects=False,
                         timeout=30)
    assert r.status_code == 401, describe(r)


@pytest.fixture(scope="module")
def alice(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    return sign_in_alice_via(frontend, proxy_idp, world)


def test_csrf_cross_site_post_is_403(frontend: ProxyServer, alice):
    b = alice.browser
    # `Connection: close`: see test_csrf_refusal_keeps_the_connection_usable for why
    close = {"Connection": "close", "Content-Type": "application/x-www-form-urlencoded"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = b.request(method, frontend.url("/submit"), data=b"x=1", headers={"Origin": "https://evil.test", **close})
        assert r.status_code == 403, f"{method} from https://evil.test:\n{describe(r)}"
    r = b.request("POST", frontend.url("/submit"), data=b"x=1", headers={"Referer": "https://evil.test/page", **close})
    assert r.status_code == 403, f"POST with a cross-site Referer:\n{describe(r)}"
    r = b.request("POST", frontend.url("/submit"), data=b"x=1",
                  headers={"Origin": f"http://127.0.0.1:{frontend.port + 1}", **close})
    assert r.status_code == 403, f"another port is another origin:\n{describe(r)}"
    for origin in ("null", f"https://127.0.0.1:{frontend.port}", f"http://127.0.0.1:{frontend.port}.evil.test",
                   f"http://127.0.0.1:{frontend.port}@evil.test", f"http://localhost:{frontend.port}"):
        r = b.request("POST", frontend.url("/submit"), data=b"x=1", headers={"Origin": origin, **close})
        assert r.status_code == 403, f"Origin {origin}:\n{describe(r)}"
    # a same-site Referer does not excuse a cross-site Origin
    r = b.request("POST", frontend.url("/submit"), data=b"x=1",
                  headers={"Origin": "https://evil.test", "Referer": frontend.url("/form"), **close})
    assert r.status_code == 403, f"cross-site Origin with a same-site Referer:\n{describe(r)}"
    # a Referer that merely starts with the site's origin
    r = b.request("POST", frontend.url("/submit"), data=b"x=1",
                  headers={"Referer": f"{frontend.base}.evil.test/x", **close})
    assert r.status_code == 403, f"Referer {frontend.base}.evil.test:\n{describe(r)}"


def test_csrf_refusal_keeps_the_connection_usable(frontend: ProxyServer, alice):
    """A refusal sent before the request body arrived (the client sends the headers, then the
    body, as http.client and browsers do) must either keep the keep-alive connection usable or
    announce `Connection: close`; closing it silently makes the client's next request on it fail
    (requests: RemoteDisconnected)."""
    cookie = "; ".join(f"{k}={v}" for k, v in alice.browser.session_cookies().items())
    outcomes = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", frontend.port), timeout=5)
        try:
            sock.sendall((f"POST /submit HTTP/1.1\r\nHost: {frontend.host}\r\nUser-Agent: {BROWSER_UA}\r\n"
                          f"Origin: https://evil.test\r\nCookie: {cookie}\r\nContent-Type: text/plain\r\n"
                          f"Content-Length: 3\r\n\r\n").encode())
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 403"), first[:200]
            announced = b"\r\nconnection: close" in first.lower()
            try:
                sock.sendall(b"x=1" + f"GET /next HTTP/1.1\r\nHost: {frontend.host}\r\nUser-Agent: {API_UA}\r\n\r\n"
                             .encode())
                second = sock.recv(65536)
            except OSError as e:
                second = repr(e).encode()
            usable = second.startswith(b"HTTP/1.1 ")
            outcomes.append((announced, usable, second[:60]))
        finally:
            sock.close()
    bad = [o for o in outcomes if not o[0] and not o[1]]
    assert not bad, ("after the 403 the connection was closed without `Connection: close` "
                     f"(announced, next request answered, next answer): {outcomes}")


def test_csrf_post_without_origin_or_referer_is_403(frontend: ProxyServer, alice):
    r = alice.browser.request("POST", frontend.url("/submit"), data=b"x=1")
    assert r.status_code == 403, describe(r)


def test_csrf_same_origin_post_passes(frontend: ProxyServer, alice, world: World):
    b = alice.browser
    r = b.request("POST", frontend.url("/submit"), data=b"x=1", headers={"Origin": frontend.base})
    echo = require_echo(r, "same-origin POST")
    assert echo["method"] == "POST" and echo["body_len"] == 3, echo
    assert echo["headers"].get("x-ms-client-principal-name") == world.alice.upn
    r = b.request("POST", frontend.url("/submit"), data=b"x=1", headers={"Referer": frontend.url("/form")})
    require_echo(r, "same-origin Referer")
    # GET from another origin is not a CSRF concern
    require_echo(b.get(frontend.url("/page"), headers={"Origin": "https://evil.test"}), "cross-site GET")


def test_csrf_non_browser_with_cookie_passes(frontend: ProxyServer, alice):
    r = requests.post(frontend.url("/submit"), data=b"x=1", cookies=alice.browser.session_cookies(),
                      headers={"User-Agent": API_UA, "Origin": "https://evil.test"}, allow_redirects=False,
                      timeout=30)
    require_echo(r, "non-browser POST with the cookie")


# --------------------------------------------------------------------------------------------
# Streaming


def test_sse_events_are_streamed(anonymous_proxy: ProxyServer):
    r = requests.get(anonymous_proxy.url("/sse"), headers={"User-Agent": API_UA, "Accept": "text/event-stream"},
                     stream=True, timeout=30)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("Content-Type", "").startswith("text/event-stream"), r.headers
    events: list[tuple[str, float]] = []  # (data, client arrival time)
    buf = b""
    for chunk in r.iter_content(chunk_size=None):
        buf += chunk
        while b"\n\n" in buf:
            raw, buf = buf.split(b"\n\n", 1)
            data = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
            events.append((data[0], time.time()))
    assert [e[0].rsplit(" ", 1)[0] for e in events] == ["event 0", "event 1", "event 2"], events
    sent_last = float(events[2][0].rsplit(" ", 1)[1])
    arrived_first = events[0][1]
    assert arrived_first < sent_last, \
        f"the first event arrived only after the app sent the last one (buffered): {events}"


def _ws_handshake(port: int, path: str, headers: dict[str, str]) -> tuple[socket.socket, bytes]:
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return s, head


def test_websocket_is_proxied(anonymous_proxy: ProxyServer):
    s, head = _ws_handshake(anonymous_proxy.port, "/ws", {"User-Agent": API_UA, "Origin": anonymous_proxy.base})
    try:
        status = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status + b" ", f"no WebSocket upgrade through the proxy: {head[:500]!r}"
        head_part, rest = head.split(b"\r\n\r\n", 1)
        rfile = s.makefile("rb")
        s.sendall(ws_frame(0x1, b"hello through easyauth", mask=True))
        frame = read_ws_frame(_Prefixed(rest, rfile))
        assert frame == (0x1, b"hello through easyauth"), frame
        s.sendall(ws_frame(0x8, b"\x03\xe8", mask=True))
    finally:
        s.close()


def test_websocket_requires_auth_when_protected(frontend: ProxyServer):
    s, head = _ws_handshake(frontend.port, "/ws", {"User-Agent": API_UA})
    s.close()
    assert head.startswith(b"HTTP/1.1 401"), head[:300]


class _Prefixed:
    """A file-like reader that first returns bytes already received with the handshake."""

    def __init__(self, prefix: bytes, rfile):
        self.prefix, self.rfile = prefix, rfile

    def read(self, n: int) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return self.rfile.read(n)


# --------------------------------------------------------------------------------------------
# Upstream errors and large bodies


def test_upstream_down_is_502(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    dead = free_port()
    p = proxies.shared("upstream-down", lambda: proxies.start(
        "upstream-down", aad_settings(proxy_idp, world, action="AllowAnonymous", require=False),
        upstream=f"http://127.0.0.1:{dead}"))
    r = requests.get(p.url("/page"), headers={"User-Agent": API_UA}, timeout=30)
    assert r.status_code == 502, describe(r)
    # the module's own routes still work
    assert requests.get(p.url("/.auth/version"), timeout=10).status_code == 200


def test_slow_upstream_is_504(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    p = proxies.shared("upstream-timeout", lambda: proxies.start(
        "upstream-timeout", aad_settings(proxy_idp, world, action="AllowAnonymous", require=False),
        upstream_timeout=1))
    start = time.monotonic()
    r = requests.get(p.url("/slow"), headers={"User-Agent": API_UA}, timeout=30)
    elapsed = time.monotonic() - start
    assert r.status_code == 504, describe(r)
    assert elapsed < 2.9, f"the 504 came after {elapsed:.1f}s, not after the 1 s upstream timeout"
    # a fast request through the same proxy is fine
    require_echo(requests.get(p.url("/fast"), headers={"User-Agent": API_UA}, timeout=30))


def test_large_upload_reaches_the_app_intact(anonymous_proxy: ProxyServer):
    body = os.urandom(20 * 1024 * 1024)
    r = requests.post(anonymous_proxy.url("/upload"), data=body,
                      headers={"User-Agent": API_UA, "Content-Type": "application/octet-stream"}, timeout=60)
    echo = require_echo(r, "20 MB upload")
    assert echo["body_len"] == len(body), echo
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo


def test_chunked_upload_reaches_the_app_intact(anonymous_proxy: ProxyServer):
    parts = [os.urandom(256 * 1024) for _ in range(8)]
    r = requests.post(anonymous_proxy.url("/upload"), data=iter(parts),
                      headers={"User-Agent": API_UA, "Content-Type": "application/octet-stream"}, timeout=60)
    echo = require_echo(r, "chunked upload")
    assert echo["body_len"] == sum(map(len, parts)), echo
    assert echo["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest(), echo


def test_raw_path_and_query_are_forwarded_unchanged(anonymous_proxy: ProxyServer):
    r = raw_request(anonymous_proxy.port, "GET", "/a%2Fb/c%20d?q=%2F&x=1&x=2", {"User-Agent": API_UA})
    echo = r.echo()
    assert echo is not None, r
    assert echo["raw_target"] == "/a%2Fb/c%20d?q=%2F&x=1&x=2", echo["raw_target"]


def test_websocket_with_a_session_cookie_carries_the_identity(frontend: ProxyServer, alice, world: World):
    cookie = "; ".join(f"{k}={v}" for k, v in alice.browser.session_cookies().items())
    s, head = _ws_handshake(frontend.port, "/ws", {"User-Agent": BROWSER_UA, "Origin": frontend.base,
                                                   "Cookie": cookie,
                                                   "X-MS-CLIENT-PRINCIPAL-NAME": "mallory-spoofed"})
    try:
        assert head.startswith(b"HTTP/1.1 101"), head[:300]
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:])}
        assert headers.get("x-echo-principal-name") == world.alice.upn, headers
        rest = head.split(b"\r\n\r\n", 1)[1]
        s.sendall(ws_frame(0x1, b"ping", mask=True))
        assert read_ws_frame(_Prefixed(rest, s.makefile("rb"))) == (0x1, b"ping")
    finally:
        s.close()


def test_client_supplied_front_end_headers_do_not_reach_the_app(anonymous_proxy: ProxyServer):
    spoof = {"Forwarded": "for=1.2.3.4;host=evil.test;proto=https", "X-Original-URL": "/admin",
             "X-Rewrite-URL": "/admin", "Client-IP": "1.2.3.4", "X-Client-IP": "1.2.3.4", "X-ARR-SSL": "spoofed",
             "X-WAWS-Unencoded-URL": "/admin", "X-Original-Host": "evil.test"}
    echo = raw_request(anonymous_proxy.port, "GET", "/page", {"User-Agent": API_UA, **spoof}).echo()
    assert echo is not None
    passed = {k: v for k, v in echo["headers"].items() if k in {n.lower() for n in spoof} and v == spoof[
        next(n for n in spoof if n.lower() == k)]}
    assert not passed, f"client-supplied front-end headers reached the app: {passed}"
