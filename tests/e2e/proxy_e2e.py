"""Helpers and fixtures for the `easyauth proxy` end-to-end tests (test_proxy_*.py).

- `ProxyIdp`: a second `easyauth idp` whose directory adds what App Service needs (web redirect
  URIs `http://127.0.0.1/.auth/login/aad/callback` and `/.auth/logout/complete`, id token issuance
  for the hybrid flow, the back end pre-authorizing the front end for `user_impersonation`), with a
  short access-token lifetime; it can also mint tokens with its own signing key (read from its
  SQLite store) for the expired / not-yet-valid / wrong-issuer cases.
- `EchoApp`: the upstream (apps/echo_app.py).
- `ProxyServer`: `easyauth proxy` with a generated authsettingsV2 file.
- `ProxyBrowser` + `browser_sign_in`: a requests-based browser (Mozilla UA, cookie jar, manual
  redirects) that goes from a protected page through the provider's pages back to the page.
- `OidcProvider`: node oidc-provider (node/oidc_provider.mjs) over https with a generated CA.
- `raw_request`: http.client with the request target sent byte for byte (no normalisation).

Run (the tests skip themselves, with the reason, while `easyauth proxy --help` fails):

    cargo xtask test --only-e2e -- -k proxy
    EASYAUTH_BIN=$PWD/target/debug/easyauth target/e2e/venv/bin/python -m pytest tests/e2e -k proxy

Logs: target/test-artifacts/proxy-<n>-<name>.log (command line, settings, the proxy's log),
echo-<port>.log, oidc-provider.log.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from easyauth_e2e import (
    ARTIFACTS,
    IdpServer,
    TokenValidator,
    User,
    World,
    b64url,
    b64url_decode,
    describe,
    free_port,
    parse_forms,
)

E2E = Path(__file__).resolve().parent
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/130.0 Safari/537.36 easyauth-e2e")
API_UA = "easyauth-e2e-api-client/1.0"
PROXY_ACCESS_TOKEN_LIFETIME = 10  # seconds: /.auth/refresh with an expired token is tested
SECRET_SETTING = "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
MYOIDC_SECRET_SETTING = "MYOIDC_AUTHENTICATION_SECRET"
REDIRECTS = (301, 302, 303, 307, 308)


# --------------------------------------------------------------------------------------------
# Is `easyauth proxy` there?


def proxy_unavailable_reason(binary: str) -> str | None:
    try:
        r = subprocess.run([binary, "proxy", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`easyauth proxy --help` could not run: {e}"
    if r.returncode != 0:
        return ("`easyauth proxy` is not implemented in this build (`easyauth proxy --help` exited "
                f"{r.returncode}: {((r.stderr or r.stdout).strip().splitlines() or [''])[0][:200]})")
    return None


# --------------------------------------------------------------------------------------------
# The identity provider for the proxy tests


def proxy_directory(world: World) -> dict[str, Any]:
    """The session's directory plus what the App Service scenario needs: webapp is the front end
    (hybrid flow, loopback callbacks of any port, delegated backend/user_impersonation which the
    back end pre-authorizes), backend the API (v1 tokens, aud `api://<backend>`), other-client
    the third app."""
    d = copy.deepcopy(world.directory())
    apps = {a["appId"]: a for a in d["applications"]}
    callbacks = ["http://127.0.0.1/.auth/login/aad/callback", "http://127.0.0.1/.auth/logout/complete",
                 "http://localhost/.auth/login/aad/callback", "http://localhost/.auth/logout/complete"]
    for app_id in (world.webapp.app_id, world.backend.app_id):
        web = apps[app_id]["web"]
        web["redirectUris"] = list(dict.fromkeys([*web["redirectUris"], *callbacks]))
        web["implicitGrantSettings"] = {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": False}
    apps[world.backend.app_id]["api"]["preAuthorizedApplications"] = [
        {"appId": world.webapp.app_id, "delegatedPermissionIds": [world.backend.scope_id]},
    ]
    return d


class ProxyIdp(IdpServer):
    """`easyauth idp` with `proxy_directory` and a short access-token lifetime."""

    def __init__(self, binary: str, world: World, workdir: Path):
        super().__init__(binary, world, workdir, access_token_lifetime=PROXY_ACCESS_TOKEN_LIFETIME)
        # a port reserved for the `--tls` proxy: https redirect URIs are registered with their port
        self.tls_proxy_port = free_port()
        d = proxy_directory(world)
        web = next(a for a in d["applications"] if a["appId"] == world.webapp.app_id)["web"]
        web["redirectUris"] += [f"https://127.0.0.1:{self.tls_proxy_port}/.auth/login/aad/callback",
                                f"https://127.0.0.1:{self.tls_proxy_port}/.auth/logout/complete"]
        self.directory_path.write_text(json.dumps(d, indent=2))

    def signing_key(self) -> tuple[str, Any]:
        """(kid, private key) of the active token signing key, from the IdP's SQLite store."""
        db = sqlite3.connect(f"file:{self.data_dir / 'easyauth.db'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT kid, pkcs8_der FROM signing_keys WHERE retired = 0 "
                             "ORDER BY created_at DESC, kid DESC LIMIT 1").fetchone()
        finally:
            db.close()
        assert row, "no signing key in the identity provider's store"
        return row[0], serialization.load_der_private_key(bytes(row[1]), password=None)

    def mint(self, claims: dict[str, Any], *, kid: str | None = None, key: Any = None,
             v1_header: bool = True) -> str:
        """A token signed with the IdP's own key (or `key`), header like the IdP's v1 tokens."""
        own_kid, own_key = self.signing_key()
        headers = {"typ": "JWT", "kid": kid or own_kid}
        if v1_header:
            headers["x5t"] = kid or own_kid
        return jwt.encode(claims, key if key is not None else own_key, algorithm="RS256",
                          headers=headers)

    def jwks_public_pem(self, token: str) -> bytes:
        """The PEM public key (SubjectPublicKeyInfo) the JWKS holds for `token`'s kid."""
        kid = jwt.get_unverified_header(token)["kid"]
        jwks = requests.get(self.jwks_uri_v1, verify=str(self.ca_path), timeout=10).json()
        jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
        pub = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
        return pub.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo)


def unsigned_token(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    h = header or {"alg": "none", "typ": "JWT"}
    return (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode()) + ".")


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 keyed with `secret` (the RSA public key PEM: the classic key-confusion attack),
    built by hand because PyJWT refuses PEM keys as HMAC secrets."""
    h = {"alg": "HS256", "typ": "JWT", "kid": kid, "x5t": kid}
    signing_input = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def unverified_claims(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split(".")[1]))


# --------------------------------------------------------------------------------------------
# The upstream app


class EchoApp:
    def __init__(self, name: str = "echo"):
        self.name = name
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log = open(ARTIFACTS / f"{self.name}-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(E2E / "apps" / "echo_app.py"), "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"echo app exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("echo app did not start")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# Auth settings (authsettingsV2 ARM shape)


def aad_settings(idp: IdpServer, world: World, *, client_id: str | None = None,
                 action: str = "RedirectToLoginPage", require: bool = True,
                 excluded: list[str] | None = None,
                 audiences: list[str] | None = None,
                 allowed_apps: list[str] | None = None,
                 login_parameters: list[str] | None = None,
                 token_store: bool = True,
                 extra_login: dict[str, Any] | None = None) -> dict[str, Any]:
    backend = world.backend.identifier_uri
    gv: dict[str, Any] = {"requireAuthentication": require, "unauthenticatedClientAction": action}
    if excluded is not None:
        gv["excludedPaths"] = excluded
    login: dict[str, Any] = {"tokenStore": {"enabled": token_store}}
    login.update(extra_login or {})
    return {"properties": {
        "platform": {"enabled": True},
        "globalValidation": gv,
        "identityProviders": {"azureActiveDirectory": {
            "enabled": True,
            "registration": {
                "openIdIssuer": idp.issuer_v2,
                "clientId": client_id or world.webapp.app_id,
                "clientSecretSettingName": SECRET_SETTING,
            },
            "login": {"loginParameters": login_parameters if login_parameters is not None else
                      [f"scope=openid profile offline_access {backend}/user_impersonation"]},
            "validation": {
                "allowedAudiences": audiences if audiences is not None else [backend],
                "defaultAuthorizationPolicy": {
                    "allowedApplications": allowed_apps if allowed_apps is not None
                    else [world.webapp.app_id]},
            },
        }},
        "login": login,
    }}


# --------------------------------------------------------------------------------------------
# The proxy


class ProxyServer:
    _counter = 0
    running: list["ProxyServer"] = []  # every proxy started in this session (crash check)

    def __init__(self, binary: str, name: str, settings: dict[str, Any], upstream: str,
                 workdir: Path, env: dict[str, str] | None = None, ca_bundle: Path | None = None,
                 development: bool = True, upstream_timeout: int | None = None,
                 port: int | None = None, extra_args: list[str] | None = None, tls: bool = False,
                 public_url: bool = True):
        self.binary = binary
        self.name = name
        self.settings = settings
        self.upstream = upstream
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = workdir / "data"
        self.settings_path = workdir / "authsettings.json"
        self.env = dict(env or {})
        self.ca_bundle = ca_bundle
        self.development = development
        self.upstream_timeout = upstream_timeout
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.tls = tls
        # False: started as the README shows, without --public-url (the site is the request's host)
        self.public_url = public_url
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        """The proxy's local CA (`--tls`)."""
        return self.data_dir / "ca.pem"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def api_prefix(self) -> str:
        props = self.settings.get("properties", self.settings)
        return props.get("httpSettings", {}).get("routes", {}).get("apiPrefix") or "/.auth"

    def url(self, path: str) -> str:
        return self.base + path

    def command(self) -> list[str]:
        cmd = [self.binary, "proxy", "--upstream", self.upstream,
               "--auth-settings", str(self.settings_path),
               "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        if self.public_url:
            cmd += ["--public-url", self.base]
        if self.development:
            cmd.append("--development")
        if self.upstream_timeout is not None:
            cmd += ["--upstream-timeout", str(self.upstream_timeout)]
        if self.tls:
            cmd.append("--tls")
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> "ProxyServer":
        assert self.proc is None
        self.settings_path.write_text(json.dumps(self.settings, indent=2))
        ProxyServer._counter += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"proxy-{ProxyServer._counter}-{self.name}.log"
        log = open(self.log_path, "wb")
        log.write(("$ " + " ".join(self.command()) + "\n").encode())
        log.write(("settings: " + json.dumps(self.settings) + "\n").encode())
        log.flush()
        env = dict(os.environ)
        env.update(self.env)
        if self.ca_bundle is not None:
            env["SSL_CERT_FILE"] = str(self.ca_bundle)
        env.setdefault("RUST_BACKTRACE", "1")
        env.pop("EASYAUTH_LOG", None)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
        log.close()
        ProxyServer.running.append(self)
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"easyauth proxy ({self.name}) exited with {code} during start-up\n"
                                   f"{self.log_tail()}")
            try:
                if self.tls and not self.ca_path.is_file():
                    time.sleep(0.05)
                    continue
                r = requests.get(self.url(self.api_prefix + "/version"), timeout=2,
                                 verify=str(self.ca_path) if self.tls else True)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"easyauth proxy ({self.name}) not ready after {timeout}s: {last}\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self in ProxyServer.running:
            ProxyServer.running.remove(self)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def banner(self) -> dict[str, list[str]]:
        """The start-up banner's `key  value` lines (a key may repeat, e.g. `redirect URI`)."""
        out: dict[str, list[str]] = {}
        text = self.log_path.read_text(errors="replace") if self.log_path else ""
        for line in text.splitlines():
            if line.startswith("  ") and "  " in line.strip():
                key, value = line.strip().split("  ", 1)
                out.setdefault(key.strip(), []).append(value.strip())
        return out

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join([f"--- last lines of {self.log_path.name} ---", *text[-lines:]])


# --------------------------------------------------------------------------------------------
# HTTP helpers


def echo_of(resp: requests.Response) -> dict[str, Any] | None:
    """The echo app's JSON if this response came from it, else None."""
    if resp.status_code != 200 or "application/json" not in resp.headers.get("Content-Type", ""):
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and "headers" in body and "method" in body else None


def require_echo(resp: requests.Response, context: str = "") -> dict[str, Any]:
    body = echo_of(resp)
    assert body is not None, f"{context}: the request did not reach the app:\n{describe(resp)}"
    return body


def api_get(url: str, token: str | None = None, headers: dict[str, str] | None = None,
            **kw: Any) -> requests.Response:
    """A non-browser client (no Mozilla UA, no cookies)."""
    h = {"User-Agent": API_UA}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    return requests.get(url, headers=h, allow_redirects=False, timeout=30, **kw)


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def echo(self) -> dict[str, Any] | None:
        if self.status != 200:
            return None
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) and "headers" in body and "method" in body else None

    def __str__(self) -> str:
        return f"HTTP {self.status} {dict(self.headers)} {self.body[:400]!r}"


def raw_request(port: int, method: str, target: str, headers: dict[str, str] | list[tuple[str, str]]
                | None = None, body: bytes | None = None) -> RawResponse:
    """Sends `target` exactly as given (no dot-segment removal or re-encoding)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        items = list(headers.items() if isinstance(headers, dict) else (headers or []))
        # A Host among `headers` replaces the default one (tests of Host handling).
        if not any(k.lower() == "host" for k, _ in items):
            conn.putheader("Host", f"127.0.0.1:{port}")
        for k, v in items:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return RawResponse(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def decode_principal(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value))


def claim_values(principal: dict[str, Any], typ: str) -> list[str]:
    return [c["val"] for c in principal.get("claims", []) if c.get("typ") == typ]


SPOOF_PREFIXES = ("x-ms-client-principal", "x-ms-token-")


def auth_headers(echo: dict[str, Any]) -> dict[str, str]:
    """The identity headers the app received (names normalised: lower case, `_` -> `-`)."""
    out = {}
    for k, v in echo["headers"].items():
        n = k.lower().replace("_", "-")
        if n.startswith(SPOOF_PREFIXES) or n == "x-zumo-auth":
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# The browser


class ProxyBrowser:
    """One browser: a cookie jar shared by the proxies and the providers, no automatic redirects."""

    def __init__(self, verify: str | Path):
        self.session = requests.Session()
        self.session.verify = str(verify)
        self.session.headers["User-Agent"] = BROWSER_UA
        self.session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
        self.trace: list[str] = []

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        # explicit: requests lets REQUESTS_CA_BUNDLE override a session's `verify`
        kw.setdefault("verify", self.session.verify)
        resp = self.session.request(method, url, allow_redirects=False, **kw)
        loc = resp.headers.get("Location")
        self.trace.append(f"{method} {url} -> {resp.status_code}" + (f" Location: {loc}" if loc else ""))
        return resp

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def cross_site_post(self, url: str, data: dict[str, str], origin: str) -> requests.Response:
        """A form POST from another site: cookies without `SameSite=None` stay home (browsers
        default to Lax); schemes count (https IdP -> http site is cross-site)."""
        same_site = _origin(url) == origin
        held = []
        if not same_site:
            for c in list(self.session.cookies):
                rest = {k.lower(): v for k, v in (c._rest or {}).items()}  # type: ignore[attr-defined]
                if (rest.get("samesite") or "lax").lower() != "none":
                    held.append(c)
                    self.session.cookies.clear(c.domain, c.path, c.name)
        try:
            resp = self.request("POST", url, data=data, headers={"Origin": origin})
        except Exception:
            for c in held:
                self.session.cookies.set_cookie(c)
            raise
        set_names = {h.split("=", 1)[0].strip() for h in resp.raw.headers.getlist("Set-Cookie")}
        for c in held:
            if c.name not in set_names:
                self.session.cookies.set_cookie(c)
        return resp

    def cookie(self, name: str) -> str | None:
        for c in self.session.cookies:
            if c.name == name:
                return c.value
        return None

    def session_cookies(self) -> dict[str, str]:
        return {c.name: c.value for c in self.session.cookies if c.name.startswith("AppServiceAuthSession")}

    def trace_text(self) -> str:
        return "\n".join(self.trace)


@dataclass
class SignInResult:
    browser: ProxyBrowser
    authorize_url: str  # the provider authorize request the proxy made
    callback: requests.Response  # the proxy's answer to the callback
    final_location: str  # absolute URL the callback redirected to
    final: requests.Response | None  # the final page (when on the proxy)
    pages: list[str] = field(default_factory=list)


def _absolute(resp: requests.Response) -> str:
    return urljoin(resp.url, resp.headers.get("Location", ""))


@dataclass
class Callback:
    """The provider's answer on its way to the proxy's callback: a form_post or a redirect."""
    method: str  # "POST" (form_post) or "GET"
    url: str
    data: dict[str, str]  # the form_post fields ({} for a redirect: the answer is in the URL)
    from_origin: str  # the provider page's origin

    @property
    def params(self) -> dict[str, str]:
        return self.data if self.method == "POST" else query_params(self.url)

    def with_params(self, **changes: str) -> "Callback":
        if self.method == "POST":
            return Callback(self.method, self.url, {**self.data, **changes}, self.from_origin)
        u = urlsplit(self.url)
        q = urlencode({**query_params(self.url), **changes})
        return Callback(self.method, u._replace(query=q).geturl(), {}, self.from_origin)

    def send(self, browser: "ProxyBrowser") -> requests.Response:
        if self.method == "POST":
            # a cross-site form POST: the browser sends the page's Origin, and only the cookies
            # marked SameSite=None (Lax is the default) -- emulated here
            return browser.cross_site_post(self.url, self.data, origin=self.from_origin)
        return browser.get(self.url)


def drive_provider(browser: ProxyBrowser, resp: requests.Response, callback_prefix: str,
                   user: User | None = None, login: str | None = None, password: str = "pw",
                   pages: list[str] | None = None, max_steps: int = 15,
                   submit: bool = True) -> Any:
    """From the provider's first answer, through its login/consent pages, to the form_post (or
    redirect) to the proxy's callback; returns the proxy's answer to the callback (or, with
    submit=False, the `Callback` without sending it)."""
    pages = pages if pages is not None else []
    for _ in range(max_steps):
        if resp.status_code in REDIRECTS:
            loc = _absolute(resp)
            if loc.startswith(callback_prefix):
                pages.append("redirect-callback")
                cb = Callback("GET", loc, {}, _origin(resp.url))
                return cb if not submit else cb.send(browser)
            resp = browser.get(loc)
            continue
        assert resp.status_code == 200, f"unexpected answer at the provider:\n{describe(resp)}\n{browser.trace_text()}"
        forms = parse_forms(resp.text, resp.url)
        post = next((f for f in forms if f.action.startswith(callback_prefix)), None)
        if post is not None:
            pages.append("form_post")
            data = {n: v for n, v, _ in post.fields if n}
            cb = Callback(post.method.upper(), post.action, data, _origin(resp.url))
            return cb if not submit else cb.send(browser)
        entra_login = next((f for f in forms if {"login", "passwd"} <= f.field_names()), None)
        if entra_login is not None:
            assert user is not None, f"unexpected login page:\n{describe(resp)}"
            assert "login" not in pages, f"login page shown again:\n{describe(resp)}"
            pages.append("login")
            resp = browser.request("POST", entra_login.action,
                                   data=entra_login.data({"login": user.upn, "passwd": user.password}))
            continue
        node_login = next((f for f in forms if {"login", "password"} <= f.field_names()), None)
        if node_login is not None:
            assert "login" not in pages, f"login page shown again:\n{describe(resp)}"
            pages.append("login")
            resp = browser.request("POST", node_login.action,
                                   data=node_login.data({"login": login or "user", "password": password}))
            continue
        consent = next((f for f in forms if any(n == "consent" for n, _ in f.buttons)), None)
        if consent is not None:
            pages.append("consent")
            resp = browser.request("POST", consent.action, data=consent.data(button=("consent", "accept")))
            continue
        node_consent = next((f for f in forms if ("prompt", "consent") in
                             {(n, v) for n, v, _ in f.fields}), None)
        if node_consent is not None:
            pages.append("consent")
            resp = browser.request("POST", node_consent.action, data=node_consent.data())
            continue
        raise AssertionError(f"page is neither login, consent nor form_post:\n{describe(resp)}\n"
                             f"{browser.trace_text()}")
    raise AssertionError(f"sign-in did not finish in {max_steps} steps:\n{browser.trace_text()}")


def _origin(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def browser_sign_in(browser: ProxyBrowser, proxy: ProxyServer, start_url: str, *,
                    provider: str = "aad", provider_host: str, user: User | None = None,
                    login: str | None = None, follow_final: bool = True) -> SignInResult:
    """GET `start_url` (a protected page or /.auth/login/...), follow the proxy's redirects to the
    provider at `provider_host`, sign in, deliver the answer to the callback, and (when the
    callback redirects within the proxy) GET the final page."""
    resp = browser.get(start_url)
    for _ in range(5):
        assert resp.status_code in REDIRECTS, \
            f"expected a redirect towards the sign-in:\n{describe(resp)}\n{browser.trace_text()}"
        loc = _absolute(resp)
        if urlsplit(loc).netloc == provider_host:
            break
        assert urlsplit(loc).netloc == proxy.host, f"redirect to an unexpected place: {loc}"
        resp = browser.get(loc)
    else:
        raise AssertionError(f"no redirect to the provider:\n{browser.trace_text()}")
    authorize_url = loc
    pages: list[str] = []
    callback_prefix = proxy.url(f"/.auth/login/{provider}/callback")
    cb = drive_provider(browser, browser.get(loc), callback_prefix, user=user, login=login, pages=pages)
    assert cb.status_code in REDIRECTS, \
        f"the callback did not redirect:\n{describe(cb)}\n{browser.trace_text()}\n{proxy.log_tail()}"
    final_location = _absolute(cb)
    final = None
    if follow_final and urlsplit(final_location).netloc == proxy.host:
        final = browser.get(final_location)
    return SignInResult(browser, authorize_url, cb, final_location, final, pages)


# --------------------------------------------------------------------------------------------
# Redirect safety


def resolve_like_a_browser(base: str, location: str) -> str:
    """How a browser resolves a Location: strips tab/CR/LF, treats `\\` as `/` for http(s)."""
    loc = location.strip().replace("\t", "").replace("\r", "").replace("\n", "")
    loc = loc.replace("\\", "/")
    return urljoin(base, loc)


def assert_on_site(proxy: ProxyServer, location: str, context: str = "") -> str:
    resolved = resolve_like_a_browser(proxy.url("/"), location)
    u = urlsplit(resolved)
    assert u.scheme == urlsplit(proxy.base).scheme and u.netloc == proxy.host and not u.username and "evil" not in u.netloc, \
        f"{context}: Location {location!r} leaves the site (resolves to {resolved!r})"
    return resolved


# --------------------------------------------------------------------------------------------
# Certificates for the custom OpenID provider


def make_ca_and_leaf(workdir: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a CA and a 127.0.0.1 server certificate it signed."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "easyauth e2e myoidc CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import ipaddress
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(leaf.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


class OidcProvider:
    """node oidc-provider (node/oidc_provider.mjs) over https."""

    CLIENT_ID = "myoidc-client"
    USER_SUB = "myoidc-user-0001"
    USER_EMAIL = "carol@myoidc.test"

    def __init__(self, workdir: Path, redirect_uris: list[str], post_logout_uris: list[str]):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path, self.cert_path, self.key_path = make_ca_and_leaf(workdir)
        self.port = free_port()
        self.secret = "myoidc-" + b64url(os.urandom(18))
        self.redirect_uris = redirect_uris
        self.post_logout_uris = post_logout_uris
        self.proc: subprocess.Popen | None = None

    @property
    def issuer(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def well_known(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> None:
        env = dict(os.environ)
        env.update({
            "OIDC_PORT": str(self.port), "OIDC_ISSUER": self.issuer,
            "OIDC_TLS_CERT": str(self.cert_path), "OIDC_TLS_KEY": str(self.key_path),
            "OIDC_CLIENT_ID": self.CLIENT_ID, "OIDC_CLIENT_SECRET": self.secret,
            "OIDC_REDIRECT_URIS": " ".join(self.redirect_uris),
            "OIDC_POST_LOGOUT_REDIRECT_URIS": " ".join(self.post_logout_uris),
        })
        env.pop("SSL_CERT_FILE", None)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log = open(ARTIFACTS / "oidc-provider.log", "wb")
        self.proc = subprocess.Popen(["node", str(E2E / "node" / "oidc_provider.mjs")], cwd=str(E2E),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        log.close()
        deadline = time.monotonic() + 30
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited with {self.proc.returncode}: "
                                   f"{(ARTIFACTS / 'oidc-provider.log').read_text()[-2000:]}")
            try:
                r = requests.get(self.well_known, verify=str(self.ca_path), timeout=3)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"oidc-provider not ready: {last}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# Fixtures (imported by conftest.py)


@pytest.fixture(autouse=True)
def _proxies_alive(request: pytest.FixtureRequest):
    """After each test, fail loudly if an `easyauth proxy` died (and show its log)."""
    yield
    for p in list(ProxyServer.running):
        if p.proc is not None and p.proc.poll() is not None:
            code = p.proc.returncode
            p.proc = None
            ProxyServer.running.remove(p)
            pytest.fail(f"easyauth proxy {p.name} crashed during {request.node.nodeid} (exit {code})\n"
                        f"{p.log_tail()}")


@pytest.fixture(scope="session")
def proxy_binary() -> str:
    from conftest import binary
    b = binary()
    reason = proxy_unavailable_reason(b)
    if reason:
        pytest.skip(reason)
    return b


@pytest.fixture(scope="session")
def proxy_idp(proxy_binary: str, world: World, idp: IdpServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyIdp]:
    """The identity provider of the proxy tests (after the shared one, so one CA bundle holds both)."""
    server = ProxyIdp(proxy_binary, world, tmp_path_factory.mktemp("proxy-idp"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy_tokens(proxy_idp: ProxyIdp) -> TokenValidator:
    return TokenValidator(proxy_idp)


@pytest.fixture(scope="session")
def ca_bundle(proxy_idp: ProxyIdp) -> Path:
    """The session's CA bundle (every identity provider's CA; IdpServer.trust_ca keeps it)."""
    return Path(os.environ["SSL_CERT_FILE"])


@pytest.fixture(scope="session")
def echo_app() -> Iterator[EchoApp]:
    app = EchoApp()
    app.start()
    yield app
    app.stop()


class ProxyFactory:
    def __init__(self, binary: str, world: World, idp: ProxyIdp, echo: EchoApp, root: Path):
        self.binary, self.world, self.idp, self.echo, self.root = binary, world, idp, echo, root
        self.started: list[ProxyServer] = []
        self._cache: dict[str, ProxyServer] = {}

    def start(self, name: str, settings: dict[str, Any] | None = None, *, secret: str | None = None,
              upstream: str | None = None, env: dict[str, str] | None = None,
              ca_bundle: Path | None = None, port: int | None = None, **kw: Any) -> ProxyServer:
        settings = settings if settings is not None else aad_settings(self.idp, self.world)
        e = {SECRET_SETTING: secret if secret is not None else self.world.webapp.secret}
        e.update(env or {})
        p = ProxyServer(self.binary, name, settings, upstream or self.echo.url,
                        self.root / f"{name}-{len(self.started)}", env=e,
                        ca_bundle=ca_bundle or Path(os.environ["SSL_CERT_FILE"]), port=port, **kw)
        self.started.append(p)
        try:
            return p.start()
        except RuntimeError as e:
            pytest.fail(str(e))

    def shared(self, name: str, make: Callable[[], ProxyServer]) -> ProxyServer:
        """One proxy per name for the whole session."""
        p = self._cache.get(name)
        if p is None or p.proc is None or p.proc.poll() is not None:
            p = self._cache[name] = make()
        return p

    def stop_all(self) -> None:
        for p in self.started:
            p.stop()


@pytest.fixture(scope="session")
def proxies(proxy_binary: str, world: World, proxy_idp: ProxyIdp, echo_app: EchoApp,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyFactory]:
    f = ProxyFactory(proxy_binary, world, proxy_idp, echo_app, tmp_path_factory.mktemp("proxies"))
    yield f
    f.stop_all()


@pytest.fixture(scope="session")
def frontend(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp) -> ProxyServer:
    """The tutorial's front end: webapp, RedirectToLoginPage, token store, the back-end scope."""
    return proxies.shared("frontend", lambda: proxies.start(
        "frontend", aad_settings(proxy_idp, world), secret=world.webapp.secret))


@pytest.fixture(scope="session")
def backend(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp) -> ProxyServer:
    """The tutorial's back end: client id backend, allowedAudiences api://backend,
    allowedApplications [webapp]."""
    return proxies.shared("backend", lambda: proxies.start(
        "backend", aad_settings(proxy_idp, world, client_id=world.backend.app_id,
                                audiences=[world.backend.identifier_uri],
                                allowed_apps=[world.webapp.app_id]),
        secret=world.backend.secret))


@pytest.fixture(scope="session")
def anonymous_proxy(proxies: ProxyFactory, world: World, proxy_idp: ProxyIdp) -> ProxyServer:
    """AllowAnonymous (requireAuthentication false) in front of the echo app."""
    return proxies.shared("anonymous", lambda: proxies.start(
        "anonymous", aad_settings(proxy_idp, world, action="AllowAnonymous", require=False)))


@dataclass
class SignedIn:
    browser: ProxyBrowser
    sign_in: SignInResult
    echo: dict[str, Any]  # what the app received on the final page

    @property
    def headers(self) -> dict[str, str]:
        return self.echo["headers"]

    @property
    def access_token(self) -> str:
        return self.headers["x-ms-token-aad-access-token"]


def sign_in_alice_via(proxy: ProxyServer, idp: ProxyIdp, world: World, path: str = "/profile?x=1",
                      browser: ProxyBrowser | None = None) -> SignedIn:
    browser = browser or ProxyBrowser(os.environ["SSL_CERT_FILE"])
    si = browser_sign_in(browser, proxy, proxy.url(path), provider_host=idp.host, user=world.alice)
    assert si.final is not None, f"the callback left the site: {si.final_location}"
    echo = require_echo(si.final, f"final page {si.final_location}")
    return SignedIn(browser, si, echo)


@pytest.fixture(scope="session")
def alice_frontend(frontend: ProxyServer, proxy_idp: ProxyIdp, world: World) -> SignedIn:
    """alice signed in to the front end once (read-only uses: do not sign out with it)."""
    return sign_in_alice_via(frontend, proxy_idp, world)


def app_token(idp: IdpServer, client_id: str, secret: str, scope: str) -> str:
    """Client credentials at the identity provider (plain requests)."""
    r = requests.post(idp.token_endpoint, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": scope}, timeout=30)
    assert r.status_code == 200, describe(r)
    return r.json()["access_token"]


def new_guid() -> str:
    return str(uuid.uuid4())


def query_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}

