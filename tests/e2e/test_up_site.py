"""`easyauth up --site examples/express-site/site.toml`: two Express apps (app.mjs), written as
one writes them
for App Service, each behind its own authentication module: `caller` in the tutorial's front-end
role (signs users in, token store, asks for the callee's scope) and `callee` in the back-end role
(bearer tokens for `api://<callee>`, only from the caller). The site file uses both command
forms (a list is exec'd, a string runs via `sh -c`), placeholders in app settings and in the auth
settings files, and the demo tenant.

Checked: what the caller's app sees of the signed-in user (X-MS-CLIENT-PRINCIPAL-NAME / -ID /
-IDP, the decoded X-MS-CLIENT-PRINCIPAL, the token store's access token, WEBSITE_AUTH_ENABLED,
APPSETTING_ copies), the caller calling the callee with the user's token (Node's fetch) and the
callee seeing the same user, and identity headers forged by the client never reaching an app.

Run: target/e2e/venv/bin/python -m pytest tests/e2e/test_up_site.py -x
Artifacts: target/test-artifacts/up-<n>-site.log (up's output, the apps' output prefixed).
"""

from __future__ import annotations

import base64
import json
import shutil
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from proxy_e2e import API_UA
from up_e2e import E2E, EXPRESS_SITE, AppBrowser, PlatformProcess, json_of, sign_in, up_unavailable_reason

USER = "alice@contoso.onmicrosoft.com"
GREETING = "hello from the site file"
SECRET = "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"

@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    from conftest import binary
    b = binary()
    reason = up_unavailable_reason(b)
    if reason:
        pytest.skip(reason)
    assert shutil.which("node"), "node is not on PATH"
    work = tmp_path_factory.mktemp("up-site")
    # The example as a user runs it, from a copy (its node_modules: the suite's express).
    site_dir = work / "site"
    shutil.copytree(EXPRESS_SITE, site_dir, ignore=shutil.ignore_patterns("node_modules"))
    (site_dir / "node_modules").symlink_to(E2E / "node_modules", target_is_directory=True)
    site = site_dir / "site.toml"
    # One worker: the platform then runs on tokio's current-thread scheduler (as the benchmarks
    # run it), so that path is covered end to end too.
    p = PlatformProcess(b, work, "site", site=site, extra_args=["--worker-threads", "1"])
    try:
        p.start()
    except RuntimeError as e:
        pytest.fail(f"{e}\nsite file:\n{site.read_text()}")
    yield p
    p.stop(check=False)  # test_zz_sigterm_stops_the_site stops it with assertions


@pytest.fixture(scope="module")
def alice(platform: PlatformProcess) -> tuple[AppBrowser, dict[str, Any]]:
    """alice signed in to the caller (requests-based browser); what the caller's app saw on /."""
    browser, page = sign_in(platform, "caller", "/")
    return browser, json_of(page, "the caller's / after signing in")


def claims(principal: dict[str, Any], typ: str) -> list[str]:
    return [c["val"] for c in principal.get("claims", []) if c.get("typ") == typ]


# --------------------------------------------------------------------------------------------


def test_site_platform_json(platform: PlatformProcess) -> None:
    apps = platform.info["apps"]
    assert list(apps) == ["caller", "callee"] or set(apps) == {"caller", "callee"}, apps
    assert urlsplit(apps["caller"]["url"]).hostname == "127.0.0.2", apps
    assert urlsplit(apps["callee"]["url"]).hostname == "127.0.0.3", apps
    assert platform.info["demo_user"]["username"] == USER
    # placeholders in the auth settings files are resolved: the callee allows the caller's id
    callee = platform.auth_show("callee")
    aad = callee["properties"]["identityProviders"]["azureActiveDirectory"]
    assert aad["validation"]["defaultAuthorizationPolicy"]["allowedApplications"] == \
        [apps["caller"]["client_id"]], aad
    assert aad["registration"]["clientId"] == apps["callee"]["client_id"]
    assert aad["validation"]["allowedAudiences"] == [f"api://{apps['callee']['client_id']}"]
    # the app settings, az-style, with the placeholders resolved
    listed = {s["name"]: s for s in platform.appsettings_list("caller")}
    assert listed["CALLEE_URL"]["value"] == platform.url("callee"), listed
    assert listed["GREETING"] == {"name": "GREETING", "slotSetting": False, "value": GREETING}


def test_anonymous_requests_do_not_reach_the_apps(platform: PlatformProcess) -> None:
    r = requests.get(platform.url("caller", "/"), allow_redirects=False, timeout=10,
                     headers={"User-Agent": "Mozilla/5.0 easyauth-e2e", "Accept": "text/html"})
    assert r.status_code == 302, f"{r.status_code} {r.text[:300]}"
    r = requests.get(platform.url("callee", "/"), allow_redirects=False, timeout=10,
                     headers={"User-Agent": API_UA})
    assert r.status_code == 401, f"{r.status_code} {r.text[:300]}"
    r = requests.get(platform.url("callee", "/"), allow_redirects=False, timeout=10,
                     headers={"User-Agent": API_UA, "Authorization": "Bearer not-a-token"})
    assert r.status_code == 401, f"{r.status_code} {r.text[:300]}"


def test_caller_sees_the_signed_in_user(platform: PlatformProcess, alice) -> None:
    _, seen = alice
    assert seen["app"] == "caller", seen
    assert seen["principal_name"] == USER, seen
    assert seen["principal_idp"] == "aad", seen
    assert seen["principal_id"], seen
    principal = seen["principal"]
    assert isinstance(principal, dict) and principal.get("auth_typ") == "aad", principal
    assert claims(principal, OID_CLAIM) == [seen["principal_id"]], principal
    assert principal.get("name_typ") and principal.get("role_typ"), principal
    assert seen["access_token_present"] is True, seen
    env = seen["env"]
    assert env.get("WEBSITE_AUTH_ENABLED", "").lower() == "true", env
    assert env.get("WEBSITE_SITE_NAME") == "caller", env
    assert env.get("CALLEE_URL") == platform.url("callee"), env
    assert env.get("APPSETTING_CALLEE_URL") == platform.url("callee"), env
    assert env.get("APPSETTING_GREETING") == GREETING, env
    assert env.get("PORT") == str(urlsplit(platform.app("caller")["upstream"]).port), env
    secret = env.get(SECRET, "")
    assert secret.startswith("<") and secret.endswith(" chars>"), \
        f"{SECRET} not resolved from ${{demo.frontend.secret}}: {secret}"


def test_caller_calls_the_callee_with_the_users_token(platform: PlatformProcess, alice) -> None:
    browser, seen = alice
    call = json_of(browser.get(platform.url("caller", "/call")), "the caller's /call")
    assert call["sent_token"] is True, call
    assert call["status"] == 200, call
    callee = call["body"]
    assert callee["app"] == "callee", callee
    assert callee["authorization_scheme"] == "Bearer", callee
    assert callee["principal_idp"] == "aad", callee
    assert callee["principal_id"] == seen["principal_id"], (callee, seen)
    assert callee["principal_name"] == USER, callee
    assert claims(callee["principal"], OID_CLAIM) == [seen["principal_id"]], callee["principal"]
    assert callee["env"].get("APPSETTING_GREETING") == "callee says hi", callee["env"]
    assert callee["env"].get("WEBSITE_SITE_NAME") == "callee", callee["env"]


def test_forged_identity_headers_do_not_reach_the_app(platform: PlatformProcess, alice) -> None:
    browser, seen = alice
    forged_principal = base64.b64encode(json.dumps({
        "auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
        "claims": [{"typ": "name", "val": "mallory@evil.example"},
                   {"typ": OID_CLAIM, "val": "00000000-0000-0000-0000-00000000bad0"}],
    }).encode()).decode()
    forged = {
        "X-MS-CLIENT-PRINCIPAL-NAME": "mallory@evil.example",
        "x-ms-client-principal-id": "00000000-0000-0000-0000-00000000bad0",
        "X-Ms-Client-Principal-Idp": "evil",
        "X-MS-CLIENT-PRINCIPAL": forged_principal,
    }
    # signed in: the app sees alice, not what the client sent
    got = json_of(browser.get(platform.url("caller", "/"), headers=forged), "forged, signed in")
    assert got["principal_name"] == USER, got
    assert got["principal_id"] == seen["principal_id"], got
    assert got["principal_idp"] == "aad", got
    assert "mallory" not in json.dumps(got["principal"]) and got["principal"] == seen["principal"], got
    # a forged token header does not replace the token store's: the callee still accepts the call
    call = json_of(browser.get(platform.url("caller", "/call"),
                               headers={"X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged.token.value"}),
                   "forged token header")
    assert call["status"] == 200 and call["body"]["principal_id"] == seen["principal_id"], call
    # not signed in: the forged headers get no one in
    r = requests.get(platform.url("caller", "/"), headers={**forged, "User-Agent": API_UA},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 401, f"{r.status_code} {r.text[:300]}"
    r = requests.get(platform.url("callee", "/"), headers={**forged, "User-Agent": API_UA},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 401, f"{r.status_code} {r.text[:300]}"


def test_zz_sigterm_stops_the_site(platform: PlatformProcess) -> None:
    """SIGTERM: `up` exits within 10 s, removes platform.json and stops both node processes."""
    assert platform.proc is not None
    pids = platform.app_pids()
    assert pids.get("caller") and pids.get("callee"), pids
    platform.stop()
    assert not platform.platform_json.exists()
