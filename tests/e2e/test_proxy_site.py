"""`easyauth proxy` started as the README shows (no --public-url): the site is the host each
request came to, as on App Service. A newcomer opens the address the banner prints, or
`localhost`, and signs in either way; a return address on the same host is honoured, one on
another host is not; a request without a well-formed Host is refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from easyauth_e2e import ARTIFACTS, World, describe
from proxy_e2e import (
    REDIRECTS,
    ProxyBrowser,
    ProxyFactory,
    ProxyIdp,
    ProxyServer,
    drive_provider,
    query_params,
    raw_request,
    require_echo,
)
from up_e2e import chromium_unavailable_reason

pytestmark = pytest.mark.proxy

E2E = Path(__file__).resolve().parent
SIGN_IN_SCRIPT = E2E / "node" / "browser_sign_in.mjs"


@pytest.fixture(scope="module")
def as_readme(proxies: ProxyFactory) -> ProxyServer:
    """`easyauth proxy --upstream ... --auth-settings ...`: no --public-url."""
    return proxies.start("as-readme", public_url=False)


def listening_url(proxy: ProxyServer) -> str:
    banner = proxy.banner()
    assert banner.get("listening"), f"no `listening` line in the banner:\n{proxy.log_tail()}"
    return banner["listening"][0]


def test_the_banner_names_the_address_and_the_callbacks_to_register(as_readme: ProxyServer):
    banner = as_readme.banner()
    assert listening_url(as_readme) == f"http://127.0.0.1:{as_readme.port}", banner
    assert "the host each request names" in banner["site"][0], banner
    uris = set(banner.get("redirect URI", []))
    assert {f"http://127.0.0.1:{as_readme.port}/.auth/login/aad/callback",
            f"http://localhost:{as_readme.port}/.auth/login/aad/callback"} <= uris, banner


def test_chromium_signs_in_at_the_printed_address_and_at_localhost(as_readme: ProxyServer,
                                                                   proxy_idp: ProxyIdp, world: World):
    reason = chromium_unavailable_reason()
    if reason:
        pytest.fail(reason)
    printed = listening_url(as_readme)
    urls = [f"{printed}/profile?x=1", f"http://localhost:{as_readme.port}/profile?x=2"]
    shots = ARTIFACTS / "proxy-site-chromium"
    cmd = ["node", str(SIGN_IN_SCRIPT), "--user", world.alice.upn, "--password", world.alice.password,
           "--screenshot-dir", str(shots), "--ca-file", str(proxy_idp.ca_path)]
    for u in urls:
        cmd += ["--url", u]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(E2E),
                       env=proxy_idp.node_env())
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result["ok"], json.dumps(result, indent=2) + "\n" + as_readme.log_tail()
    assert result["visits"][0]["signed_in_on_idp"], "the first visit signs in with a password"
    for visit, url in zip(result["visits"], urls):
        assert visit["final_url"] == url, visit
        echo = json.loads(visit["text"])
        h = echo["headers"]
        assert h.get("x-ms-client-principal-name") == world.alice.upn, echo
        assert h.get("x-ms-token-aad-access-token"), echo
        assert h.get("x-forwarded-host") == urlsplit(url).netloc, echo
        assert echo["query"] == urlsplit(url).query, echo


def sign_in_at(proxy: ProxyServer, idp: ProxyIdp, world: World, host: str,
               start_path: str) -> tuple[ProxyBrowser, str]:
    """A browser signs alice in starting at http://{host}{start_path}; returns where the
    callback sends it."""
    base = f"http://{host}"
    browser = ProxyBrowser(str(idp.ca_path))
    resp = browser.get(base + start_path)
    while resp.status_code in REDIRECTS and urlsplit(resp.headers["Location"]).netloc != idp.host:
        loc = resp.headers["Location"]
        resp = browser.get(loc if "://" in loc else base + loc)
    assert resp.status_code in REDIRECTS, describe(resp)
    authorize = resp.headers["Location"]
    assert query_params(authorize)["redirect_uri"] == f"{base}/.auth/login/aad/callback", authorize
    cb = drive_provider(browser, browser.get(authorize), f"{base}/.auth/login/aad/callback",
                        user=world.alice)
    assert cb.status_code in REDIRECTS, f"{describe(cb)}\n{browser.trace_text()}\n{proxy.log_tail()}"
    loc = cb.headers["Location"]
    return browser, (loc if "://" in loc else base + loc)


@pytest.mark.parametrize("host_of", ["127.0.0.1", "localhost"])
def test_a_return_address_on_the_same_host_is_honoured(as_readme: ProxyServer, proxy_idp: ProxyIdp,
                                                      world: World, host_of: str):
    host = f"{host_of}:{as_readme.port}"
    target = f"http://{host}/landing?a=1"
    browser, final = sign_in_at(as_readme, proxy_idp, world, host,
                                "/.auth/login/aad?post_login_redirect_uri=" + quote(target, safe=""))
    assert final == target, final
    echo = require_echo(browser.get(final), "the page the user came from")
    assert echo["headers"].get("x-ms-client-principal-name") == world.alice.upn, echo


def test_a_return_address_on_another_host_is_not(as_readme: ProxyServer, proxy_idp: ProxyIdp,
                                                world: World):
    other = f"http://localhost:{as_readme.port}/landing"
    _, final = sign_in_at(as_readme, proxy_idp, world, f"127.0.0.1:{as_readme.port}",
                          "/.auth/login/aad?post_login_redirect_uri=" + quote(other, safe=""))
    assert urlsplit(final).path == "/.auth/login/done", final
    assert urlsplit(final).netloc == f"127.0.0.1:{as_readme.port}", final


def test_a_callback_on_another_host_than_the_sign_in_start_is_refused(as_readme: ProxyServer,
                                                                      proxy_idp: ProxyIdp, world: World):
    """The sign-in starts at 127.0.0.1; the provider's answer is delivered to localhost with the
    same browser's Nonce cookie copied over (cookies ignore ports, not host names)."""
    base = f"http://127.0.0.1:{as_readme.port}"
    browser = ProxyBrowser(str(proxy_idp.ca_path))
    resp = browser.get(base + "/.auth/login/aad")
    cb = drive_provider(browser, browser.get(resp.headers["Location"]), f"{base}/.auth/login/aad/callback",
                        user=world.alice, submit=False)
    nonce = browser.cookie("Nonce")
    assert nonce
    moved = cb.url.replace(f"127.0.0.1:{as_readme.port}", f"localhost:{as_readme.port}")
    r = browser.get(moved, headers={"Cookie": f"Nonce={nonce}"})
    assert r.status_code == 401, describe(r)
    assert "another site" in r.text, r.text


@pytest.mark.parametrize("host", ["evil.test@127.0.0.1", "127.0.0.1/evil", "a b", "127.0.0.1:99999",
                                  "", "[::1"])
def test_a_malformed_host_is_refused(as_readme: ProxyServer, host: str):
    r = raw_request(as_readme.port, "GET", "/.auth/login/aad", [("Host", host)])
    assert r.status == 400, r
    assert r.echo() is None


def test_a_well_formed_foreign_host_only_reaches_a_callback_the_provider_refuses(as_readme: ProxyServer,
                                                                               proxy_idp: ProxyIdp):
    """Host: evil.test makes the callback http://evil.test/...; the provider has no such redirect
    URI registered, so the code never goes there (AADSTS50011)."""
    r = raw_request(as_readme.port, "GET", "/.auth/login/aad", {"Host": "evil.test"})
    assert r.status == 302, r
    authorize = r.header("Location") or ""
    assert query_params(authorize)["redirect_uri"] == "http://evil.test/.auth/login/aad/callback"
    page = ProxyBrowser(str(proxy_idp.ca_path)).get(authorize)
    assert page.status_code == 400 and "AADSTS50011" in page.text, describe(page)
