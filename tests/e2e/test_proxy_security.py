"""Security regressions of `easyauth proxy`: spoofed identity headers, open redirects, forged or
invalid bearer tokens, tampered and replayed session cookies, excludedPaths bypasses."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from easyauth_e2e import World, describe
from proxy_e2e import (
    API_UA,
    BROWSER_UA,
    REDIRECTS,
    ProxyBrowser,
    ProxyFactory,
    ProxyIdp,
    ProxyServer,
    aad_settings,
    api_get,
    app_token,
    assert_on_site,
    auth_headers,
    drive_provider,
    echo_of,
    query_params,
    hs256_token,
    raw_request,
    require_echo,
    sign_in_alice_via,
    unsigned_token,
    unverified_claims,
)

pytestmark = pytest.mark.proxy

# --------------------------------------------------------------------------------------------
# Spoofed identity headers

MALLORY = "mallory-spoofed"
FORGED_PRINCIPAL = base64.b64encode(json.dumps({
    "auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
    "claims": [{"typ": "name", "val": MALLORY}, {"typ": "roles", "val": "Admin"}]}).encode()).decode()

SPOOFED = [
    ("X-MS-CLIENT-PRINCIPAL", FORGED_PRINCIPAL),
    ("x-ms-client-principal-id", MALLORY),
    ("X_MS_CLIENT_PRINCIPAL_NAME", MALLORY),
    ("X-MS-CLIENT-PRINCIPAL-IDP", MALLORY),
    ("x_ms_client_principal", FORGED_PRINCIPAL),
    ("X-Ms-Token-Aad-Access-Token", MALLORY),
    ("x_ms_token_aad_id_token", MALLORY),
    ("X-MS-TOKEN-AAD-REFRESH-TOKEN", MALLORY),
    ("X-MS-TOKEN-AAD-EXPIRES-ON", MALLORY),
    ("x-ms-token-myoidc-access-token", MALLORY),
    ("X-ZUMO-AUTH", MALLORY),
    ("x_zumo_auth", MALLORY),
]
SPOOF_IDS = [name for name, _ in SPOOFED]


def assert_no_spoof(echo: dict, name: str) -> None:
    for k, v in echo["headers"].items():
        assert MALLORY not in v and FORGED_PRINCIPAL not in v, \
            f"spoofed {name} reached the app as {k}: {v!r}"
        assert "_" not in k or not auth_headers({"headers": {k: v}}), \
            f"an underscore spelling reached the app: {k}: {v!r}"


@pytest.mark.parametrize("name,value", SPOOFED, ids=SPOOF_IDS)
def test_spoofed_header_stripped_when_anonymous(anonymous_proxy: ProxyServer, name: str, value: str):
    for ua in (BROWSER_UA, API_UA):
        r = raw_request(anonymous_proxy.port, "GET", "/anon", {"User-Agent": ua, name: value})
        echo = r.echo()
        assert echo is not None, f"AllowAnonymous did not pass the request: {r}"
        assert_no_spoof(echo, name)
        assert auth_headers(echo) == {}, f"identity headers on an anonymous request: {auth_headers(echo)}"


@pytest.mark.parametrize("name,value", SPOOFED, ids=SPOOF_IDS)
def test_spoofed_header_does_not_authenticate(frontend: ProxyServer, name: str, value: str):
    r = raw_request(frontend.port, "GET", "/private", {"User-Agent": API_UA, name: value})
    assert r.status != 200 and r.echo() is None, f"{name} alone got through: {r}"
    assert r.status == 401, r


@pytest.mark.parametrize("name,value", SPOOFED, ids=SPOOF_IDS)
def test_spoofed_header_stripped_on_cookie_session(frontend: ProxyServer, proxy_idp: ProxyIdp,
                                                   world: World, name: str, value: str, request):
    signed = _alice(request, frontend, proxy_idp, world)
    r = signed.browser.get(frontend.url("/spoof"), headers={name: value})
    echo = require_echo(r, f"signed in with {name}")
    assert_no_spoof(echo, name)
    h = echo["headers"]
    assert h.get("x-ms-client-principal-name") == world.alice.upn, auth_headers(echo)
    assert h.get("x-ms-client-principal-id") == world.alice.id, auth_headers(echo)


@pytest.mark.parametrize("name,value", SPOOFED, ids=SPOOF_IDS)
def test_spoofed_header_stripped_on_bearer_request(backend: ProxyServer, proxy_idp: ProxyIdp,
                                                   world: World, name: str, value: str):
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret,
                      f"{world.backend.identifier_uri}/.default")
    r = api_get(backend.url("/spoof"), token=token, headers={name: value})
    echo = require_echo(r, f"bearer with {name}")
    assert_no_spoof(echo, name)
    assert echo["headers"].get("x-ms-client-principal-idp") == "aad", auth_headers(echo)


_ALICE_CACHE: dict[str, object] = {}


def _alice(request, frontend, proxy_idp, world):
    """One signed-in browser for the parametrized cookie tests (read-only use)."""
    s = _ALICE_CACHE.get(frontend.base)
    if s is None:
        s = _ALICE_CACHE[frontend.base] = sign_in_alice_via(frontend, proxy_idp, world)
    return s


# --------------------------------------------------------------------------------------------
# Open redirects


def evil_targets(port: int) -> list[str]:
    return ["//evil.test", "//evil.test/path", "/\\evil.test", "\\\\evil.test", "https://evil.test",
            "https://evil.test/.auth/login/done", "/%09/evil.test", "/%5Cevil.test", "/%2F/evil.test",
            "/\t/evil.test", f"https://127.0.0.1:{port}@evil.test/", f"http://127.0.0.1:{port}@evil.test/",
            "http://evil.test\\@127.0.0.1/", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>", "///evil.test", "https:evil.test",
            "/x\r\nSet-Cookie: evil=1\r\nLocation: https://evil.test", "/%0d%0aLocation:%20https://evil.test"]


EVIL_IDS = ["dslash", "dslash-path", "slash-backslash", "backslashes", "https", "https-path",
            "tab-encoded", "backslash-encoded", "slash-encoded", "raw-tab", "userinfo-https",
            "userinfo-http", "backslash-userinfo", "javascript", "javascript-case", "data", "tslash",
            "scheme-relative", "crlf", "crlf-encoded"]


def _follow_post_login(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World, start: str) -> list[str]:
    """The sign-in from `start`, returning every Location the proxy produced (all must stay on
    the site, except the one to the identity provider)."""
    b = ProxyBrowser(proxy_idp.ca_path)
    locations = []
    resp = b.get(start)
    for _ in range(5):
        if resp.status_code not in REDIRECTS:
            assert 400 <= resp.status_code < 500 or resp.status_code == 200, describe(resp)
            return locations  # refused up front: fine
        loc = resp.headers["Location"]
        if urlsplit(loc).netloc == proxy_idp.host:
            break
        locations.append(loc)
        assert_on_site(frontend, loc, f"before sign-in from {start}")
        resp = b.get(assert_on_site(frontend, loc))
    else:
        raise AssertionError(b.trace_text())
    cb = drive_provider(b, b.get(loc), frontend.url("/.auth/login/aad/callback"), user=world.alice)
    assert cb.status_code < 500, f"the callback failed for {start}:\n{describe(cb)}"
    assert "evil" not in cb.headers.get("Set-Cookie", ""), cb.headers
    hops = 0
    while cb.status_code in REDIRECTS and hops < 5:
        loc = cb.headers["Location"]
        locations.append(loc)
        resolved = assert_on_site(frontend, loc, f"after sign-in from {start} ({b.trace_text()})")
        cb = b.get(resolved)
        hops += 1
    return locations


@pytest.mark.parametrize("target_index", range(len(EVIL_IDS)), ids=EVIL_IDS)
def test_post_login_redirect_stays_on_site(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World,
                                           target_index: int):
    target = evil_targets(frontend.port)[target_index]
    locs = _follow_post_login(frontend, proxy_idp, world,
                              frontend.url("/.auth/login/aad?post_login_redirect_uri=" + quote(target, safe="")))
    assert locs, "no redirect at all"


def test_post_login_redirect_url_spelling_stays_on_site(frontend: ProxyServer, proxy_idp: ProxyIdp,
                                                        world: World):
    _follow_post_login(frontend, proxy_idp, world,
                       frontend.url("/.auth/login/aad?post_login_redirect_url=" + quote("//evil.test", safe="")))


def test_post_login_redirect_relative_is_honoured(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    """Control for the cases above: a relative target is where the browser lands."""
    locs = _follow_post_login(frontend, proxy_idp, world,
                              frontend.url("/.auth/login/aad?post_login_redirect_uri=" + quote("/landing?a=1")))
    assert urlsplit(locs[-1]).path == "/landing" and urlsplit(locs[-1]).query == "a=1", locs


@pytest.mark.parametrize("raw_path", ["//evil.test/x", "/\\evil.test/x", "//evil.test"])
def test_protected_path_that_looks_like_a_host_stays_on_site(frontend: ProxyServer, proxy_idp: ProxyIdp,
                                                             world: World, raw_path: str):
    """An unauthenticated browser on `//evil.test/x` must not land on evil.test after sign-in."""
    _follow_post_login(frontend, proxy_idp, world, frontend.base + raw_path)


@pytest.mark.parametrize("target_index", range(len(EVIL_IDS)), ids=EVIL_IDS)
def test_post_logout_redirect_stays_on_site(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World,
                                            target_index: int):
    target = evil_targets(frontend.port)[target_index]
    b = ProxyBrowser(proxy_idp.ca_path)
    resp = b.get(frontend.url("/.auth/logout?post_logout_redirect_uri=" + quote(target, safe="")))
    for _ in range(6):
        if resp.status_code not in REDIRECTS:
            break
        loc = resp.headers["Location"]
        if urlsplit(loc).netloc == proxy_idp.host:
            # the provider's end-session endpoint: it must bring the browser back to this site
            q = query_params(loc)
            if "post_logout_redirect_uri" in q:
                assert_on_site(frontend, q["post_logout_redirect_uri"], "IdP return address")
            resp = b.get(loc)
            continue
        resp = b.get(assert_on_site(frontend, loc, f"logout with {target!r}: {b.trace_text()}"))
    assert resp.status_code < 500, describe(resp)
    # the landing routes themselves, called directly with the target in any parameter
    for route in ("/.auth/logout/complete", "/.auth/logout/done", "/.auth/login/done"):
        for param in ("state", "post_logout_redirect_uri", "post_login_redirect_uri"):
            r = requests.get(frontend.url(f"{route}?{param}={quote(target, safe='')}"),
                             headers={"User-Agent": BROWSER_UA}, allow_redirects=False, timeout=30)
            if r.status_code in REDIRECTS:
                assert_on_site(frontend, r.headers.get("Location", ""), f"{route}?{param}={target!r}")


# --------------------------------------------------------------------------------------------
# Bearer tokens


@pytest.fixture(scope="module")
def good_claims(proxy_idp: ProxyIdp, world: World) -> dict:
    """Claims of a real app token webapp -> api://<backend> (the back end allows webapp)."""
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret,
                      f"{world.backend.identifier_uri}/.default")
    return unverified_claims(token)


def _fresh(claims: dict, **changes) -> dict:
    now = int(time.time())
    c = dict(claims)
    c.update({"iat": now - 10, "nbf": now - 10, "exp": now + 3600})
    c.update(changes)
    return c


def _expect_401(backend: ProxyServer, token: str, what: str) -> requests.Response:
    r = api_get(backend.url("/api"), token=token)
    assert r.status_code == 401, f"{what} was not refused with 401:\n{describe(r)}"
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), describe(r)
    # a browser presenting it is not redirected either
    r2 = requests.get(backend.url("/api"), headers={"User-Agent": BROWSER_UA, "Authorization": f"Bearer {token}"},
                      allow_redirects=False, timeout=30)
    assert r2.status_code == 401, f"{what} from a browser:\n{describe(r2)}"
    return r


def test_minted_token_control_is_accepted(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    """Control for the minted-token cases: the same minting with correct claims is accepted."""
    token = proxy_idp.mint(_fresh(good_claims))
    require_echo(api_get(backend.url("/api"), token=token), "a correctly minted token")


def test_alg_none_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    kid, _ = proxy_idp.signing_key()
    _expect_401(backend, unsigned_token(_fresh(good_claims)), "alg=none")
    _expect_401(backend, unsigned_token(_fresh(good_claims), {"alg": "none", "typ": "JWT", "kid": kid}),
                "alg=none with the IdP's kid")
    _expect_401(backend, unsigned_token(_fresh(good_claims), {"alg": "None", "kid": kid}), "alg=None")


def test_hs256_with_the_public_key_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    real = proxy_idp.mint(_fresh(good_claims))
    header_kid = jwt.get_unverified_header(real)["kid"]
    pem = proxy_idp.jwks_public_pem(real)
    for secret in (pem, pem.strip()):
        _expect_401(backend, hs256_token(_fresh(good_claims), secret, header_kid), "HS256 keyed with the RSA public key")


def test_unknown_kid_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = proxy_idp.mint(_fresh(good_claims), kid="unknown-" + os.urandom(6).hex(), key=key)
    _expect_401(backend, token, "a token with an unknown kid")


def test_known_kid_other_key_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _expect_401(backend, proxy_idp.mint(_fresh(good_claims), key=key), "the IdP's kid signed by another key")


def test_tampered_payload_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict, world: World):
    token = proxy_idp.mint(_fresh(good_claims))
    h, _, sig = token.split(".")
    forged = _fresh(good_claims, appid=world.webapp.app_id, roles=["Admin"])
    from easyauth_e2e import b64url
    _expect_401(backend, f"{h}.{b64url(json.dumps(forged).encode())}.{sig}", "a tampered payload")


def test_wrong_issuer_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    _expect_401(backend, proxy_idp.mint(_fresh(good_claims, iss="https://evil.test/" + good_claims["tid"] + "/")),
                "a token from another issuer (signed with the IdP's key)")
    other_tenant = "11111111-2222-3333-4444-555555555555"
    _expect_401(backend, proxy_idp.mint(_fresh(good_claims, iss=f"{proxy_idp.base}/{other_tenant}/",
                                               tid=other_tenant)),
                "a token from another tenant")


def test_wrong_audience_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    _expect_401(backend, proxy_idp.mint(_fresh(good_claims, aud="api://some-other-api")), "aud api://some-other-api")


def test_expired_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    now = int(time.time())
    token = proxy_idp.mint(_fresh(good_claims, iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    _expect_401(backend, token, "a token expired an hour ago")


def test_not_yet_valid_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, good_claims: dict):
    now = int(time.time())
    token = proxy_idp.mint(_fresh(good_claims, iat=now, nbf=now + 3600, exp=now + 7200))
    _expect_401(backend, token, "a token valid only in an hour")


def test_garbage_bearer_is_401(backend: ProxyServer):
    for token in ("not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", ""):
        r = api_get(backend.url("/api"), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, f"Bearer {token!r}:\n{describe(r)}"


# --------------------------------------------------------------------------------------------
# Session cookies


def _assert_signed_out(frontend: ProxyServer, proxy_idp: ProxyIdp, cookies: dict[str, str], what: str):
    b = ProxyBrowser(proxy_idp.ca_path)
    for name, value in cookies.items():
        b.session.cookies.set(name, value, domain="127.0.0.1", path="/")
    r = b.get(frontend.url("/private"))
    loc = r.headers.get("Location", "")
    assert r.status_code == 302 and ("/.auth/login" in loc or urlsplit(loc).netloc == proxy_idp.host), \
        f"{what}: still signed in:\n{describe(r)}"
    r = requests.get(frontend.url("/private"), cookies=cookies, headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 401, f"{what}:\n{describe(r)}"
    r = requests.get(frontend.url("/.auth/me"), cookies=cookies, headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 401, f"{what}: /.auth/me\n{describe(r)}"


def _flip(value: str, at: int) -> str:
    ch = value[at]
    repl = "A" if ch != "A" else "B"
    return value[:at] + repl + value[at + 1:]


def test_tampered_session_cookie_is_signed_out(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    cookies = signed.browser.session_cookies()
    name = sorted(cookies)[0]
    value = cookies[name]
    for at in (len(value) // 2, len(value) - 3, 5):
        _assert_signed_out(frontend, proxy_idp, {**cookies, name: _flip(value, at)}, f"cookie flipped at {at}")
    _assert_signed_out(frontend, proxy_idp, {**cookies, name: value[:-8]}, "truncated cookie")
    _assert_signed_out(frontend, proxy_idp, {name: "garbage"}, "garbage cookie")
    # control: the untouched cookie still works
    r = requests.get(frontend.url("/private"), cookies=cookies, headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=30)
    require_echo(r, "the untouched cookie")


def test_cookie_replayed_after_logout_is_signed_out(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    cookies = signed.browser.session_cookies()
    r = signed.browser.get(frontend.url("/.auth/logout"))
    assert r.status_code in (302, 303), describe(r)
    _assert_signed_out(frontend, proxy_idp, cookies, "cookie replayed after /.auth/logout")


def test_cookie_of_another_site_is_ignored(frontend: ProxyServer, backend: ProxyServer, proxy_idp: ProxyIdp,
                                           world: World):
    """The front end's cookie means nothing to the back end (other keys): a browser sharing the
    jar (same host, other port) is redirected, a non-browser gets 401."""
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    r = requests.get(backend.url("/private"), cookies=signed.browser.session_cookies(),
                     headers={"User-Agent": API_UA}, allow_redirects=False, timeout=30)
    assert r.status_code == 401, describe(r)


# --------------------------------------------------------------------------------------------
# excludedPaths


@pytest.fixture(scope="module")
def excluded_proxies(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp) -> dict[str, ProxyServer]:
    return {
        action: proxies.shared(f"excluded-{action}", lambda action=action: proxies.start(
            f"excluded-{action}", aad_settings(proxy_idp, world, action=action, excluded=["/public/*"])))
        for action in ("RedirectToLoginPage", "Return401")
    }


BYPASSES = ["/public/../private", "/public/%2e%2e/private", "/public/%2E%2E/private", "/public/..%2fprivate",
            "/public/..%2Fprivate", "/public/%2e%2e%2fprivate", "/public/..\\private", "/public/..%5cprivate",
            "//private", "/PRIVATE", "/Public/../private", "/public/./../private", "/public/%2e/../private",
            "/public/..;/private", "/public;x/../private",  # `;` path parameters (Tomcat/Spring upstreams)
            "/publicity", "/private?/public/x",
            "/private#/public/x", "/./private", "/%2e/private",
            # an encoded separator is part of one segment to the app's router (`/private/...`)
            "/private/..%5cpublic/x", "/private/..%2Fpublic/x"]


@pytest.mark.parametrize("action", ["RedirectToLoginPage", "Return401"])
@pytest.mark.parametrize("path", BYPASSES)
def test_excluded_paths_cannot_be_bypassed(excluded_proxies: dict[str, ProxyServer], action: str, path: str):
    p = excluded_proxies[action]
    r = raw_request(p.port, "GET", path, {"User-Agent": BROWSER_UA})
    echo = r.echo()
    assert echo is None, f"{path} reached the app anonymously as {echo and echo['raw_target']!r}: {r}"
    if action == "Return401":
        assert r.status in (400, 401, 404), r
    else:
        assert r.status in (302, 400, 404), r


@pytest.mark.parametrize("action", ["RedirectToLoginPage", "Return401"])
@pytest.mark.parametrize("path", ["/public/x", "/public/a/b?q=1", "/public/", "/Public/x", "/public//x",
                                  "/public/%78"])
def test_excluded_paths_pass_anonymously(excluded_proxies: dict[str, ProxyServer], action: str, path: str):
    p = excluded_proxies[action]
    r = raw_request(p.port, "GET", path, {"User-Agent": BROWSER_UA})
    echo = r.echo()
    assert echo is not None, f"{path} is excluded but did not reach the app: {r}"
    assert auth_headers(echo) == {}, echo


# --------------------------------------------------------------------------------------------
# The sign-in callback (plain http: code + query; https: the hybrid flow's form_post)


@pytest.fixture(scope="module", params=["http", "https"])
def signin_proxy(request, frontend: ProxyServer, proxies: ProxyFactory, proxy_idp: ProxyIdp) -> ProxyServer:
    if request.param == "http":
        return frontend
    return proxies.shared("tls", lambda: proxies.start("tls", port=proxy_idp.tls_proxy_port, tls=True))


def _browser_for(proxy: ProxyServer, proxy_idp: ProxyIdp) -> ProxyBrowser:
    if not proxy.tls:
        return ProxyBrowser(proxy_idp.ca_path)
    bundle = proxy.workdir / "ca-bundle.pem"
    if not bundle.exists():
        bundle.write_text(Path(os.environ["SSL_CERT_FILE"]).read_text() + "\n" + proxy.ca_path.read_text())
    return ProxyBrowser(bundle)


def _callback(proxy: ProxyServer, proxy_idp: ProxyIdp, world: World, path: str = "/cb-target"):
    """Starts a sign-in in a fresh browser; returns it and the provider's answer, not yet delivered."""
    b = _browser_for(proxy, proxy_idp)
    resp = b.get(proxy.url(path))
    for _ in range(4):
        assert resp.status_code in REDIRECTS, describe(resp)
        loc = urljoin(resp.url, resp.headers["Location"])
        if urlsplit(loc).netloc == proxy_idp.host:
            break
        resp = b.get(assert_on_site(proxy, loc))
    cb = drive_provider(b, b.get(loc), proxy.url("/.auth/login/aad/callback"), user=world.alice, submit=False)
    return b, cb


def _signed_in_by(resp: requests.Response) -> bool:
    return resp.status_code in REDIRECTS and "AppServiceAuthSession" in resp.headers.get("Set-Cookie", "")


def test_callback_requires_the_nonce_cookie_of_the_same_browser(signin_proxy: ProxyServer, proxy_idp: ProxyIdp,
                                                                world: World):
    """Login CSRF: the IdP's answer for browser A delivered by browser B (no Nonce cookie) signs no one in."""
    a, cb = _callback(signin_proxy, proxy_idp, world)
    b = _browser_for(signin_proxy, proxy_idp)
    r = cb.send(b)
    assert not _signed_in_by(r) and not b.session_cookies(), f"another browser was signed in:\n{describe(r)}"
    # control: browser A itself can still complete its sign-in
    r = cb.send(a)
    assert _signed_in_by(r), describe(r)


def test_callback_cannot_be_replayed(signin_proxy: ProxyServer, proxy_idp: ProxyIdp, world: World):
    a, cb = _callback(signin_proxy, proxy_idp, world)
    nonce_cookies = {c.name: c.value for c in a.session.cookies if not c.name.startswith("AppServiceAuthSession")}
    r = cb.send(a)
    assert _signed_in_by(r), describe(r)
    # an attacker replaying the same answer with the (since deleted) Nonce cookie values
    c = _browser_for(signin_proxy, proxy_idp)
    for name, value in nonce_cookies.items():
        c.session.cookies.set(name, value, domain="127.0.0.1", path="/")
    r2 = cb.send(c)
    assert not _signed_in_by(r2), f"the callback accepted a replayed answer:\n{describe(r2)}"


def test_callback_with_a_tampered_id_token_is_refused(proxies: ProxyFactory, proxy_idp: ProxyIdp, world: World):
    """The hybrid flow (https) carries an ID token in the front channel: it must be validated."""
    tls = proxies.shared("tls", lambda: proxies.start("tls", port=proxy_idp.tls_proxy_port, tls=True))
    a, cb = _callback(tls, proxy_idp, world)
    assert cb.method == "POST" and "id_token" in cb.data, f"https sign-in is not the hybrid form_post: {cb}"
    h, _, sig = cb.data["id_token"].split(".")
    claims = unverified_claims(cb.data["id_token"])
    claims["preferred_username"] = claims["name"] = "mallory@evil.test"
    from easyauth_e2e import b64url
    r = cb.with_params(id_token=f"{h}.{b64url(json.dumps(claims).encode())}.{sig}").send(a)
    assert not _signed_in_by(r), f"a tampered id_token signed the browser in:\n{describe(r)}"


def test_callback_with_an_id_token_of_another_sign_in_is_refused(proxies: ProxyFactory, proxy_idp: ProxyIdp,
                                                                  world: World):
    """A genuine ID token of another attempt (other nonce, other code: c_hash) does not fit."""
    tls = proxies.shared("tls", lambda: proxies.start("tls", port=proxy_idp.tls_proxy_port, tls=True))
    a, cb = _callback(tls, proxy_idp, world)
    _, other = _callback(tls, proxy_idp, world, "/other")
    r = cb.with_params(id_token=other.data["id_token"]).send(a)
    assert not _signed_in_by(r), f"an ID token of another sign-in was accepted:\n{describe(r)}"


def test_callback_with_a_foreign_state_is_refused(signin_proxy: ProxyServer, proxy_idp: ProxyIdp, world: World):
    a, cb = _callback(signin_proxy, proxy_idp, world)
    _, other = _callback(signin_proxy, proxy_idp, world, "/other")
    r = cb.with_params(state=other.params["state"]).send(a)
    assert not _signed_in_by(r), f"state of another attempt accepted:\n{describe(r)}"


def test_session_cookie_attributes(signin_proxy: ProxyServer, proxy_idp: ProxyIdp, world: World):
    a, cb = _callback(signin_proxy, proxy_idp, world)
    r = cb.send(a)
    assert _signed_in_by(r), describe(r)
    cookies = [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("AppServiceAuthSession")]
    assert cookies, r.headers
    for c in cookies:
        attrs = [x.strip().lower() for x in c.split(";")[1:]]
        assert "httponly" in attrs and "path=/" in attrs, c
        assert not any(x.startswith("domain=") for x in attrs), c
        if signin_proxy.tls:
            assert "secure" in attrs and "samesite=none" in attrs, c
        else:
            assert "secure" not in attrs, f"Secure on plain http: browsers would drop it: {c}"
            assert "samesite=lax" in attrs, c


# --------------------------------------------------------------------------------------------
# Identity headers: other ways in


def test_spoofed_headers_stripped_on_cors_preflight(frontend: ProxyServer):
    """A preflight goes to the app without authentication, but never with forged identity headers."""
    headers = [("User-Agent", BROWSER_UA), ("Origin", "https://spa.test"), ("Access-Control-Request-Method", "PUT")]
    headers += [(name, value) for name, value in SPOOFED]
    r = raw_request(frontend.port, "OPTIONS", "/api/items", headers)
    echo = r.echo()
    assert echo is not None, f"the preflight did not reach the app: {r}"
    for name, _ in SPOOFED:
        assert_no_spoof(echo, name)
    assert auth_headers(echo) == {}, auth_headers(echo)


def test_spoofed_headers_stripped_on_excluded_paths(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    p = proxies.shared("excluded-Return401", lambda: proxies.start(
        "excluded-Return401", aad_settings(proxy_idp, world, action="Return401", excluded=["/public/*"])))
    headers = [("User-Agent", API_UA)] + [(name, value) for name, value in SPOOFED]
    echo = raw_request(p.port, "GET", "/public/page", headers).echo()
    assert echo is not None
    for name, _ in SPOOFED:
        assert_no_spoof(echo, name)
    assert auth_headers(echo) == {}, auth_headers(echo)


def test_duplicate_spoofed_headers_in_one_request(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World,
                                                  request):
    signed = _alice(request, frontend, proxy_idp, world)
    cookie = "; ".join(f"{k}={v}" for k, v in signed.browser.session_cookies().items())
    headers = [("User-Agent", BROWSER_UA), ("Cookie", cookie),
               ("X-MS-CLIENT-PRINCIPAL-NAME", MALLORY), ("x-ms-client-principal-name", MALLORY),
               ("X_MS_CLIENT_PRINCIPAL_NAME", MALLORY), ("x-MS-client_principal-NAME", MALLORY)]
    echo = raw_request(frontend.port, "GET", "/dup", headers).echo()
    assert echo is not None
    assert echo["headers"].get("x-ms-client-principal-name") == world.alice.upn, auth_headers(echo)
    assert_no_spoof(echo, "x-ms-client-principal-name")


def test_connection_header_cannot_drop_the_identity_headers(frontend: ProxyServer, proxy_idp: ProxyIdp,
                                                            world: World, request):
    """Hop-by-hop trick: the client names the module's own headers in `Connection`. Hop-by-hop
    headers must be removed from the client's request before the module adds its headers, so the
    app still receives the identity and the X-Forwarded-* values."""
    signed = _alice(request, frontend, proxy_idp, world)
    named = ["X-MS-CLIENT-PRINCIPAL", "X-MS-CLIENT-PRINCIPAL-ID", "X-MS-CLIENT-PRINCIPAL-NAME",
             "X-MS-CLIENT-PRINCIPAL-IDP", "X-MS-TOKEN-AAD-ACCESS-TOKEN", "X-Forwarded-For", "X-Forwarded-Proto",
             "X-Forwarded-Host"]
    r = signed.browser.get(frontend.url("/hop"), headers={"Connection": "keep-alive, " + ", ".join(named)})
    echo = require_echo(r)
    missing = [n for n in named if not echo["headers"].get(n.lower())]
    assert not missing, (f"`Connection: {', '.join(named)}` from the client removed the module's "
                         f"{missing} before the app (it got {sorted(auth_headers(echo))})")
    assert echo["headers"]["x-ms-client-principal-id"] == world.alice.id


@pytest.mark.parametrize("raw_path", ["/.auth/../private", "/.auth/%2e%2e/private", "/.auth/..%2fprivate",
                                      "/.AUTH/../private", "//.auth/../private", "/.auth/me/../../private",
                                      "/.auth/login/aad/../../../private", "/.auth/nosuch", "/.auth",
                                      "/.auth/", "/.authx", "/.auth%2f../private"])
def test_auth_prefix_tricks_do_not_reach_the_app_anonymously(frontend: ProxyServer, raw_path: str):
    r = raw_request(frontend.port, "GET", raw_path, {"User-Agent": API_UA})
    assert r.echo() is None, f"{raw_path} reached the app anonymously: {r}"
    assert r.status < 500, r


def test_host_header_does_not_change_the_sign_in_addresses(frontend: ProxyServer, proxy_idp: ProxyIdp):
    """--public-url is the site's origin: a forged Host or X-Forwarded-Host (no forwardProxy
    setting) must not end up in the redirect_uri or any Location."""
    for headers in ({"Host": "evil.test"}, {"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https"},
                    {"Host": f"evil.test:{frontend.port}"}):
        b = ProxyBrowser(proxy_idp.ca_path)
        r = b.get(frontend.url("/.auth/login/aad?post_login_redirect_uri=%2Fx"), headers=headers)
        assert r.status_code in REDIRECTS, describe(r)
        loc = r.headers["Location"]
        assert "evil" not in loc, f"{headers}: {loc}"
        assert query_params(loc).get("redirect_uri") == frontend.url("/.auth/login/aad/callback"), loc
        r = b.get(frontend.url("/private"), headers=headers)
        assert "evil" not in r.headers.get("Location", ""), f"{headers}: {r.headers}"


def test_excluded_path_with_credentials_still_gets_the_identity(proxies: ProxyFactory, world: World,
                                                                 proxy_idp: ProxyIdp):
    """excludedPaths only waive the unauthenticated action: a valid bearer still identifies."""
    p = proxies.shared("excluded-Return401", lambda: proxies.start(
        "excluded-Return401", aad_settings(proxy_idp, world, action="Return401", excluded=["/public/*"])))
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret, f"{world.backend.identifier_uri}/.default")
    echo = require_echo(api_get(p.url("/public/who"), token=token))
    assert echo["headers"].get("x-ms-client-principal-idp") == "aad", auth_headers(echo)
    # and an invalid bearer on an excluded path is still refused (never a silent anonymous pass)
    r = api_get(p.url("/public/who"), token="a.b.c")
    assert r.status_code == 401 or (echo_of(r) is not None and auth_headers(echo_of(r)) == {}), describe(r)


@pytest.mark.parametrize("query", ["error=access_denied&error_description=denied", "code=", "state=", "",
                                   "code=abc&state=redir%3D%252F", "code=abc&state=" + "A" * 5000])
def test_callback_garbage_is_refused_without_a_session(frontend: ProxyServer, query: str):
    b = ProxyBrowser(os.environ["SSL_CERT_FILE"])
    r = b.get(frontend.url("/.auth/login/aad/callback?" + query))
    assert r.status_code < 500, describe(r)
    assert not _signed_in_by(r) and not b.session_cookies(), describe(r)
    r = b.request("POST", frontend.url("/.auth/login/aad/callback"), data=query.encode(),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code < 500 and not _signed_in_by(r), describe(r)


def test_conflicting_content_length_and_transfer_encoding_smuggle_nothing(frontend: ProxyServer):
    """CL.TE: a request hidden in the body must not reach the app as its own (anonymous) request."""
    import socket
    smuggled = f"GET /smuggled HTTP/1.1\r\nHost: {frontend.host}\r\nUser-Agent: {API_UA}\r\n\r\n"
    body = f"0\r\n\r\n{smuggled}"
    raw = (f"POST /.auth/version HTTP/1.1\r\nHost: {frontend.host}\r\nUser-Agent: {API_UA}\r\n"
           f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n{body}").encode()
    s = socket.create_connection(("127.0.0.1", frontend.port), timeout=5)
    try:
        s.sendall(raw)
        time.sleep(0.5)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    finally:
        s.close()
    assert b'"path": "/smuggled"' not in data, f"a smuggled request reached the app: {data[:800]!r}"
