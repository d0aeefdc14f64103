"""Helpers for the easyauth end-to-end suite.

- `World`: the ids, secrets and certificates of the generated directory (tenant, alice, apps).
- `IdpServer`: starts/stops/restarts `easyauth idp` on a free loopback port.
- `TokenValidator`: validates every token with PyJWT against the identity provider's JWKS.
- `Browser` + `sign_in`: a tiny HTML-form "browser" that goes through the login and consent pages.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EASYAUTH_ARTIFACTS") or ROOT / "target" / "test-artifacts")

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_USER_READ_ID = "e1fe6dd8-ba31-4d61-89e7-88639da4683d"
REDIRECT_URI = "http://localhost:8400"
FOREIGN_REDIRECT_URI = "https://app.test/.auth/login/aad/callback"

ACCESS_TOKEN_LIFETIME = 120
# a second secret of other-client with characters that must be form-urlencoded in HTTP Basic
SPECIAL_SECRET = "p+w/d:=%&x~y"


def guid() -> str:
    return str(uuid.uuid4())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Certificates (client credentials registered in keyCredentials)


@dataclass
class Cert:
    key_pem: str  # PKCS#8 PEM private key
    cert_pem: str
    cert_der: bytes

    @property
    def sha1_hex(self) -> str:
        return hashlib.sha1(self.cert_der).hexdigest().upper()

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.cert_der).hexdigest().upper()

    @property
    def b64_der(self) -> str:
        return base64.b64encode(self.cert_der).decode()


def make_cert(common_name: str) -> Cert:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    return Cert(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert_der=cert.public_bytes(serialization.Encoding.DER),
    )


# --------------------------------------------------------------------------------------------
# The directory


@dataclass
class User:
    id: str
    upn: str
    password: str
    display_name: str
    given_name: str
    surname: str


@dataclass
class App:
    name: str
    app_id: str
    secret: str
    cert: Cert | None = None
    scope_id: str | None = None  # its delegated scope (APIs)
    scope_value: str | None = None
    role_id: str | None = None  # its Application app role (APIs)
    role_value: str | None = None
    token_version: int | None = None

    @property
    def identifier_uri(self) -> str:
        return f"api://{self.app_id}"


@dataclass
class World:
    tenant_id: str
    domain: str
    alice: User
    bob: User
    webapp: App
    backend: App
    api2: App
    daemon: App
    other_client: App

    @classmethod
    def generate(cls) -> "World":
        def secret() -> str:
            return "s~" + b64url(os.urandom(24))

        return cls(
            tenant_id=guid(),
            domain="contoso.onmicrosoft.com",
            alice=User(guid(), "alice@contoso.onmicrosoft.com", "Alice-" + b64url(os.urandom(9)),
                       "Alice Smith", "Alice", "Smith"),
            bob=User(guid(), "bob@contoso.onmicrosoft.com", "Bob-" + b64url(os.urandom(9)),
                     "Bob Jones", "Bob", "Jones"),
            webapp=App("webapp", guid(), secret(), cert=make_cert("webapp")),
            backend=App("backend", guid(), secret(), scope_id=guid(), scope_value="user_impersonation",
                        token_version=1),
            api2=App("api2", guid(), secret(), scope_id=guid(), scope_value="access_as_user",
                     role_id=guid(), role_value="Data.Read", token_version=2),
            daemon=App("daemon", guid(), secret(), cert=make_cert("daemon")),
            other_client=App("other-client", guid(), secret()),
        )

    @property
    def api2_unassigned_role_id(self) -> str:
        # deterministic second role that nobody is assigned
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.api2.app_id + "/Data.Write"))

    def directory(self) -> dict[str, Any]:
        w = self

        def user(u: User) -> dict[str, Any]:
            return {"id": u.id, "userPrincipalName": u.upn, "displayName": u.display_name,
                    "givenName": u.given_name, "surname": u.surname, "mail": u.upn,
                    "password": u.password}

        def creds(app: App) -> dict[str, Any]:
            return {
                "passwordCredentials": [{"displayName": "s1", "secretText": app.secret}],
                # daemon: base64 DER (Graph shape); webapp: a PEM string (also accepted)
                "keyCredentials": (
                    [{"type": "AsymmetricX509Cert", "usage": "Verify",
                      "key": app.cert.cert_pem if app.name == "webapp" else app.cert.b64_der}]
                    if app.cert else []
                ),
            }

        def scope(app: App) -> dict[str, Any]:
            return {"id": app.scope_id, "value": app.scope_value, "type": "User", "isEnabled": True,
                    "adminConsentDisplayName": f"Access {app.name}",
                    "adminConsentDescription": f"Access {app.name} on behalf of the user",
                    "userConsentDisplayName": f"Access {app.name}",
                    "userConsentDescription": f"Access {app.name} on your behalf"}

        graph_user_read = {"resourceAppId": GRAPH_APP_ID,
                           "resourceAccess": [{"id": GRAPH_USER_READ_ID, "type": "Scope"}]}
        web_redirects = {"redirectUris": [REDIRECT_URI, "http://localhost", FOREIGN_REDIRECT_URI],
                         "logoutUrl": None}
        return {
            "tenant": {"id": w.tenant_id, "domain": w.domain, "displayName": "Contoso"},
            "users": [user(w.alice), user(w.bob)],
            "applications": [
                {
                    "appId": w.webapp.app_id, "displayName": "webapp", "identifierUris": [],
                    "web": web_redirects, "publicClient": {"redirectUris": []},
                    "api": {"requestedAccessTokenVersion": None, "oauth2PermissionScopes": [],
                            "preAuthorizedApplications": []},
                    "appRoles": [],
                    "requiredResourceAccess": [
                        {"resourceAppId": w.backend.app_id,
                         "resourceAccess": [{"id": w.backend.scope_id, "type": "Scope"}]},
                        {"resourceAppId": w.api2.app_id,
                         "resourceAccess": [{"id": w.api2.scope_id, "type": "Scope"}]},
                        graph_user_read,
                    ],
                    **creds(w.webapp),
                },
                {
                    "appId": w.backend.app_id, "displayName": "backend",
                    "identifierUris": [w.backend.identifier_uri],
                    "web": {"redirectUris": [], "logoutUrl": None}, "publicClient": {"redirectUris": []},
                    "api": {"requestedAccessTokenVersion": 1,
                            "oauth2PermissionScopes": [scope(w.backend)],
                            "preAuthorizedApplications": []},
                    "appRoles": [],
                    "requiredResourceAccess": [graph_user_read],
                    **creds(w.backend),
                },
                {
                    "appId": w.api2.app_id, "displayName": "api2",
                    "identifierUris": [w.api2.identifier_uri],
                    "web": {"redirectUris": [], "logoutUrl": None}, "publicClient": {"redirectUris": []},
                    "api": {"requestedAccessTokenVersion": 2,
                            "oauth2PermissionScopes": [scope(w.api2)],
                            "preAuthorizedApplications": [
                                {"appId": w.webapp.app_id, "delegatedPermissionIds": [w.api2.scope_id]},
                            ]},
                    "appRoles": [
                        {"id": w.api2.role_id, "value": w.api2.role_value, "displayName": "Read data",
                         "description": "Read data", "allowedMemberTypes": ["Application"],
                         "isEnabled": True},
                        {"id": w.api2_unassigned_role_id, "value": "Data.Write", "displayName": "Write data",
                         "description": "Write data", "allowedMemberTypes": ["Application"],
                         "isEnabled": True},
                    ],
                    "requiredResourceAccess": [],
                    **creds(w.api2),
                },
                {
                    "appId": w.daemon.app_id, "displayName": "daemon", "identifierUris": [],
                    "web": {"redirectUris": [], "logoutUrl": None}, "publicClient": {"redirectUris": []},
                    "api": {"requestedAccessTokenVersion": None, "oauth2PermissionScopes": [],
                            "preAuthorizedApplications": []},
                    "appRoles": [],
                    "requiredResourceAccess": [
                        {"resourceAppId": w.api2.app_id,
                         "resourceAccess": [{"id": w.api2.role_id, "type": "Role"}]},
                    ],
                    **creds(w.daemon),
                },
                {
                    "appId": w.other_client.app_id, "displayName": "other-client", "identifierUris": [],
                    "web": {"redirectUris": [REDIRECT_URI], "logoutUrl": None},
                    "publicClient": {"redirectUris": []},
                    "api": {"requestedAccessTokenVersion": None, "oauth2PermissionScopes": [],
                            "preAuthorizedApplications": []},
                    "appRoles": [],
                    "requiredResourceAccess": [],
                    "passwordCredentials": [
                        {"displayName": "s1", "secretText": w.other_client.secret},
                        {"displayName": "special", "secretText": SPECIAL_SECRET},
                    ],
                    "keyCredentials": [],
                },
            ],
            "oauth2PermissionGrants": [
                {"clientId": w.backend.app_id, "consentType": "AllPrincipals",
                 "resourceId": GRAPH_APP_ID, "scope": "User.Read"},
            ],
            "appRoleAssignments": [
                {"principalId": w.daemon.app_id, "resourceId": w.api2.app_id, "appRoleId": w.api2.role_id},
            ],
        }


# --------------------------------------------------------------------------------------------
# The server


class IdpServer:
    """`easyauth idp` on a loopback port; logs into ARTIFACTS/idp-<n>.log."""

    _counter = 0

    _trusted: dict[Path, str] = {}  # every CA started in this session (one bundle for all)

    def __init__(self, binary: str, world: World, workdir: Path, extra_args: list[str] | None = None,
                 access_token_lifetime: int | None = None):
        self.binary = binary
        self.access_token_lifetime = access_token_lifetime
        self.world = world
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.directory_path = workdir / "directory.json"
        self.directory_path.write_text(json.dumps(world.directory(), indent=2))
        self.port = free_port()
        self.extra_args = list(extra_args or [])
        if access_token_lifetime is not None:
            self.extra_args += ["--access-token-lifetime", str(access_token_lifetime)]
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0

    # URLs -----------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tenant_id(self) -> str:
        return self.world.tenant_id

    @property
    def authority(self) -> str:
        return f"{self.base}/{self.tenant_id}"

    @property
    def issuer_v2(self) -> str:
        return f"{self.base}/{self.tenant_id}/v2.0"

    @property
    def issuer_v1(self) -> str:
        return f"{self.base}/{self.tenant_id}/"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.base}/{self.tenant_id}/oauth2/v2.0/authorize"

    @property
    def jwks_uri_v2(self) -> str:
        return f"{self.base}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def jwks_uri_v1(self) -> str:
        return f"{self.base}/{self.tenant_id}/discovery/keys"

    @property
    def graph_me(self) -> str:
        return f"{self.base}/v1.0/me"

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "ca.pem"

    def discovery_url(self, tenant: str | None = None, v2: bool = True) -> str:
        t = tenant or self.tenant_id
        return f"{self.base}/{t}/v2.0/.well-known/openid-configuration" if v2 else \
            f"{self.base}/{t}/.well-known/openid-configuration"

    # lifecycle ------------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            self.binary, "idp",
            "--directory", str(self.directory_path),
            "--data-dir", str(self.data_dir),
            "--listen", f"127.0.0.1:{self.port}",
            "--public-url", self.base,
            *self.extra_args,
        ]

    def start(self, timeout: float = 45.0) -> None:
        assert self.proc is None, "already running"
        IdpServer._counter += 1
        self.starts += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"idp-{IdpServer._counter}.log"
        log = open(self.log_path, "wb")
        log.write(("$ " + " ".join(self.command()) + "\n").encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise RuntimeError(f"easyauth idp exited with {code} during start-up\n{self.log_tail()}")
            if self.ca_path.is_file():
                try:
                    r = requests.get(self.discovery_url(), verify=str(self.ca_path), timeout=3)
                    if r.status_code == 200:
                        self.trust_ca()
                        return
                    last_error = f"HTTP {r.status_code}: {r.text[:300]}"
                except requests.RequestException as e:  # not listening yet / TLS not ready
                    last_error = repr(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"easyauth idp not ready after {timeout}s: {last_error}\n{self.log_tail()}")

    def trust_ca(self) -> None:
        """The machine sets REQUESTS_CA_BUNDLE etc. globally; point them at a bundle holding the
        CA of every identity provider started in this session (msal/azure-identity use requests)."""
        IdpServer._trusted[self.ca_path] = self.ca_path.read_text()
        bundle = ARTIFACTS / "ca-bundle.pem"
        bundle.write_text("\n".join(IdpServer._trusted.values()))
        for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            os.environ[var] = str(bundle)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(["--- last server log lines ---", *text[-lines:]])

    def node_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NODE_EXTRA_CA_CERTS"] = str(self.ca_path)
        env.pop("SSL_CERT_FILE", None)
        return env


# --------------------------------------------------------------------------------------------
# Token validation (PyJWT against the JWKS)


@dataclass
class ValidatedToken:
    kind: str
    claims: dict[str, Any]
    header: dict[str, Any]


class TokenValidator:
    def __init__(self, idp: IdpServer):
        self.idp = idp
        self.validated: list[ValidatedToken] = []
        self._clients: dict[str, jwt.PyJWKClient] = {}

    def reset_keys(self) -> None:
        """Forget cached JWKS (after a restart: keys are fetched again)."""
        self._clients.clear()

    def _client(self, uri: str) -> jwt.PyJWKClient:
        if uri not in self._clients:
            ctx = ssl.create_default_context(cafile=str(self.idp.ca_path))
            self._clients[uri] = jwt.PyJWKClient(uri, cache_jwk_set=True, lifespan=600, ssl_context=ctx)
        return self._clients[uri]

    def validate(self, token: str, *, audience: str, issuer: str, jwks_uri: str,
                 kind: str = "access") -> dict[str, Any]:
        assert isinstance(token, str) and token.count(".") == 2, f"not a JWS compact token: {token!r:.80}"
        header = jwt.get_unverified_header(token)
        assert header.get("alg") == "RS256", header
        assert header.get("kid"), f"no kid in header {header}"
        key = self._client(jwks_uri).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer, leeway=5,
            options={"require": ["exp", "iat", "nbf", "iss", "aud"]},
        )
        for c in ("exp", "iat", "nbf"):
            assert isinstance(claims[c], int), f"{c} must be an integer: {claims[c]!r}"
        lifetime = self.idp.access_token_lifetime
        if kind == "access" and lifetime is not None:
            assert claims["exp"] - claims["iat"] == lifetime, \
                f"access token lifetime {claims['exp'] - claims['iat']} != --access-token-lifetime {lifetime}"
        assert claims["tid"] == self.idp.tenant_id, claims
        self.validated.append(ValidatedToken(kind, claims, header))
        return claims

    def access_v2(self, token: str, resource_app_id: str) -> dict[str, Any]:
        c = self.validate(token, audience=resource_app_id, issuer=self.idp.issuer_v2,
                          jwks_uri=self.idp.jwks_uri_v2, kind="access")
        self.validated[-1].kind = "access-v2"
        assert c["ver"] == "2.0", c
        assert "azp" in c and "azpacr" in c, c
        assert c.get("uti") and c.get("oid") and c.get("sub"), c
        return c

    def access_v1(self, token: str, audience: str) -> dict[str, Any]:
        c = self.validate(token, audience=audience, issuer=self.idp.issuer_v1,
                          jwks_uri=self.idp.jwks_uri_v1, kind="access")
        self.validated[-1].kind = "access-v1"
        assert c["ver"] == "1.0", c
        # v1 tokens carry x5t == kid in the header (passport-azure-ad looks keys up by x5t)
        assert self.validated[-1].header.get("x5t") == self.validated[-1].header["kid"], \
            self.validated[-1].header
        assert "appid" in c and "appidacr" in c, c
        assert c.get("uti") and c.get("oid") and c.get("sub"), c
        return c

    def id_token(self, token: str, client_id: str, nonce: str | None = None) -> dict[str, Any]:
        c = self.validate(token, audience=client_id, issuer=self.idp.issuer_v2,
                          jwks_uri=self.idp.jwks_uri_v2, kind="id")
        assert c["ver"] == "2.0", c
        for claim in ("oid", "sub", "name", "preferred_username"):
            assert c.get(claim), f"id_token lacks {claim}: {c}"
        if nonce is not None:
            assert c.get("nonce") == nonce, f"nonce {c.get('nonce')!r} != {nonce!r}"
        return c


# --------------------------------------------------------------------------------------------
# A tiny browser for the plain-HTML sign-in and consent pages


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, type)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submit buttons

    def field_names(self) -> set[str]:
        return {n for n, _, _ in self.fields}

    def data(self, overrides: dict[str, str] | None = None,
             button: tuple[str, str] | None = None) -> dict[str, str]:
        d = {n: v for n, v, _ in self.fields if n}
        d.update(overrides or {})
        if button is not None:
            d[button[0]] = button[1]
        elif self.buttons and self.buttons[0][0]:
            d[self.buttons[0][0]] = self.buttons[0][1]
        return d


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=(a.get("method") or "get").lower())
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input":
            typ = (a.get("type") or "text").lower()
            if typ in ("submit", "image", "button"):
                self._current.buttons.append((a.get("name", ""), a.get("value", "")))
            elif typ in ("checkbox", "radio") and "checked" not in a:
                return
            else:
                self._current.fields.append((a.get("name", ""), a.get("value", ""), typ))
        elif tag == "button":
            if (a.get("type") or "submit").lower() == "submit":
                self._current.buttons.append((a.get("name", ""), a.get("value", "")))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str, base_url: str) -> list[Form]:
    p = _FormParser()
    p.feed(html)
    p.close()
    for f in p.forms:
        f.action = urljoin(base_url, f.action or base_url)
    return p.forms


def describe(resp: requests.Response) -> str:
    body = resp.text if len(resp.text) < 3000 else resp.text[:3000] + "..."
    return (f"{resp.request.method} {resp.request.url} -> HTTP {resp.status_code}\n"
            f"headers: {dict(resp.headers)}\nbody: {body}")


class Browser:
    """One simulated browser: one cookie jar, no automatic redirects."""

    def __init__(self, idp: IdpServer):
        self.idp = idp
        self.session = requests.Session()
        self.session.verify = str(idp.ca_path)
        self.trace: list[str] = []

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        resp = self.session.request(method, url, allow_redirects=False, timeout=30, **kw)
        self.trace.append(f"{method} {url} -> {resp.status_code}")
        return resp

    def submit(self, form: Form, data: dict[str, str]) -> requests.Response:
        if form.method == "post":
            return self.request("POST", form.action, data=data)
        return self.request("GET", form.action, params=data)

    def on_idp(self, url: str) -> bool:
        u = urlsplit(url)
        return u.scheme == "https" and u.netloc == self.idp.host


@dataclass
class SignIn:
    params: dict[str, str]
    pages: list[str]  # "login", "consent", "form_post" in the order seen
    final_url: str


def _matches_redirect(url: str, redirect_uri: str) -> bool:
    u, r = urlsplit(url), urlsplit(redirect_uri)
    return (u.scheme, u.netloc, u.path.rstrip("/")) == (r.scheme, r.netloc, r.path.rstrip("/"))


def sign_in(browser: Browser, auth_uri: str, redirect_uri: str, user: User | None,
            consent: str = "accept", max_steps: int = 10) -> SignIn:
    """Drives the authorize endpoint like a user: login form, consent page, until the IdP sends
    the browser to `redirect_uri` (query/fragment redirect or form_post page)."""
    pages: list[str] = []
    resp = browser.request("GET", auth_uri)
    for _ in range(max_steps):
        if resp.status_code in (301, 302, 303, 307, 308):
            loc = urljoin(resp.url, resp.headers.get("Location", ""))
            if _matches_redirect(loc, redirect_uri):
                u = urlsplit(loc)
                params = dict(parse_qsl(u.query))
                params.update(dict(parse_qsl(u.fragment)))
                return SignIn(params, pages, loc)
            assert browser.on_idp(loc), f"redirect to an unexpected place: {loc}\n{describe(resp)}"
            resp = browser.request("GET", loc)
            continue
        assert resp.status_code == 200, f"unexpected answer during sign-in:\n{describe(resp)}"
        forms = parse_forms(resp.text, resp.url)
        login = next((f for f in forms if {"login", "passwd"} <= f.field_names()), None)
        if login is not None:
            assert user is not None, f"unexpected login page:\n{describe(resp)}"
            assert "login" not in pages, f"login page shown again (wrong password?):\n{describe(resp)}"
            assert login.method == "post", login
            pages.append("login")
            resp = browser.submit(login, login.data({"login": user.upn, "passwd": user.password}))
            continue
        consent_form = next((f for f in forms if any(n == "consent" for n, _ in f.buttons)), None)
        if consent_form is not None:
            values = {v for n, v in consent_form.buttons if n == "consent"}
            assert {"accept", "deny"} <= values, f"consent buttons: {consent_form.buttons}"
            pages.append("consent")
            resp = browser.submit(consent_form, consent_form.data(button=("consent", consent)))
            continue
        post = next((f for f in forms if _matches_redirect(f.action, redirect_uri)), None)
        if post is not None:
            pages.append("form_post")
            assert post.method == "post", post
            return SignIn({n: v for n, v, _ in post.fields if n}, pages, post.action)
        raise AssertionError(f"page is neither login, consent nor form_post:\n{describe(resp)}")
    raise AssertionError(f"sign-in did not finish in {max_steps} steps: {browser.trace}")


def device_login(browser: Browser, verification_uri: str, user_code: str, user: User | None,
                 confirm: str = "continue", consent: str = "accept", max_steps: int = 8) -> list[str]:
    """Completes the device-code page like a person: types `user_code`, answers "Are you trying
    to sign in to ...?" with `confirm`, signs in as `user` if asked, answers a consent page with
    `consent`. Returns the pages seen ("code", "confirm", "login", "consent", then "done" or
    "cancelled"); fails on anything else."""
    pages: list[str] = []
    resp = browser.request("GET", verification_uri)
    for _ in range(max_steps):
        assert resp.status_code == 200, f"unexpected answer on the device-code page:\n{describe(resp)}"
        if "You have signed in" in resp.text:
            return pages + ["done"]
        if "Sign-in cancelled" in resp.text:
            return pages + ["cancelled"]
        forms = parse_forms(resp.text, resp.url)
        code = next((f for f in forms if "user_code" in f.field_names()), None)
        if code is not None:
            assert "code" not in pages, f"code refused:\n{describe(resp)}"
            pages.append("code")
            resp = browser.submit(code, code.data({"user_code": user_code}))
            continue
        ask = next((f for f in forms if any(n == "confirm" for n, _ in f.buttons)), None)
        if ask is not None:
            pages.append("confirm")
            resp = browser.submit(ask, ask.data(button=("confirm", confirm)))
            continue
        login = next((f for f in forms if {"login", "passwd"} <= f.field_names()), None)
        if login is not None:
            assert user is not None and "login" not in pages, f"unexpected login page:\n{describe(resp)}"
            pages.append("login")
            resp = browser.submit(login, login.data({"login": user.upn, "passwd": user.password}))
            continue
        consent_form = next((f for f in forms if any(n == "consent" for n, _ in f.buttons)), None)
        if consent_form is not None:
            pages.append("consent")
            resp = browser.submit(consent_form, consent_form.data(button=("consent", consent)))
            continue
        raise AssertionError(f"unexpected page in the device flow:\n{describe(resp)}")
    raise AssertionError(f"device sign-in did not finish in {max_steps} steps: {browser.trace}")


def require_token(result: dict[str, Any]) -> dict[str, Any]:
    """MSAL returns a dict; fail with the whole error when there is no access token."""
    assert isinstance(result, dict) and "access_token" in result, \
        f"MSAL returned no token: {json.dumps(result, indent=1, default=str)}"
    return result


def token_error(resp: requests.Response) -> dict[str, Any]:
    """Asserts an Entra-shaped token endpoint error and returns the JSON body."""
    try:
        body = resp.json()
    except ValueError as e:
        raise AssertionError(f"error answer is not JSON:\n{describe(resp)}") from e
    for member in ("error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"):
        assert member in body, f"{member} missing from error:\n{describe(resp)}"
    assert isinstance(body["error_codes"], list) and body["error_codes"], body
    assert all(isinstance(c, int) for c in body["error_codes"]), body
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}:"), body
    return body
