"""`easyauth proxy` settings that change behaviour: allowedExternalRedirectUrls, cookie expiration
and the refresh grace, apiPrefix, disableWWWAuthenticate, jwtClaimChecks."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote, urljoin, urlsplit

import pytest
import requests

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
    drive_provider,
    require_echo,
    sign_in_alice_via,
)

pytestmark = pytest.mark.proxy

ALLOWED = "https://allowed.test/app"


@pytest.fixture(scope="module")
def external(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp) -> ProxyServer:
    return proxies.shared("external-redirects", lambda: proxies.start(
        "external-redirects", aad_settings(proxy_idp, world, extra_login={"allowedExternalRedirectUrls": [ALLOWED]})))


def _landing(proxy: ProxyServer, idp: ProxyIdp, world: World, target: str) -> str:
    """Signs in through /.auth/login/aad?post_login_redirect_uri=<target>; returns the absolute
    URL of the first Location after the callback."""
    b = ProxyBrowser(idp.ca_path)
    resp = b.get(proxy.url("/.auth/login/aad?post_login_redirect_uri=" + quote(target, safe="")))
    for _ in range(4):
        assert resp.status_code in REDIRECTS, describe(resp)
        loc = urljoin(resp.url, resp.headers["Location"])
        if urlsplit(loc).netloc == idp.host:
            break
        resp = b.get(assert_on_site(proxy, loc))
    cb = drive_provider(b, b.get(loc), proxy.url("/.auth/login/aad/callback"), user=world.alice)
    assert cb.status_code in REDIRECTS, describe(cb)
    return cb.headers["Location"]


def test_allowed_external_redirect_is_honoured(external: ProxyServer, proxy_idp: ProxyIdp, world: World):
    loc = _landing(external, proxy_idp, world, ALLOWED + "/page?x=1")
    assert loc == ALLOWED + "/page?x=1", loc


@pytest.mark.parametrize("target", [
    "https://allowed.test.evil.test/app", "https://allowed.test@evil.test/app", "https://evil.test/app",
    "https://evil.test/https://allowed.test/app", "http://allowed.test/app", "https://allowed.test:444/app",
    "https://evil.test?https://allowed.test/app", "//allowed.test.evil.test/app",
    "https://allowed.test%2eevil.test/app", "https://allowed.test/app/../../evil",
])
def test_lookalikes_of_the_allowed_external_url_are_refused(external: ProxyServer, proxy_idp: ProxyIdp,
                                                            world: World, target: str):
    loc = _landing(external, proxy_idp, world, target)
    resolved = urljoin(external.url("/"), loc.replace("\\", "/"))
    u = urlsplit(resolved)
    ok_external = resolved.startswith(ALLOWED + "/") and u.netloc == "allowed.test" and "/.." not in u.path
    assert ok_external or assert_on_site(external, loc, f"{target!r}"), loc


def test_csrf_allows_an_allowed_external_origin(external: ProxyServer, proxy_idp: ProxyIdp, world: World):
    signed = sign_in_alice_via(external, proxy_idp, world)
    r = signed.browser.request("POST", external.url("/submit"), data=b"x=1",
                               headers={"Origin": "https://allowed.test", "Connection": "close"})
    require_echo(r, "POST from an origin in allowedExternalRedirectUrls")
    r = signed.browser.request("POST", external.url("/submit"), data=b"x=1",
                               headers={"Origin": "https://allowed.test.evil.test", "Connection": "close"})
    assert r.status_code == 403, describe(r)


def test_session_expiry_and_refresh_grace(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    """cookieExpiration 3 s: afterwards the browser is signed out, /.auth/refresh (within
    tokenRefreshExtensionHours) revives the session; with no grace it cannot."""
    short = {"cookieExpiration": {"convention": "FixedTime", "timeToExpiration": "00:00:03"}}
    p = proxies.shared("short-session", lambda: proxies.start(
        "short-session", aad_settings(proxy_idp, world, extra_login=short)))
    no_grace = {"cookieExpiration": {"convention": "FixedTime", "timeToExpiration": "00:00:03"},
                "tokenStore": {"enabled": True, "tokenRefreshExtensionHours": 0}}
    q = proxies.shared("short-session-no-grace", lambda: proxies.start(
        "short-session-no-grace", aad_settings(proxy_idp, world, extra_login=no_grace)))
    a = sign_in_alice_via(p, proxy_idp, world)
    b = sign_in_alice_via(q, proxy_idp, world)
    time.sleep(3.5)
    for s, proxy in ((a, p), (b, q)):
        r = s.browser.get(proxy.url("/page"))
        assert r.status_code == 302, f"{proxy.name}: the session outlived cookieExpiration:\n{describe(r)}"
    r = a.browser.get(p.url("/.auth/refresh"))
    assert r.status_code == 200, f"refresh within the grace period:\n{describe(r)}"
    require_echo(a.browser.get(p.url("/page")), "revived session")
    r = b.browser.get(q.url("/.auth/refresh"))
    assert r.status_code == 401, f"refresh without grace revived an expired session:\n{describe(r)}"


def test_api_prefix_moves_the_routes(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    settings = aad_settings(proxy_idp, world)
    settings["properties"]["httpSettings"] = {"routes": {"apiPrefix": "/.easyauth"}}
    p = proxies.start("api-prefix", settings)
    r = requests.get(p.url("/.easyauth/version"), timeout=10)
    assert r.status_code == 200 and "version" in r.json(), describe(r)
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(p.url("/private"))
    loc = r.headers.get("Location", "")
    assert r.status_code == 302 and ("/.easyauth/login/aad" in loc or urlsplit(loc).netloc == proxy_idp.host), \
        describe(r)
    # /.auth is an ordinary (protected) path of the app now
    r = api_get(p.url("/.auth/me"))
    assert r.status_code == 401 and "needs a signed-in session" not in r.text, describe(r)


def test_disable_www_authenticate(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    settings = aad_settings(proxy_idp, world, action="Return401")
    settings["properties"]["identityProviders"]["azureActiveDirectory"]["login"]["disableWWWAuthenticate"] = True
    p = proxies.start("no-www-authenticate", settings)
    r = api_get(p.url("/x"))
    assert r.status_code == 401 and "WWW-Authenticate" not in r.headers, describe(r)


def test_jwt_claim_checks_allowed_client_applications(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    settings = aad_settings(proxy_idp, world, client_id=world.backend.app_id,
                            audiences=[world.backend.identifier_uri], allowed_apps=[])
    settings["properties"]["identityProviders"]["azureActiveDirectory"]["validation"]["jwtClaimChecks"] = {
        "allowedClientApplications": [world.webapp.app_id]}
    p = proxies.start("claim-checks", settings, secret=world.backend.secret)
    ok = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret, f"{world.backend.identifier_uri}/.default")
    require_echo(api_get(p.url("/x"), token=ok), "allowed client application")
    other = app_token(proxy_idp, world.other_client.app_id, world.other_client.secret,
                      f"{world.backend.identifier_uri}/.default")
    r = api_get(p.url("/x"), token=other)
    assert r.status_code == 403, describe(r)


def test_unknown_provider_login_is_not_a_redirect_elsewhere(frontend: ProxyServer):
    r = requests.get(frontend.url("/.auth/login/nosuchprovider"), headers={"User-Agent": BROWSER_UA},
                     allow_redirects=False, timeout=10)
    assert r.status_code in (400, 404), describe(r)
    r = requests.get(frontend.url("/.auth/nosuchroute"), headers={"User-Agent": API_UA},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 404 and "headers" not in r.text, describe(r)


def test_without_development_refusals_are_not_explained(proxies: ProxyFactory, world: World,
                                                         proxy_idp: ProxyIdp):
    """Without --development the reasons go to the log only (docs: "with --development the body
    says it too")."""
    p = proxies.start("production", aad_settings(proxy_idp, world, client_id=world.backend.app_id,
                                                 audiences=[world.backend.identifier_uri],
                                                 allowed_apps=[world.webapp.app_id]),
                      secret=world.backend.secret, development=False)
    graph = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret, "https://graph.microsoft.com/.default")
    other = app_token(proxy_idp, world.other_client.app_id, world.other_client.secret,
                      f"{world.backend.identifier_uri}/.default")
    leaks = []
    for what, token, status in (("wrong audience", graph, 401), ("other client", other, 403)):
        r = api_get(p.url("/x"), token=token)
        assert r.status_code == status, describe(r)
        text = r.text.lower()
        if any(w in text for w in ("audience", "allowedapplications", world.other_client.app_id, "graph")):
            leaks.append(f"{what}: body {r.text!r}")
        for k, v in r.headers.items():
            if k.lower().startswith("x-easyauth") or "allowedApplications" in v or "allowedAudiences" in v:
                leaks.append(f"{what}: header {k}: {v}")
    assert not leaks, "refusal reasons sent to the client without --development:\n" + "\n".join(leaks)
    assert "not in allowedAudiences" in p.log_path.read_text(), "the reason is not in the log"


def _shapes(proxy_idp: ProxyIdp, world: World) -> dict[str, dict]:
    v2 = aad_settings(proxy_idp, world)
    backend = world.backend.identifier_uri
    return {
        "arm": {"id": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Web/sites/app/config/authsettingsV2",
                "name": "authsettingsV2", "type": "Microsoft.Web/sites/config", "location": "West Europe", **v2},
        "properties": v2["properties"],
        "v1": {"properties": {
            "enabled": True, "unauthenticatedClientAction": "RedirectToLoginPage",
            "defaultProvider": "AzureActiveDirectory", "tokenStoreEnabled": True,
            "clientId": world.webapp.app_id, "clientSecretSettingName": "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
            "issuer": proxy_idp.issuer_v2, "allowedAudiences": [backend],
            "additionalLoginParams": [f"scope=openid profile offline_access {backend}/user_impersonation"]}},
    }


@pytest.mark.parametrize("shape", ["arm", "properties", "v1"])
def test_settings_shapes_sign_in(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp, shape: str):
    """The same site described as the whole ARM resource, its `properties`, or v1 authsettings."""
    p = proxies.start(f"shape-{shape}", _shapes(proxy_idp, world)[shape])
    assert api_get(p.url("/x")).status_code == 401
    signed = sign_in_alice_via(p, proxy_idp, world)
    h = signed.headers
    assert h.get("x-ms-client-principal-id") == world.alice.id, sorted(h)
    assert h.get("x-ms-token-aad-access-token"), sorted(h)


def test_invalid_settings_are_refused_at_start_up(proxy_binary: str, tmp_path, echo_app):
    """A typo in the settings stops the proxy with a message naming the field (no half-configured
    module that lets everything through)."""
    import subprocess
    from easyauth_e2e import free_port
    bad = tmp_path / "bad.json"
    bad.write_text('{"properties": {"platform": {"enabled": true}, "globalValidation": '
                   '{"requireAuthentication": true, "unauthenticatedClientAction": "RedirectToLoginPag"}}}')
    r = subprocess.run([proxy_binary, "proxy", "--upstream", echo_app.url, "--auth-settings", str(bad),
                        "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r
    assert "unauthenticatedClientAction" in (r.stderr + r.stdout), r.stderr[-2000:]


def test_preserve_url_fragments_for_logins(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp):
    """preserveUrlFragmentsForLogins: /.auth/login answers a browser with a page whose script
    reads the #fragment and comes back with it; the sign-in then ends on the page *with* its
    fragment. Without the setting the login route redirects straight away."""
    p = proxies.start("fragments", aad_settings(
        proxy_idp, world, extra_login={"preserveUrlFragmentsForLogins": True}))
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(p.url("/.auth/login/aad?post_login_redirect_uri=%2Fdocs%3Fv%3D2"))
    assert r.status_code == 200 and "window.location.hash" in r.text, describe(r)
    assert "no-store" in r.headers.get("Cache-Control", ""), describe(r)
    # What the script does with `#section-2`: the same URL plus the fragment parameter.
    m = re.search(r'window\.location\.replace\(("[^"]*")\+', r.text)
    assert m, r.text
    next_url = json.loads(m.group(1)) + quote("section-2/a b", safe="")
    assert next_url.startswith("/.auth/login/aad?post_login_redirect_uri=%2Fdocs%3Fv%3D2&"), next_url
    # The page escapes what it echoes: a query that tries to close the script stays inert.
    evil = b.get(p.url("/.auth/login/aad?x=</script><script>alert(1)</script>"))
    assert "</script><script>alert(1)" not in evil.text, evil.text

    r = b.get(p.url(next_url))
    assert r.status_code in REDIRECTS and urlsplit(r.headers["Location"]).netloc == proxy_idp.host, describe(r)
    cb = drive_provider(b, b.get(r.headers["Location"]), p.url("/.auth/login/aad/callback"),
                        user=world.alice)
    assert cb.status_code in REDIRECTS, describe(cb)
    assert cb.headers["Location"] == "/docs?v=2#section-2/a%20b", describe(cb)

    # A fragment never changes where the browser goes: a refused target stays refused.
    r = b.get(p.url("/.auth/login/aad?post_login_redirect_uri=https%3A%2F%2Fevil.test%2F&easyauth_fragment=x"))
    assert r.status_code in REDIRECTS, describe(r)
    cb = drive_provider(b, b.get(r.headers["Location"]), p.url("/.auth/login/aad/callback"),
                        user=world.alice)
    assert "evil.test" not in cb.headers.get("Location", ""), describe(cb)

    # Off (the default): straight to the provider, no page.
    plain = proxies.shared("plain-fragments", lambda: proxies.start("plain-fragments", aad_settings(proxy_idp, world)))
    r = ProxyBrowser(proxy_idp.ca_path).get(plain.url("/.auth/login/aad?post_login_redirect_uri=%2Fdocs"))
    assert r.status_code in REDIRECTS, describe(r)
