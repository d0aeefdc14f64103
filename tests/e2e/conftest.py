"""Session fixtures: the generated directory, a running `easyauth idp`, token validation,
and helpers to sign alice in through the real login/consent pages with MSAL Python."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import msal
import pytest

from easyauth_e2e import (
    ACCESS_TOKEN_LIFETIME,
    ARTIFACTS,
    GRAPH_RESOURCE,
    REDIRECT_URI,
    ROOT,
    App,
    Browser,
    IdpServer,
    SignIn,
    TokenValidator,
    User,
    World,
    require_token,
    sign_in,
)


def binary() -> str:
    env = os.environ.get("EASYAUTH_BIN")
    candidate = Path(env) if env else ROOT / "target" / "debug" / "easyauth"
    if not candidate.is_file():
        pytest.exit(f"easyauth binary not found at {candidate} (set EASYAUTH_BIN or run "
                     f"`cargo build -p easyauth`)", returncode=2)
    return str(candidate.resolve())


@pytest.fixture(scope="session")
def world() -> World:
    return World.generate()


@pytest.fixture(scope="session")
def idp(world: World, tmp_path_factory: pytest.TempPathFactory):
    """The identity provider under test, shared by the whole session.

    `idp.restart()` stops it and starts it again on the same data dir and port."""
    workdir = tmp_path_factory.mktemp("idp")
    server = IdpServer(binary(), world, workdir, access_token_lifetime=ACCESS_TOKEN_LIFETIME)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.directory_path, ARTIFACTS / "directory.json")
    try:
        server.start()
    except RuntimeError as e:
        pytest.exit(f"could not start the identity provider: {e}", returncode=3)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tokens(idp: IdpServer) -> TokenValidator:
    return TokenValidator(idp)


@pytest.fixture(autouse=True)
def _server_alive(idp: IdpServer, request: pytest.FixtureRequest):
    """After each test, fail loudly if the server died (and show its log)."""
    yield
    if idp.proc is not None and idp.proc.poll() is not None:
        code = idp.proc.returncode
        idp.proc = None
        log = idp.log_tail()
        idp.start()  # keep the rest of the session usable
        pytest.fail(f"easyauth idp crashed during {request.node.nodeid} (exit {code})\n{log}")


def confidential_app(idp: IdpServer, app: App, credential: Any = None,
                     authority: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        app.app_id,
        client_credential=credential if credential is not None else app.secret,
        authority=authority or idp.authority,
        instance_discovery=False,
    )


@pytest.fixture(scope="session")
def make_app(idp: IdpServer) -> Callable[..., msal.ConfidentialClientApplication]:
    def make(app: App, credential: Any = None, authority: str | None = None):
        return confidential_app(idp, app, credential, authority)
    return make


@dataclass
class InteractiveResult:
    app: msal.ConfidentialClientApplication
    flow: dict[str, Any]
    sign_in: SignIn
    result: dict[str, Any]
    browser: Browser

    @property
    def expected_nonce(self) -> str:
        import hashlib
        return hashlib.sha256(self.flow["nonce"].encode()).hexdigest()


def interactive(idp: IdpServer, client: App, scopes: list[str], user: User | None,
                browser: Browser | None = None, consent: str = "accept",
                app: msal.ConfidentialClientApplication | None = None,
                **flow_kwargs: Any) -> InteractiveResult:
    """MSAL Python auth code flow (PKCE, nonce, state) through the IdP's HTML pages."""
    app = app or confidential_app(idp, client)
    browser = browser or Browser(idp)
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT_URI, **flow_kwargs)
    assert "auth_uri" in flow, flow
    si = sign_in(browser, flow["auth_uri"], REDIRECT_URI, user, consent=consent)
    result = app.acquire_token_by_auth_code_flow(flow, si.params)
    return InteractiveResult(app, flow, si, result, browser)


@pytest.fixture(scope="session")
def sign_in_alice(idp: IdpServer, world: World, tokens: TokenValidator) -> Callable[..., InteractiveResult]:
    """Signs alice into `client` (default webapp) for `scopes` in a fresh browser; accepts any
    consent page. Returns the MSAL result (asserted to contain a token); the access token and
    the id_token are validated with PyJWT."""

    def run(scopes: list[str], client: App | None = None, **kw: Any) -> InteractiveResult:
        client = client or world.webapp
        r = interactive(idp, client, scopes, world.alice, **kw)
        result = require_token(r.result)
        resource = scopes[0].rsplit("/", 1)[0] if scopes else GRAPH_RESOURCE
        if resource == world.api2.identifier_uri:
            c = tokens.access_v2(result["access_token"], world.api2.app_id)
        else:
            c = tokens.access_v1(result["access_token"], resource)
        assert c["oid"] == world.alice.id, c
        tokens.id_token(result["id_token"], client.app_id, nonce=r.expected_nonce)
        return r

    return run


@pytest.fixture(scope="session")
def backend_scope(world: World) -> str:
    return f"{world.backend.identifier_uri}/{world.backend.scope_value}"


@pytest.fixture(scope="session")
def api2_scope(world: World) -> str:
    return f"{world.api2.identifier_uri}/{world.api2.scope_value}"


# --------------------------------------------------------------------------------------------
# `easyauth proxy` (test_proxy_*.py): fixtures live in proxy_e2e.py; they skip every proxy test
# when `easyauth proxy --help` fails (the proxy not built yet).

from proxy_e2e import (  # noqa: E402,F401  (fixtures, found by name)
    _proxies_alive,
    alice_frontend,
    anonymous_proxy,
    backend,
    ca_bundle,
    echo_app,
    frontend,
    proxies,
    proxy_binary,
    proxy_idp,
    proxy_tokens,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "proxy: `easyauth proxy` tests (skipped until the proxy exists)")
    config.addinivalue_line("markers", "az: the real Azure CLI against `easyauth up`")
