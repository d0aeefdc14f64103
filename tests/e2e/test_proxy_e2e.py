"""`easyauth proxy` end to end with `easyauth idp` (the tutorial's front end): browser sign-in
through the real pages, the headers the app receives, /.auth/me, /.auth/refresh, /.auth/logout."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import urlsplit

import pytest
import requests

from easyauth_e2e import TokenValidator, World, describe
from proxy_e2e import (
    API_UA,
    ProxyBrowser,
    ProxyIdp,
    ProxyServer,
    SignedIn,
    api_get,
    claim_values,
    decode_principal,
    query_params,
    require_echo,
    sign_in_alice_via,
    unverified_claims,
)

pytestmark = pytest.mark.proxy

OID_URI = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def parse_expires_on(value: str) -> float:
    """`X-MS-TOKEN-AAD-EXPIRES-ON` / `expires_on`: ISO-8601 UTC (7 fractional digits on App
    Service) or, leniently, epoch seconds."""
    v = value.strip()
    if v.isdigit():
        return float(v)
    v = v.replace("Z", "+00:00")
    if "." in v:  # Python parses at most 6 fractional digits
        head, rest = v.split(".", 1)
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac):]
        v = f"{head}.{frac[:6]}{tz}"
    d = dt.datetime.fromisoformat(v)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def check_app_headers(signed: SignedIn, world: World, tokens: TokenValidator) -> dict:
    h = signed.headers
    for name in ("x-ms-client-principal", "x-ms-client-principal-id", "x-ms-client-principal-name",
                 "x-ms-client-principal-idp", "x-ms-token-aad-access-token", "x-ms-token-aad-id-token",
                 "x-ms-token-aad-refresh-token", "x-ms-token-aad-expires-on"):
        assert h.get(name), f"the app did not receive {name}: {sorted(h)}"
    principal = decode_principal(h["x-ms-client-principal"])
    assert principal["auth_typ"] == "aad", principal
    assert isinstance(principal["claims"], list) and principal["claims"], principal
    oids = claim_values(principal, "oid") + claim_values(principal, OID_URI)
    assert world.alice.id in oids, principal
    assert principal.get("name_typ") and principal.get("role_typ"), principal
    assert h["x-ms-client-principal-id"] == world.alice.id
    assert h["x-ms-client-principal-name"] == world.alice.upn
    assert h["x-ms-client-principal-idp"] == "aad"
    # the access token is for the back end (delegated user_impersonation), issued to webapp
    access = tokens.access_v1(h["x-ms-token-aad-access-token"], world.backend.identifier_uri)
    assert "user_impersonation" in access["scp"].split(" "), access
    assert access["appid"] == world.webapp.app_id and access["oid"] == world.alice.id, access
    idt = tokens.id_token(h["x-ms-token-aad-id-token"], world.webapp.app_id)
    assert idt["oid"] == world.alice.id, idt
    assert len(h["x-ms-token-aad-refresh-token"]) > 20
    assert abs(parse_expires_on(h["x-ms-token-aad-expires-on"]) - access["exp"]) <= 2, \
        (h["x-ms-token-aad-expires-on"], access["exp"])
    # the browser's own cookie is not an identity header, but the request otherwise is intact
    assert signed.echo["path"] == "/profile" and signed.echo["query"] == "x=1", signed.echo
    return access


def test_browser_sign_in_end_to_end(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World,
                                    proxy_tokens: TokenValidator):
    signed = sign_in_alice_via(frontend, proxy_idp, world, "/profile?x=1")
    si = signed.sign_in
    trace = signed.browser.trace_text()
    # 1. the protected page redirected towards the sign-in
    first = signed.browser.trace[0]
    assert first.startswith(f"GET {frontend.url('/profile?x=1')} -> 302"), trace
    # 2. the provider request: hybrid flow, form_post, PKCE, nonce, state, loginParameters' scope
    q = query_params(si.authorize_url)
    assert urlsplit(si.authorize_url).path == f"/{world.tenant_id}/oauth2/v2.0/authorize", si.authorize_url
    assert q.get("client_id") == world.webapp.app_id, q
    # plain http: code + response_mode=query (a SameSite=Lax Nonce cookie would not come back
    # with a cross-site form POST); https: App Service's hybrid flow (see the --tls test)
    assert q.get("response_type") == "code", q
    assert q.get("response_mode") in ("query", None), q
    assert q.get("redirect_uri") == frontend.url("/.auth/login/aad/callback"), q
    assert q.get("nonce") and q.get("state"), q
    assert q.get("code_challenge") and q.get("code_challenge_method") == "S256", q
    scopes = q.get("scope", "").split()
    assert f"{world.backend.identifier_uri}/user_impersonation" in scopes and "offline_access" in scopes, q
    assert "email" not in scopes, f"scope= in loginParameters must replace the default: {q}"
    assert "redirect-callback" in si.pages, si.pages
    # 3. the callback set the session cookie (usable over plain http) and went back to the page
    assert si.final_location == frontend.url("/profile?x=1"), trace
    set_cookie = si.callback.headers.get("Set-Cookie", "")
    assert "AppServiceAuthSession" in set_cookie, si.callback.headers
    assert "httponly" in set_cookie.lower(), set_cookie
    assert signed.browser.session_cookies(), "no AppServiceAuthSession cookie in the jar"
    # 4. what the app received
    check_app_headers(signed, world, proxy_tokens)


def test_auth_me(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    r = signed.browser.get(frontend.url("/.auth/me"))
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert isinstance(body, list) and len(body) == 1, body
    me = body[0]
    assert me["provider_name"] == "aad", me
    assert me["user_id"] == world.alice.upn, me
    assert isinstance(me["user_claims"], list) and me["user_claims"], me
    assert all(set(c) == {"typ", "val"} and isinstance(c["val"], str) for c in me["user_claims"]), me
    claims = {c["typ"] for c in me["user_claims"]}
    assert "oid" in claims or OID_URI in claims, claims
    assert me.get("id_token") == signed.headers["x-ms-token-aad-id-token"], me
    assert me.get("access_token") == signed.access_token, me
    assert me.get("refresh_token"), me
    assert abs(parse_expires_on(me["expires_on"]) - unverified_claims(signed.access_token)["exp"]) <= 2, me
    # without the cookie: 401 (not a redirect, not the app)
    r2 = requests.get(frontend.url("/.auth/me"), headers={"User-Agent": API_UA}, allow_redirects=False,
                      timeout=30)
    assert r2.status_code == 401, describe(r2)


def test_version_and_login_done(frontend: ProxyServer):
    r = requests.get(frontend.url("/.auth/version"), timeout=10)
    assert r.status_code == 200 and isinstance(r.json().get("version"), str), describe(r)
    r = requests.get(frontend.url("/.auth/login/done"), timeout=10, headers={"User-Agent": API_UA})
    assert r.status_code == 200 and "signed in" in r.text.lower(), describe(r)


def current_access_token(signed: SignedIn, frontend: ProxyServer) -> str:
    r = signed.browser.get(frontend.url("/page"))
    return require_echo(r, "GET /page")["headers"]["x-ms-token-aad-access-token"]


def test_refresh_with_cookie(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World,
                             proxy_tokens: TokenValidator):
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    old = signed.access_token
    old_refresh = signed.headers["x-ms-token-aad-refresh-token"]
    time.sleep(1.1)  # a new iat
    r = signed.browser.get(frontend.url("/.auth/refresh"))
    assert r.status_code == 200, describe(r)
    new = current_access_token(signed, frontend)
    assert new != old, "/.auth/refresh did not replace the stored access token"
    c = proxy_tokens.access_v1(new, world.backend.identifier_uri)
    assert c["iat"] > unverified_claims(old)["iat"] and c["oid"] == world.alice.id, c
    echo = require_echo(signed.browser.get(frontend.url("/page")))
    assert echo["headers"]["x-ms-token-aad-refresh-token"] != old_refresh, \
        "the rotated refresh token was not stored"


def test_refresh_with_expired_bearer_like_the_tutorial(frontend: ProxyServer, proxy_idp: ProxyIdp,
                                                       world: World, proxy_tokens: TokenValidator):
    """The tutorial's front end calls /.auth/refresh server-side with `Authorization: Bearer
    <x-ms-token-aad-access-token>` once that token has expired (no cookie, not a browser)."""
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    old = signed.access_token
    exp = unverified_claims(old)["exp"]
    time.sleep(max(0.0, exp - time.time() + 1.0))  # the IdP lifetime is short in this session
    r = api_get(frontend.url("/.auth/refresh"), token=old)
    assert r.status_code == 200, describe(r)
    new = current_access_token(signed, frontend)
    assert new != old
    c = proxy_tokens.access_v1(new, world.backend.identifier_uri)
    assert c["exp"] > time.time(), c
    # a bearer token that is not the one stored for a live session refreshes nothing
    r2 = api_get(frontend.url("/.auth/refresh"), token=old)
    assert r2.status_code == 401, f"the replaced token still refreshes:\n{describe(r2)}"


def test_refresh_without_session_is_401(frontend: ProxyServer):
    r = api_get(frontend.url("/.auth/refresh"))
    assert r.status_code == 401, describe(r)


def test_logout_round_trip_and_replayed_cookie(frontend: ProxyServer, proxy_idp: ProxyIdp,
                                               world: World):
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    b = signed.browser
    stolen = b.session_cookies()
    assert stolen
    r = b.get(frontend.url("/.auth/logout"))
    assert r.status_code in (302, 303), describe(r)
    # the session cookies are cleared
    cleared = [c for c in r.headers.get("Set-Cookie", "").split(",") if "AppServiceAuthSession" in c]
    assert cleared, f"logout did not clear the session cookie: {r.headers}"
    assert not b.session_cookies(), f"cookies left in the jar: {b.session_cookies()}"
    # to the identity provider's end-session endpoint, back to /.auth/logout/complete
    loc = r.headers["Location"]
    u = urlsplit(loc)
    assert u.netloc == proxy_idp.host and u.path.endswith("/oauth2/v2.0/logout"), loc
    assert query_params(loc).get("post_logout_redirect_uri") == frontend.url("/.auth/logout/complete"), loc
    r = b.get(loc)
    assert r.status_code in (302, 303), \
        f"the IdP did not send the browser back (client_id / id_token_hint missing?):\n{describe(r)}"
    back = r.headers["Location"]
    assert back.startswith(frontend.url("/.auth/logout/complete")), back
    r = b.get(back)
    assert r.status_code == 200, describe(r)
    # signed out: the browser is sent to sign in again
    r = b.get(frontend.url("/profile"))
    assert r.status_code == 302, describe(r)
    # the replayed cookie counts as signed out
    thief = ProxyBrowser(proxy_idp.ca_path)
    for name, value in stolen.items():
        thief.session.cookies.set(name, value, domain="127.0.0.1", path="/")
    r = thief.get(frontend.url("/profile"))
    loc = r.headers.get("Location", "")
    assert r.status_code == 302 and ("/.auth/login" in loc or urlsplit(loc).netloc == proxy_idp.host), \
        f"a replayed cookie is still signed in:\n{describe(r)}"
    r = requests.get(frontend.url("/profile"), cookies=stolen, headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 401, describe(r)
    r = requests.get(frontend.url("/.auth/me"), cookies=stolen, headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 401, describe(r)
    r = requests.get(frontend.url("/.auth/refresh"), cookies=stolen, headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 401, f"a signed-out session was revived by /.auth/refresh:\n{describe(r)}"


def test_auth_login_without_provider_goes_to_the_default_one(frontend: ProxyServer, proxy_idp: ProxyIdp):
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(frontend.url("/.auth/login?post_login_redirect_uri=%2Fafter"))
    assert r.status_code == 302, describe(r)
    loc = r.headers["Location"]
    u = urlsplit(loc)
    if u.netloc == proxy_idp.host:  # straight to the provider is equivalent
        return
    assert u.path == "/.auth/login/aad", loc
    assert query_params(loc).get("post_login_redirect_uri") == "/after", loc


def test_login_start_sets_the_nonce_cookie(frontend: ProxyServer, proxy_idp: ProxyIdp):
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(frontend.url("/.auth/login/aad"))
    assert r.status_code == 302, describe(r)
    assert urlsplit(r.headers["Location"]).netloc == proxy_idp.host, r.headers["Location"]
    set_cookies = r.raw.headers.getlist("Set-Cookie")
    assert any(c.startswith("Nonce=") and "httponly" in c.lower() for c in set_cookies), set_cookies


def test_token_store_off_forwards_the_identity_without_tokens(proxies, proxy_idp: ProxyIdp, world: World):
    from proxy_e2e import aad_settings
    p = proxies.shared("no-token-store", lambda: proxies.start(
        "no-token-store", aad_settings(proxy_idp, world, token_store=False)))
    signed = sign_in_alice_via(p, proxy_idp, world)
    h = signed.headers
    assert h.get("x-ms-client-principal-id") == world.alice.id, sorted(h)
    assert h.get("x-ms-client-principal-name") == world.alice.upn, sorted(h)
    assert not [k for k in h if k.startswith("x-ms-token-")], f"token headers without the token store: {sorted(h)}"
    # the session (no server-side store: possibly split cookies) works on the next request too
    again = require_echo(signed.browser.get(p.url("/again")), "second request")
    assert again["headers"].get("x-ms-client-principal-id") == world.alice.id
    for c in signed.browser.session.cookies:
        if c.name.startswith("AppServiceAuthSession"):
            assert len(c.value) <= 4000, f"{c.name} is {len(c.value)} bytes (split above 3,800)"


def test_tls_sign_in_hybrid_flow_and_cookie_attributes(proxies, proxy_idp: ProxyIdp, world: World,
                                                       proxy_tokens: TokenValidator):
    """`--tls`: App Service's hybrid flow (code id_token, form_post), a Secure; SameSite=None
    session cookie, and the app sees X-Forwarded-Proto https."""
    from pathlib import Path
    import os
    from easyauth_e2e import ARTIFACTS
    p = proxies.shared("tls", lambda: proxies.start("tls", port=proxy_idp.tls_proxy_port, tls=True))
    bundle = ARTIFACTS / "ca-bundle-tls-proxy.pem"
    bundle.write_text(Path(os.environ["SSL_CERT_FILE"]).read_text() + "\n" + p.ca_path.read_text())
    b = ProxyBrowser(bundle)
    signed = sign_in_alice_via(p, proxy_idp, world, browser=b)
    q = query_params(signed.sign_in.authorize_url)
    assert sorted(q.get("response_type", "").split()) == ["code", "id_token"], q
    assert q.get("response_mode") == "form_post" and q.get("nonce"), q
    assert q.get("redirect_uri") == p.url("/.auth/login/aad/callback"), q
    assert "form_post" in signed.sign_in.pages, signed.sign_in.pages
    assert signed.sign_in.final_location == p.url("/profile?x=1"), b.trace_text()
    check_app_headers(signed, world, proxy_tokens)
    assert signed.headers.get("x-forwarded-proto") == "https", signed.headers
    cookies = [c for c in signed.sign_in.callback.raw.headers.getlist("Set-Cookie")
               if c.startswith("AppServiceAuthSession")]
    assert cookies, signed.sign_in.callback.headers
    for c in cookies:
        attrs = [x.strip().lower() for x in c.split(";")[1:]]
        assert "secure" in attrs and "samesite=none" in attrs and "httponly" in attrs, c


def test_tls_responses_carry_hsts(proxies, proxy_idp: ProxyIdp):
    """`Strict-Transport-Security: max-age=31536000` on HTTPS responses (the
    module's own and the app's)."""
    p = proxies.shared("tls", lambda: proxies.start("tls", port=proxy_idp.tls_proxy_port, tls=True))
    missing = []
    for path, ua in (("/.auth/version", API_UA), ("/private", API_UA), ("/private", "Mozilla/5.0 x")):
        r = requests.get(p.url(path), headers={"User-Agent": ua}, verify=str(p.ca_path), allow_redirects=False,
                         timeout=10)
        if not r.headers.get("Strict-Transport-Security", "").startswith("max-age="):
            missing.append(f"{path} ({ua}) -> {r.status_code} {dict(r.headers)}")
    assert not missing, "no HSTS header on:\n" + "\n".join(missing)


def test_instances_sharing_keys_share_cookie_sessions(proxies, proxy_idp: ProxyIdp, world: World):
    """Token store off: WEBSITE_AUTH_ENCRYPTION_KEY / _SIGNING_KEY shared by two instances share
    sessions; an instance with other keys does not accept the cookie."""
    import os as _os
    from proxy_e2e import aad_settings
    keys = {"WEBSITE_AUTH_ENCRYPTION_KEY": _os.urandom(32).hex(), "WEBSITE_AUTH_SIGNING_KEY": _os.urandom(32).hex()}
    settings = aad_settings(proxy_idp, world, token_store=False)
    a = proxies.shared("keys-a", lambda: proxies.start("keys-a", settings, env=keys))
    b = proxies.shared("keys-b", lambda: proxies.start("keys-b", settings, env=keys))
    c = proxies.shared("keys-c", lambda: proxies.start("keys-c", settings))
    signed = sign_in_alice_via(a, proxy_idp, world)
    cookies = signed.browser.session_cookies()
    r = requests.get(b.url("/shared"), cookies=cookies, headers={"User-Agent": API_UA}, allow_redirects=False,
                     timeout=30)
    echo = require_echo(r, "the other instance with the same keys")
    assert echo["headers"].get("x-ms-client-principal-id") == world.alice.id, echo["headers"]
    r = requests.get(c.url("/shared"), cookies=cookies, headers={"User-Agent": API_UA}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 401, describe(r)


def test_refresh_by_bearer_needs_exactly_a_live_stored_token(frontend: ProxyServer, backend: ProxyServer,
                                                             proxy_idp: ProxyIdp, world: World):
    """`Authorization: Bearer` on /.auth/refresh names a session only by the exact access token the
    module stored: not a variant of it, not a token another site stored, not after logout."""
    signed = sign_in_alice_via(frontend, proxy_idp, world)
    token = signed.access_token
    h, p, s = token.split(".")
    variant = f"{h}.{p}.{s[:-4]}{'AAAA' if s[-4:] != 'AAAA' else 'BBBB'}"
    r = api_get(frontend.url("/.auth/refresh"), token=variant)
    assert r.status_code == 401, f"a token with another signature refreshed the session:\n{describe(r)}"
    # the back end never stored this token (it is a valid token for it, though)
    r = api_get(backend.url("/.auth/refresh"), token=token)
    assert r.status_code == 401, f"another site's token refreshed something:\n{describe(r)}"
    # after logout the stored token names nothing any more
    r = signed.browser.get(frontend.url("/.auth/logout"))
    assert r.status_code in (302, 303), describe(r)
    r = api_get(frontend.url("/.auth/refresh"), token=token)
    assert r.status_code == 401, f"/.auth/refresh revived a signed-out session:\n{describe(r)}"
