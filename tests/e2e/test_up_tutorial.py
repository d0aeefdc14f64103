"""`easyauth up` without a site file: Microsoft's tutorial "Authenticate and authorize users
end-to-end in Azure App Service", accepted the way a person would: headless Chromium signs alice in
through the front end, opens "Get user's profile" (the front end calls the back end with her
token), signs out; then the tutorial's two classic mistakes are made and undone on the running
platform with the az-style commands (`easyauth webapp auth set`, `... config appsettings set`):
the back end not allowing the front end (403) and the front end not asking for the back end's
scope (401), each explained on the profile page. One `up` process serves the whole module and
must survive all of it (same pid), then stop on SIGTERM within 10 s and take its apps along.

Run: target/e2e/venv/bin/python -m pytest tests/e2e/test_up_tutorial.py -x
Artifacts: target/test-artifacts/up-<n>-tutorial.log (up's output), up-tutorial/*.png
(screenshots), browser-<n>-<scenario>.log (each Chromium run).
"""

from __future__ import annotations

import copy
import html
import re
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from easyauth_e2e import ARTIFACTS
from proxy_e2e import BROWSER_UA
from up_e2e import (
    PlatformProcess,
    aad,
    chromium_unavailable_reason,
    explain,
    run_browser,
    sign_in,
    up_unavailable_reason,
    with_allowed_applications,
    with_login_parameters,
)

USER = "alice@contoso.onmicrosoft.com"
DISPLAY_NAME = "Alice Smith"
SHOTS = ARTIFACTS / "up-tutorial"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def up_binary() -> str:
    from conftest import binary
    b = binary()
    reason = up_unavailable_reason(b)
    if reason:
        pytest.skip(reason)
    return b


@pytest.fixture(scope="module")
def platform(up_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(up_binary, tmp_path_factory.mktemp("up-tutorial"), "tutorial")
    try:
        p.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    p.first_pid = p.pid  # type: ignore[attr-defined]
    yield p
    p.stop(check=False)  # test_zz_sigterm_stops_the_platform stops it with assertions


@pytest.fixture(autouse=True)
def _same_platform_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every change in this module is made on the running platform: after each test `up` is
    still the process that started first (no restart), and platform.json still says so."""
    yield
    if "platform" not in request.fixturenames:
        return
    p: PlatformProcess = request.getfixturevalue("platform")
    if p.proc is None:  # stopped on purpose by the last test
        return
    p.assert_running()
    assert p.reread()["pid"] == p.first_pid == p.proc.pid, \
        "platform.json names another process: `up` was restarted"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def chromium() -> None:
    reason = chromium_unavailable_reason()
    if reason:
        pytest.skip(reason)


def allowed_apps(resource: dict) -> list[str]:
    return aad(resource)["validation"]["defaultAuthorizationPolicy"]["allowedApplications"]


def profile_ok(platform: PlatformProcess, what: str) -> None:
    r = run_browser(platform, "profile-status", SHOTS)
    assert r["ok"] and r["status"] == 200, f"{what}: the profile page should work again\n{explain(r)}"
    assert r["profile"]["withAuthentication"] == "true", explain(r)


# --------------------------------------------------------------------------------------------


def refusal_lines(platform: PlatformProcess) -> list[str]:
    return [ln for ln in platform.log_text().splitlines() if "refused a call from" in ln]


def wait_for_log(platform: PlatformProcess, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in ln for ln in refusal_lines(platform)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no platform log line with {text!r}:\n{platform.log_tail()}")


def test_platform_json_describes_the_tutorial(platform: PlatformProcess) -> None:
    info = platform.info
    assert info["pid"] == platform.proc.pid  # type: ignore[union-attr]
    arm = urlsplit(info["arm_url"])
    assert (arm.scheme, arm.hostname) == ("https", "127.0.0.1") and arm.port, info["arm_url"]
    assert GUID.match(info["subscription_id"]) and GUID.match(info["client_id"]), info
    idp = urlsplit(info["idp_url"])
    assert (idp.scheme, idp.hostname) == ("https", "127.0.0.1") and idp.port, info["idp_url"]
    assert Path(info["ca_file"]).is_absolute() and Path(info["ca_file"]).is_file(), info["ca_file"]
    assert set(info["apps"]) == {"frontend", "backend"}, info["apps"]
    for name, host in (("frontend", "127.0.0.2"), ("backend", "127.0.0.3")):
        app = info["apps"][name]
        u = urlsplit(app["url"])
        assert (u.scheme, u.hostname) == ("http", host) and u.port, app
        up = urlsplit(app["upstream"])
        assert (up.scheme, up.hostname) == ("http", "127.0.0.1") and up.port, app
        assert GUID.match(app["client_id"]), app
    assert info["apps"]["frontend"]["client_id"] != info["apps"]["backend"]["client_id"]
    assert info["demo_user"]["username"] == USER
    assert info["demo_user"]["password"]

    # the issuer is the IdP's, and the IdP's certificate chains to ca_file
    disc = requests.get(f"{info['issuer'].rstrip('/')}/.well-known/openid-configuration",
                        verify=platform.ca_file, timeout=10)
    assert disc.status_code == 200, disc.text[:500]
    assert disc.json()["issuer"] == info["issuer"]
    assert info["issuer"].startswith(platform.idp_url + "/") and info["tenant_id"] in info["issuer"]


def test_auth_settings_are_the_tutorials(platform: PlatformProcess) -> None:
    fe_id, be_id = platform.client_id("frontend"), platform.client_id("backend")
    fe, be = platform.auth_show("frontend"), platform.auth_show("backend")
    for res in (fe, be):
        assert res["name"] == "authsettingsV2" and res["id"] and res["type"], res
    assert aad(fe)["registration"]["clientId"] == fe_id
    scopes = " ".join(aad(fe)["login"]["loginParameters"])
    assert f"api://{be_id}/user_impersonation" in scopes, aad(fe)
    assert fe["properties"]["globalValidation"]["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert aad(be)["registration"]["clientId"] == be_id
    assert allowed_apps(be) == [fe_id], aad(be)
    assert be["properties"]["globalValidation"]["unauthenticatedClientAction"] == "Return401"


def test_unauthenticated_requests(platform: PlatformProcess) -> None:
    # a browser on the front end is sent to the IdP's sign-in (perhaps via /.auth/login/aad)
    url = platform.url("frontend", "/get-profile")
    for _ in range(3):
        r = requests.get(url, headers={"User-Agent": BROWSER_UA, "Accept": "text/html"},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 302, f"{url}: {r.status_code} {r.text[:300]}"
        url = urljoin(url, r.headers["Location"])
        if not url.startswith(platform.url("frontend")):
            break
    assert url.startswith(platform.idp_url + "/") and "/authorize" in url, url
    assert f"client_id={platform.client_id('frontend')}" in url, url
    # the back end is an API: no token, no entry, never a redirect
    r = requests.get(platform.url("backend", "/get-profile"), headers={"User-Agent": BROWSER_UA},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 401, f"{r.status_code} {r.text[:300]}"


def test_browser_signs_in_gets_the_profile_and_signs_out(platform: PlatformProcess, chromium: None) -> None:
    """The tutorial's acceptance, in Chromium: front end -> IdP sign-in -> (consent) -> home ->
    "Get user's profile" shows withAuthentication true and alice's name -> sign out -> the
    profile page asks for a sign-in again."""
    shot = SHOTS / "profile.png"
    shot.unlink(missing_ok=True)
    r = run_browser(platform, "full", SHOTS, display_name=DISPLAY_NAME)
    assert r["ok"] and r["exit_code"] == 0, explain(r)
    assert r["sign_in_page"].startswith(platform.idp_url + "/"), r["sign_in_page"]
    assert r["home_url"].startswith(platform.url("frontend")), r["home_url"]
    assert r["signed_in_as"], f"the home page did not get X-MS-CLIENT-PRINCIPAL-NAME\n{explain(r)}"
    assert r["profile"]["withAuthentication"] == "true", explain(r)
    assert r["profile"]["displayName"] == DISPLAY_NAME, explain(r)
    assert r["after_sign_out"].startswith(platform.idp_url + "/"), explain(r)
    assert r["cookies_after_sign_out"] == [], r["cookies_after_sign_out"]
    data = shot.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n"), f"{shot}: {len(data)} bytes"


def test_back_end_without_the_front_end_in_allowed_applications(platform: PlatformProcess,
                                                                 chromium: None) -> None:
    fe_id = platform.client_id("frontend")
    original = platform.auth_show("backend")
    assert fe_id in allowed_apps(original)
    someone_else = str(uuid.uuid4())
    try:
        platform.auth_set("backend", with_allowed_applications(original, [someone_else]))
        assert allowed_apps(platform.auth_show("backend")) == [someone_else]

        r = run_browser(platform, "profile-status", SHOTS)
        assert r["ok"], explain(r)
        assert r["status"] == 403, explain(r)
        # the module's own reason (x-easyauth-reason), shown on the page, names the setting
        assert r["reason"] and "allowedApplications" in r["reason"], explain(r)
        assert fe_id in r["reason"], explain(r)
        assert "allowedApplications" in r["explanation"], explain(r)
        # the platform's log names the calling app and the commands that fix it
        wait_for_log(platform, "backend refused a call from frontend")
        line = refusal_lines(platform)[-1]
        assert "status=403" in line and f"add {fe_id} (app frontend) to backend's" in line, line
        assert "easyauth webapp auth set --name backend" in line, line
    finally:
        platform.auth_set("backend", original)
    assert allowed_apps(platform.auth_show("backend")) == allowed_apps(original)
    profile_ok(platform, "allowedApplications restored")


def test_front_end_without_the_back_end_scope(platform: PlatformProcess, chromium: None) -> None:
    be_id = platform.client_id("backend")
    original = platform.auth_show("frontend")
    params = aad(original)["login"]["loginParameters"]
    without = [" ".join(w for w in p.split(" ") if be_id not in w) if p.startswith("scope=") else p
               for p in params]
    assert without != params and not any(be_id in p for p in without), params
    try:
        # as the tutorial does it: `az webapp auth set --body "$(... | jq '.properties' ...)"`
        platform.auth_set("frontend", with_login_parameters(original, without)["properties"],
                          inline=True)
        assert aad(platform.auth_show("frontend"))["login"]["loginParameters"] == without

        # a fresh browser: a new sign-in with the new loginParameters
        r = run_browser(platform, "profile-status", SHOTS)
        assert r["ok"], explain(r)
        assert r["status"] == 401, explain(r)
        assert r["reason"], f"no x-easyauth-reason shown\n{explain(r)}"
        assert "aud" in r["reason"].lower(), explain(r)  # the token is not for the back end
        assert "loginParameters" in r["explanation"] and "scope" in r["explanation"], explain(r)
        wait_for_log(platform, "status=401")
        line = [ln for ln in refusal_lines(platform) if "status=401" in ln][-1]
        assert "put backend's scope in frontend's" in line and "loginParameters" in line, line
    finally:
        platform.auth_set("frontend", original)
    assert aad(platform.auth_show("frontend"))["login"]["loginParameters"] == params
    profile_ok(platform, "loginParameters restored")


def test_app_setting_restarts_only_that_app(platform: PlatformProcess) -> None:
    """`webapp config appsettings set` on the front end: the front end restarts with the new
    setting (its /debug page shows it), the back end's process is left alone."""
    before = platform.app_pids()
    assert before.get("frontend") and before.get("backend"), \
        f"cannot find the apps among up's child processes: {before}"
    browser, page = sign_in(platform, "frontend", "/debug")
    assert page.status_code == 200 and "App Service environment variables" in page.text, page.text[:500]

    marker = f"e2e-{uuid.uuid4()}"
    answer = platform.appsettings_set("frontend", E2E_MARKER=marker)
    assert isinstance(answer, list), answer
    listed = platform.appsettings_list("frontend")
    entry = [s for s in listed if s.get("name") == "E2E_MARKER"]
    assert entry == [{"name": "E2E_MARKER", "slotSetting": False, "value": marker}], listed
    assert not any(s.get("name") == "E2E_MARKER" for s in platform.appsettings_list("backend"))

    # the front end comes back with it (same browser session: the module kept it)
    deadline, last = time.monotonic() + 30, ""
    while time.monotonic() < deadline:
        r = browser.get(platform.url("frontend", "/debug"))
        last = f"HTTP {r.status_code}: {r.text[:300]}"
        if r.status_code == 200 and "APPSETTING_E2E_MARKER" in r.text and marker in r.text:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the front end's /debug never showed APPSETTING_E2E_MARKER: {last}\n"
                             f"{platform.log_tail()}")

    after = platform.app_pids()
    assert after.get("backend") == before["backend"], \
        f"the back end's processes changed: {before['backend']} -> {after.get('backend')}"
    assert after.get("frontend") and after["frontend"].isdisjoint(before["frontend"]), \
        f"the front end was not restarted: {before['frontend']} -> {after.get('frontend')}"
    # and the whole chain still works with the restarted front end
    r = browser.get(platform.url("frontend", "/get-profile"))
    assert r.status_code == 200 and 'id="withAuthentication">true<' in r.text, r.text[:1000]


def test_url_fragments_survive_sign_in_when_preserved(platform: PlatformProcess,
                                                     chromium: None) -> None:
    """login.preserveUrlFragmentsForLogins, in a real browser: a page opened as /debug#section-2
    is where the sign-in ends, fragment included. Without it the fragment is lost at the sign-in
    form (the browser's POST has none to carry over), which is why App Service has the setting."""
    r = run_browser(platform, "fragment", SHOTS)
    assert r["ok"] and r["final_path"] == "/debug", explain(r)
    assert r["final_hash"] == "", f"expected the fragment to be lost without the setting\n{explain(r)}"
    original = platform.auth_show("frontend")
    preserved = copy.deepcopy(original)
    preserved["properties"].setdefault("login", {})["preserveUrlFragmentsForLogins"] = True
    try:
        platform.auth_set("frontend", preserved)
        r = run_browser(platform, "fragment", SHOTS)
        assert r["ok"], explain(r)
        assert (r["final_path"], r["final_hash"]) == ("/debug", "#section-2"), explain(r)
    finally:
        platform.auth_set("frontend", original)


def test_next_step_on_behalf_of_graph(platform: PlatformProcess) -> None:
    """The tutorial's next step, one app setting away: the back end exchanges the user's token
    on-behalf-of for a Graph token and answers with the user's profile from Graph /v1.0/me."""
    try:
        platform.appsettings_set("backend", BACKEND_USE_GRAPH="true")
        browser, _ = sign_in(platform, "frontend")
        page = browser.get(platform.url("frontend", "/get-profile"))
        text = html.unescape(page.text)
        assert page.status_code == 200, text[:2000]
        # Fields only Graph's /v1.0/me has, from the local Graph stand-in via the OBO token.
        assert '"userPrincipalName": "alice@contoso.onmicrosoft.com"' in text, text[:3000]
        assert "/v1.0/$metadata#users/$entity" in text, text[:3000]
        assert '"withAuthentication": true' in text, text[:3000]
    finally:
        platform.webapp("config", "appsettings", "delete", "--name", "backend",
                        "--setting-names", "BACKEND_USE_GRAPH")
    browser, _ = sign_in(platform, "frontend")
    text = html.unescape(browser.get(platform.url("frontend", "/get-profile")).text)
    assert "userPrincipalName" not in text and '"withAuthentication": true' in text, text[:3000]


def test_zz_sigterm_stops_the_platform(platform: PlatformProcess) -> None:
    """SIGTERM: `up` exits within 10 s, removes platform.json and stops its apps."""
    assert platform.proc is not None
    platform.stop()  # asserts all three
    assert not platform.platform_json.exists()
