"""`easyauth forward-auth` behind a real nginx (`auth_request`) and a real Caddy (`forward_auth`),
each in front of the echo app, with the local identity provider.

The front proxies run the configurations of docs/forward-auth.md verbatim: the fenced blocks after
`<!-- forward-auth-e2e: nginx -->` and `<!-- forward-auth-e2e: caddy -->` are read from the doc
and only their three example addresses are replaced by this run's ports. Each proxy is private:
its own prefix/config in a temporary folder, a free loopback port, stopped at the end.

Covers: a real sign-in through the front proxy's address (127.0.0.1 and localhost), the identity
headers the app gets, bearer tokens, 401/403 as configured, and spoofed X-MS-* headers never
reaching the app (anonymous and signed in).

    cargo xtask test --only-e2e -- -k forward_auth
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from easyauth_e2e import ARTIFACTS, World, describe, free_port
from proxy_e2e import (
    SECRET_SETTING,
    EchoApp,
    ProxyBrowser,
    ProxyIdp,
    ProxyServer,
    aad_settings,
    api_get,
    app_token,
    auth_headers,
    browser_sign_in,
    claim_values,
    decode_principal,
    query_params,
    require_echo,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "forward-auth.md"
NGINX = "/usr/sbin/nginx"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"

# The example addresses in the doc's configurations.
DOC_SITE_NGINX = "127.0.0.1:8080"
DOC_SITE_CADDY = ":8080 {"
DOC_EASYAUTH = "127.0.0.1:8081"
DOC_APP = "127.0.0.1:3000"

MALLORY = "mallory@evil.test"
# Identity headers the documented configurations overwrite (nginx) or delete (Caddy), in the
# spellings a client might try.
SPOOF = {
    "X-MS-CLIENT-PRINCIPAL-NAME": MALLORY,
    "x-ms-client-principal-id": "00000000-0000-0000-0000-000000000bad",
    "X-Ms-Client-Principal-Idp": "evil",
    "X-MS-CLIENT-PRINCIPAL": "eyJhdXRoX3R5cCI6ImV2aWwifQ==",
    "X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged",
    "X_MS_CLIENT_PRINCIPAL_NAME": MALLORY,
}
# One the nginx configuration does not list (another provider's token header).
UNLISTED = {"X-MS-TOKEN-GOOGLE-ACCESS-TOKEN": "forged"}


def doc_block(name: str) -> str:
    """The fenced block after `<!-- forward-auth-e2e: name -->` in docs/forward-auth.md."""
    text = DOC.read_text()
    marker = f"<!-- forward-auth-e2e: {name} -->"
    assert marker in text, f"{DOC} has no {marker}"
    after = text.split(marker, 1)[1]
    fence = after.index("```")
    body_start = after.index("\n", fence) + 1
    return after[body_start:after.index("```", body_start)]


def replaced(text: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        assert old in text, f"the documented configuration no longer contains {old!r}"
        text = text.replace(old, new)
    return text


class FrontProxy:
    """A private nginx or Caddy in front of the echo app, asking easyauth."""

    kind = ""

    def __init__(self, workdir: Path, easyauth: str, app: str):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.easyauth = easyauth
        self.app = app
        self.proc: subprocess.Popen | None = None
        self.log_path = ARTIFACTS / f"{self.kind}-{self.port}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> "FrontProxy":
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        log.write(("$ " + " ".join(self.command()) + "\n").encode())
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env(),
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                r = requests.get(self.url("127.0.0.1", "/.auth/version"), timeout=2)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} not ready: {last}\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def url(self, hostname: str, path: str) -> str:
        return f"http://{hostname}:{self.port}{path}"

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for p in [self.log_path, *self.extra_logs()]:
            if p.exists():
                out += [f"--- {p.name} ---", *p.read_text(errors="replace").splitlines()[-lines:]]
        return "\n".join(out)

    def extra_logs(self) -> list[Path]:
        return []


class Nginx(FrontProxy):
    kind = "nginx"

    def config(self) -> str:
        server = replaced(doc_block("nginx"), {
            DOC_SITE_NGINX: f"127.0.0.1:{self.port}",
            DOC_EASYAUTH: self.easyauth,
            DOC_APP: self.app,
        })
        d = self.workdir
        # Workers of a root master run as root here: the temporary folder is private.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (f"{user}worker_processes 1;\nerror_log {d}/error.log info;\npid {d}/nginx.pid;\n"
                f"events {{ worker_connections 256; }}\n"
                f"http {{\n    access_log {d}/access.log;\n"
                f"    client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n"
                f"    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n"
                f"    scgi_temp_path {d}/scgi;\n\n{server}}}\n")

    def command(self) -> list[str]:
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        return [NGINX, "-p", str(self.workdir), "-c", str(conf), "-g", "daemon off;"]

    def extra_logs(self) -> list[Path]:
        return [self.workdir / "error.log"]


class Caddy(FrontProxy):
    kind = "caddy"

    def command(self) -> list[str]:
        caddyfile = self.workdir / "Caddyfile"
        caddyfile.write_text(replaced(doc_block("caddy"), {
            DOC_SITE_CADDY: f":{self.port} {{",
            DOC_EASYAUTH: self.easyauth,
            DOC_APP: self.app,
        }))
        return [shutil.which("caddy") or "caddy", "run", "--config", str(caddyfile),
                "--adapter", "caddyfile"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Caddy keeps state under HOME / XDG dirs: keep it in the test's folder.
        env.update(HOME=str(self.workdir), XDG_DATA_HOME=str(self.workdir / "data"),
                   XDG_CONFIG_HOME=str(self.workdir / "config"))
        return env


class ForwardAuthServer(ProxyServer):
    """`easyauth forward-auth`, trusting the front proxy on loopback."""

    def command(self) -> list[str]:
        return [self.binary, "forward-auth", "--auth-settings", str(self.settings_path),
                "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
                "--trusted-proxy", "127.0.0.1", "--development"]


class Site:
    """One front proxy as a browser addresses it (by `hostname`), for `browser_sign_in`."""

    def __init__(self, front: FrontProxy, easyauth: ForwardAuthServer, hostname: str):
        self.front, self.easyauth, self.hostname = front, easyauth, hostname

    @property
    def host(self) -> str:
        return f"{self.hostname}:{self.front.port}"

    def url(self, path: str) -> str:
        return self.front.url(self.hostname, path)

    def log_tail(self) -> str:
        return self.front.log_tail() + "\n" + self.easyauth.log_tail()


class Sites:
    """Front proxy + easyauth pairs, one per (kind, configuration), for the session."""

    def __init__(self, binary: str, world: World, idp: ProxyIdp, echo: EchoApp, root: Path):
        self.binary, self.world, self.idp, self.echo, self.root = binary, world, idp, echo, root
        self.cache: dict[tuple[str, str], tuple[FrontProxy, ForwardAuthServer]] = {}

    def settings(self, config: str) -> dict[str, Any]:
        if config == "redirect":
            return aad_settings(self.idp, self.world)
        if config == "return401":
            return aad_settings(self.idp, self.world, action="Return401", excluded=["/public/*"])
        raise ValueError(config)

    def get(self, kind: str, config: str) -> tuple[FrontProxy, ForwardAuthServer]:
        key = (kind, config)
        if key not in self.cache:
            if kind == "nginx":
                check_nginx()
            else:
                check_caddy()
            easyauth = ForwardAuthServer(
                self.binary, f"forward-auth-{kind}-{config}", self.settings(config), "",
                self.root / f"easyauth-{kind}-{config}",
                env={SECRET_SETTING: self.world.webapp.secret},
                ca_bundle=Path(os.environ["SSL_CERT_FILE"]))
            try:
                easyauth.start()
                cls = Nginx if kind == "nginx" else Caddy
                front = cls(self.root / f"{kind}-{config}", easyauth.host,
                            self.echo.url.removeprefix("http://")).start()
            except RuntimeError as e:
                easyauth.stop()
                pytest.fail(str(e))
            self.cache[key] = (front, easyauth)
        return self.cache[key]

    def site(self, kind: str, config: str, hostname: str = "127.0.0.1") -> Site:
        front, easyauth = self.get(kind, config)
        return Site(front, easyauth, hostname)

    def stop_all(self) -> None:
        for front, easyauth in self.cache.values():
            front.stop()
            easyauth.stop()


def check_nginx() -> None:
    if not Path(NGINX).is_file():
        pytest.fail(f"{NGINX} is missing (cargo xtask test installs Debian's nginx)")
    out = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    if "http_auth_request_module" not in out:
        pytest.fail("this nginx lacks http_auth_request_module (install Debian's nginx, not nginx-light)")


def check_caddy() -> None:
    if shutil.which("caddy") is None:
        pytest.fail("caddy is missing (cargo xtask test installs Debian's caddy)")


@pytest.fixture(scope="session")
def forward_sites(proxy_binary: str, world: World, proxy_idp: ProxyIdp, echo_app: EchoApp,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    sites = Sites(proxy_binary, world, proxy_idp, echo_app, tmp_path_factory.mktemp("forward-auth"))
    yield sites
    sites.stop_all()


def assert_no_spoof(echo: dict[str, Any], context: str) -> None:
    """No identity header the client made up reached the app."""
    h = auth_headers(echo)
    assert not any("_" in k for k in h), f"{context}: an `_` spelling reached the app: {sorted(h)}"
    assert MALLORY not in str(h), f"{context}: a spoofed identity reached the app: {h}"
    for name, value in {**SPOOF, **UNLISTED}.items():
        got = echo["headers"].get(name.lower())
        assert got != value, f"{context}: spoofed {name} reached the app"
    assert "x-ms-token-google-access-token" not in echo["headers"], context


def assert_no_placeholders(echo: dict[str, Any], context: str) -> None:
    """Every identity header the app got has a real value (not empty, not a proxy's placeholder)."""
    for k, v in auth_headers(echo).items():
        assert v and "{" not in v, f"{context}: {k}: {v!r}"


FRONTS = ["nginx", "caddy"]


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("kind", FRONTS)
def test_forward_auth_sign_in_through_the_front_proxy(forward_sites: Sites, proxy_idp: ProxyIdp,
                                                      world: World, kind: str, hostname: str):
    site = forward_sites.site(kind, "redirect", hostname)
    browser = ProxyBrowser(os.environ["SSL_CERT_FILE"])
    # Anonymous, with spoofed identity headers: sent to sign in on the site's own host; the app
    # is not reached.
    r = browser.get(site.url("/profile?x=1"), headers=SPOOF)
    assert r.status_code == 302, f"{describe(r)}\n{site.log_tail()}"
    login = urljoin(r.url, r.headers["Location"])
    assert urlsplit(login).netloc == site.host, login
    assert urlsplit(login).path == "/.auth/login/aad", login
    assert query_params(login)["post_login_redirect_uri"] == "/profile?x=1", login

    si = browser_sign_in(browser, site, site.url("/profile?x=1"), provider_host=proxy_idp.host,
                         user=world.alice)
    assert si.final is not None, f"the callback left the site: {si.final_location}"
    echo = require_echo(si.final, f"{kind}: final page {si.final_location}")
    assert (echo["path"], echo["query"]) == ("/profile", "x=1"), echo
    h = echo["headers"]
    assert h.get("x-ms-client-principal-name") == world.alice.upn, auth_headers(echo)
    assert h.get("x-ms-client-principal-id") == world.alice.id, auth_headers(echo)
    assert h.get("x-ms-client-principal-idp") == "aad", auth_headers(echo)
    principal = decode_principal(h["x-ms-client-principal"])
    assert world.alice.id in claim_values(principal, OID_CLAIM), principal
    assert h.get("x-ms-token-aad-access-token", "").count(".") == 2, auth_headers(echo)
    assert h.get("x-ms-token-aad-id-token", "").count(".") == 2, auth_headers(echo)
    assert_no_placeholders(echo, kind)

    # Signed in, with spoofed identity headers: the app gets alice's, never the client's.
    r = browser.get(site.url("/orders"), headers={**SPOOF, **(UNLISTED if kind == "caddy" else {})})
    echo = require_echo(r, f"{kind}: signed in with spoofed headers")
    assert echo["headers"].get("x-ms-client-principal-name") == world.alice.upn, auth_headers(echo)
    assert echo["headers"].get("x-ms-client-principal-id") == world.alice.id
    assert echo["headers"].get("x-ms-token-aad-access-token") != "forged"
    assert_no_spoof(echo, f"{kind} signed in")

    # /.auth/me through the front proxy answers for the same session.
    r = browser.get(site.url("/.auth/me"))
    assert r.status_code == 200, describe(r)
    assert r.json()[0]["user_id"] == world.alice.upn


@pytest.mark.parametrize("kind", FRONTS)
def test_forward_auth_bearer_tokens_and_authorization(forward_sites: Sites, proxy_idp: ProxyIdp,
                                                      world: World, kind: str):
    site = forward_sites.site(kind, "redirect")
    scope = f"{world.backend.identifier_uri}/.default"
    # An allowed application's token gets through, with its identity and none of the client's.
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret, scope)
    r = api_get(site.url("/api/orders"), token=token, headers=SPOOF)
    echo = require_echo(r, f"{kind}: webapp's bearer token")
    assert echo["headers"].get("x-ms-client-principal-idp") == "aad", auth_headers(echo)
    assert echo["headers"].get("authorization") == f"Bearer {token}"
    assert_no_spoof(echo, f"{kind} bearer")
    assert_no_placeholders(echo, f"{kind} bearer")
    # an app-only token has no session: no token headers
    assert not any(k.startswith("x-ms-token-") for k in echo["headers"]), auth_headers(echo)
    # A client not in allowedApplications: 403 from easyauth, passed on by the proxy.
    other = app_token(proxy_idp, world.other_client.app_id, world.other_client.secret, scope)
    r = api_get(site.url("/api/orders"), token=other)
    assert r.status_code == 403, f"{describe(r)}\n{site.log_tail()}"
    assert "x-ms-client-principal" not in r.text
    # No credential, not a browser: App Service's 401 with its challenge.
    r = api_get(site.url("/api/orders"))
    assert r.status_code == 401, f"{describe(r)}\n{site.log_tail()}"
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer realm="), describe(r)
    # A forged token: 401, never the app.
    r = api_get(site.url("/api/orders"), token=token[:-4] + "AAAA")
    assert r.status_code == 401, describe(r)


@pytest.mark.parametrize("kind", FRONTS)
def test_forward_auth_return401_and_anonymous_paths(forward_sites: Sites, kind: str):
    site = forward_sites.site(kind, "return401")
    browser = ProxyBrowser(os.environ["SSL_CERT_FILE"])
    # Return401: a browser gets 401 too, no redirect.
    r = browser.get(site.url("/profile"), headers=SPOOF)
    assert r.status_code == 401, f"{describe(r)}\n{site.log_tail()}"
    assert "Location" not in r.headers
    # An excluded path reaches the app anonymously, without any of the client's identity headers.
    r = browser.get(site.url("/public/page"), headers=SPOOF)
    echo = require_echo(r, f"{kind}: excluded path")
    assert auth_headers(echo) == {}, auth_headers(echo)
    assert_no_spoof(echo, f"{kind} anonymous")


def test_forward_auth_nginx_refuses_identity_headers_it_cannot_remove(forward_sites: Sites):
    """nginx cannot delete headers by pattern: a client's identity header outside the documented
    list is refused with 403 instead of passing to the app."""
    site = forward_sites.site("nginx", "return401")
    r = ProxyBrowser(os.environ["SSL_CERT_FILE"]).get(site.url("/public/x"), headers=UNLISTED)
    assert r.status_code == 403, f"{describe(r)}\n{site.log_tail()}"


@pytest.mark.parametrize("kind", FRONTS)
def test_forward_auth_checks_are_not_public(forward_sites: Sites, kind: str):
    """The check endpoints answer only the front proxy's own subrequests."""
    site = forward_sites.site(kind, "redirect")
    for style in ["nginx", "caddy", "envoy/x"]:
        r = requests.get(site.url(f"/.auth/forward/{style}"),
                         headers={"X-Original-URI": "/", "X-Forwarded-Uri": "/"}, timeout=10,
                         allow_redirects=False)
        assert r.status_code == 404, describe(r)
