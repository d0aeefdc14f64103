"""Microsoft's tutorial with the real Azure CLI, command by command, against a bare `easyauth up`:
`az webapp up` from each app's folder (the back end in the Windows form), `az webapp config
appsettings set`, `az extension add --name authV2`, the Microsoft provider on both apps, the
tutorial's `az webapp auth show | jq | az webapp auth set` edits, then headless Chromium signs in
at the front end and sees `withAuthentication: true`. Then the rest of the tutorial's commands,
a restart of `up` (everything made with az is still there), a Flask app, failed deployments that
leave the previous one serving, and bad input.

The tutorial's commands run in bash after `eval "$(easyauth env)"`, with plain `az`, as a person
types them; a few checks use the `easyauth az` wrapper."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest
import requests

from az_e2e import GROUP, AzPlatform, Directory, copy_app, jq_path
from easyauth_e2e import ARTIFACTS, describe
from proxy_e2e import API_UA, BROWSER_UA
from up_e2e import chromium_unavailable_reason, explain, run_browser, up_unavailable_reason

pytestmark = pytest.mark.az

FRONT = "tutorial-front"
BACK = "tutorial-back"


@pytest.fixture(scope="module")
def up_binary() -> str:
    from conftest import binary
    b = binary()
    reason = up_unavailable_reason(b)
    if reason:
        pytest.fail(reason)
    return b


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.generate()


@pytest.fixture(scope="module")
def platform(up_binary: str, directory: Directory,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzPlatform]:
    p = AzPlatform(up_binary, tmp_path_factory.mktemp("az-up"), "az-tutorial", directory)
    p.start()
    yield p
    p.stop(check=False)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("az-apps")
    for name in ("frontend", "backend", "flask"):
        copy_app(name, root)
    return root


@pytest.fixture(autouse=True)
def _up_alive(request: pytest.FixtureRequest):
    yield
    p = request.node.funcargs.get("platform")
    if isinstance(p, AzPlatform) and p.proc is not None and p.proc.poll() is not None:
        pytest.fail(f"`easyauth up` exited during {request.node.nodeid}\n{p.log_tail(60)}")


def site_url(platform: AzPlatform, name: str) -> str:
    platform.info = platform.reread()
    return platform.url(name)


def get(url: str, ua: str = API_UA, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(url, headers={"User-Agent": ua, **(headers or {})}, allow_redirects=False, timeout=30)


def raw_site(platform: AzPlatform, name: str) -> dict:
    """The web app as ARM answers (az's own `webapp show` drops fields its SDK does not know)."""
    state = platform.reread()
    url = (f"{state['arm_url']}/subscriptions/{state['subscription_id']}/resourceGroups/{GROUP}"
           f"/providers/Microsoft.Web/sites/{name}?api-version=2024-11-01")
    return json.loads(platform.az("rest", "--method", "get", "--url", url).stdout)


def webapp_up(platform: AzPlatform, folder: Path, name: str, *, plan: str = "myPlan",
              os_type: str = "Linux", runtime: str = "NODE:20-lts") -> dict:
    r = platform.shell(
        f'az webapp up --resource-group {GROUP} --name {name} --plan {plan} --sku FREE '
        f'--location "West Europe" --os-type {os_type} --runtime "{runtime}"', cwd=folder, timeout=600)
    return json.loads(r.stdout)


# --------------------------------------------------------------------------------------------
# The tutorial


def test_az_signs_in_to_the_local_cloud(platform: AzPlatform, directory: Directory):
    account = platform.az_json("account", "show")
    state = platform.reread()
    assert account["tenantId"] == directory.tenant_id, account
    assert account["id"] == state["subscription_id"], account
    assert account["environmentName"] == "easyauth", account
    assert platform.az_json("webapp", "list") == []
    clouds = platform.az_json("cloud", "show")
    assert clouds["endpoints"]["resourceManager"] == state["arm_url"] + "/", clouds


def test_webapp_up_the_front_end_from_its_folder(platform: AzPlatform, apps: Path):
    out = webapp_up(platform, apps / "frontend", FRONT)
    assert out["name"] == FRONT and out["os"] == "Linux" and out["runtime_version"] == "NODE|20-lts", out
    url = site_url(platform, FRONT)
    assert out["URL"] == url, (out, url)
    r = get(url + "/", ua=BROWSER_UA)
    assert r.status_code == 200 and "Get user's profile" in r.text, describe(r)


def test_webapp_up_the_back_end_in_the_windows_form(platform: AzPlatform, apps: Path):
    out = webapp_up(platform, apps / "backend", BACK, plan="myWindowsPlan", os_type="Windows",
                    runtime="NODE:20LTS")
    assert out["os"] == "Windows" and out["runtime_version"] == "NODE|20LTS", out
    r = get(site_url(platform, BACK) + "/get-profile")
    assert r.status_code == 200 and r.json()["withAuthentication"] is False, describe(r)
    site = platform.az_json("webapp", "show", "--resource-group", GROUP, "--name", BACK)
    assert site["kind"] == "app" and site["reserved"] is False, site
    settings = {s["name"]: s["value"] for s in platform.az_json(
        "webapp", "config", "appsettings", "list", "--resource-group", GROUP, "--name", BACK)}
    assert settings.get("WEBSITE_NODE_DEFAULT_VERSION") == "~20", settings


def test_deployment_log_says_which_node_runs(platform: AzPlatform):
    state = platform.reread()
    scm = state["apps"][FRONT]["scm_url"]
    creds = platform.az_json("webapp", "deployment", "list-publishing-credentials",
                             "--resource-group", GROUP, "--name", FRONT)
    auth = (creds["publishingUserName"], creds["publishingPassword"])
    latest = requests.get(f"{scm}/api/deployments/latest", auth=auth, verify=platform.ca_file, timeout=30)
    assert latest.status_code == 200 and latest.json()["status"] == 4, describe(latest)
    log = requests.get(f"{scm}/api/deployments/{latest.json()['id']}/log.txt", auth=auth,
                       verify=platform.ca_file, timeout=30)
    assert "NODE|20-lts" in log.text and "v" in log.text, log.text[:2000]


def test_app_settings_set_backend_url(platform: AzPlatform):
    back = site_url(platform, BACK)
    platform.shell(f"az webapp config appsettings set --resource-group {GROUP} --name {FRONT} "
                   f"--settings BACKEND_URL={back}")
    r = get(site_url(platform, FRONT) + "/get-profile", ua=BROWSER_UA)
    assert r.status_code == 200 and 'id="withAuthentication">false' in r.text, describe(r)


def test_extension_add_auth_v2_offline(platform: AzPlatform):
    platform.shell("az extension add --name authV2")
    names = [e["name"] for e in platform.az_json("extension", "list")]
    assert "authV2" in names, names


def test_add_the_microsoft_identity_provider(platform: AzPlatform, directory: Directory):
    """The portal's "Add identity provider" (registration, secret, settings), with authV2."""
    issuer = platform.reread()["issuer"]
    for name, reg in ((FRONT, directory.frontend), (BACK, directory.backend)):
        platform.shell(
            f"az webapp auth microsoft update --resource-group {GROUP} --name {name} "
            f"--client-id {reg.app_id} --client-secret '{reg.secret}' --issuer {issuer} "
            f"--allowed-token-audiences api://{reg.app_id} --yes\n"
            f"az webapp auth update --resource-group {GROUP} --name {name} --enabled true "
            f"--action RedirectToLoginPage --enable-token-store true")
    shown = platform.az_json("webapp", "auth", "show", "--resource-group", GROUP, "--name", FRONT)
    aad = shown["properties"]["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"]["clientId"] == directory.frontend.app_id, aad
    assert aad["registration"]["clientSecretSettingName"] == "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
    settings = {s["name"] for s in platform.az_json(
        "webapp", "config", "appsettings", "list", "--resource-group", GROUP, "--name", FRONT)}
    assert "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET" in settings
    r = get(site_url(platform, FRONT) + "/", ua=BROWSER_UA)
    assert r.status_code == 302 and r.headers["Location"].startswith("/.auth/login/aad?"), describe(r)


def test_the_tutorials_jq_edits(platform: AzPlatform, directory: Directory):
    """Step 6 and 7 exactly as the tutorial writes them."""
    jq_path()
    back_id, front_id = directory.backend.app_id, directory.frontend.app_id
    platform.shell(f"""
authSettings=$(az webapp auth show -g {GROUP} -n {FRONT})
authSettings=$(echo "$authSettings" | jq '.properties' | jq '.identityProviders.azureActiveDirectory.login += {{"loginParameters":["scope=openid offline_access api://{back_id}/user_impersonation"]}}')
az webapp auth set --resource-group {GROUP} --name {FRONT} --body "$authSettings"
authSettings=$(az webapp auth show -g {GROUP} -n {BACK})
authSettings=$(echo "$authSettings" | jq '.properties' | jq '.identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications += ["{front_id}"]')
az webapp auth set --resource-group {GROUP} --name {BACK} --body "$authSettings"
""")
    front = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", FRONT)
    login = front["properties"]["identityProviders"]["azureActiveDirectory"]["login"]
    assert login["loginParameters"] == [f"scope=openid offline_access api://{back_id}/user_impersonation"]
    back = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", BACK)
    policy = back["properties"]["identityProviders"]["azureActiveDirectory"]["validation"]["defaultAuthorizationPolicy"]
    assert policy["allowedApplications"] == [front_id], policy


def test_chromium_signs_in_and_sees_with_authentication_true(platform: AzPlatform):
    reason = chromium_unavailable_reason()
    if reason:
        pytest.fail(reason)
    platform.info = platform.reread()
    result = run_browser(platform, "full", ARTIFACTS / "az-tutorial", frontend=FRONT)
    assert result["ok"], explain(result) + "\n" + platform.log_tail(60)
    assert result["profile"]["withAuthentication"] == "true", explain(result)


# --------------------------------------------------------------------------------------------
# The rest of the tutorial's commands


def test_show_list_restart_stop_start(platform: AzPlatform):
    shown = platform.az_json("webapp", "show", "-g", GROUP, "-n", FRONT)
    assert shown["state"] == "Running" and shown["defaultHostName"], shown
    names = sorted(s["name"] for s in platform.az_json("webapp", "list"))
    assert names == sorted([FRONT, BACK]), names
    before = raw_site(platform, FRONT)["properties"]["easyauth"]["process"]["pid"]
    platform.az("webapp", "restart", "-g", GROUP, "-n", FRONT)
    after = raw_site(platform, FRONT)["properties"]["easyauth"]["process"]
    assert after["pid"] != before, after
    platform.az("webapp", "stop", "-g", GROUP, "-n", FRONT)
    assert platform.az_json("webapp", "show", "-g", GROUP, "-n", FRONT)["state"] == "Stopped"
    r = get(site_url(platform, FRONT) + "/", ua=BROWSER_UA)
    assert r.status_code == 403 and "stopped" in r.text, describe(r)
    platform.az("webapp", "start", "-g", GROUP, "-n", FRONT)
    r = get(site_url(platform, FRONT) + "/", ua=BROWSER_UA)
    assert r.status_code == 302, describe(r)


def test_up_restarted_keeps_what_az_made(platform: AzPlatform):
    platform.stop()
    platform.proc = None
    platform.start()
    names = sorted(s["name"] for s in platform.az_json("webapp", "list"))
    assert names == sorted([FRONT, BACK]), names
    front = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", FRONT)
    assert front["properties"]["identityProviders"]["azureActiveDirectory"]["login"]["loginParameters"]
    r = get(site_url(platform, BACK) + "/get-profile")
    assert r.status_code == 401, describe(r)
    result = run_browser(platform, "profile-status", ARTIFACTS / "az-tutorial-restarted", frontend=FRONT)
    assert result["ok"] and result["status"] == 200, explain(result) + "\n" + platform.log_tail(60)


# --------------------------------------------------------------------------------------------
# Python, failed deployments, bad input


def test_flask_app_deploys_and_answers_through_its_module(platform: AzPlatform, apps: Path,
                                                          directory: Directory):
    out = webapp_up(platform, apps / "flask", "tutorial-flask", runtime="PYTHON:3.11")
    assert out["runtime_version"] == "PYTHON|3.11", out
    issuer = platform.reread()["issuer"]
    b, f = directory.backend, directory.frontend
    body = {"platform": {"enabled": True},
            "globalValidation": {"requireAuthentication": True, "unauthenticatedClientAction": "Return401"},
            "identityProviders": {"azureActiveDirectory": {"enabled": True, "registration": {
                "clientId": b.app_id, "openIdIssuer": issuer},
                "validation": {"allowedAudiences": [f"api://{b.app_id}"]}}}}
    platform.az("webapp", "auth", "set", "-g", GROUP, "-n", "tutorial-flask", "--body", json.dumps(body))
    url = site_url(platform, "tutorial-flask")
    assert get(url + "/").status_code == 401
    token = requests.post(f"{platform.idp_url}/{directory.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": f.app_id, "client_secret": f.secret,
        "scope": f"api://{b.app_id}/.default"}, verify=platform.ca_file, timeout=30).json()["access_token"]
    r = get(url + "/", headers={"Authorization": f"Bearer {token}", "User-Agent": API_UA})
    assert r.status_code == 200, describe(r)
    seen = r.json()
    assert seen["principal_idp"] == "aad" and seen["principal_id"], seen
    assert "gunicorn" in seen["server"].lower(), seen


def test_failed_build_and_crashing_start_keep_the_previous_deployment(platform: AzPlatform, apps: Path):
    folder = apps / "breakme"
    copy_app("backend", apps)
    (apps / "backend").rename(folder)
    webapp_up(platform, folder, "tutorial-breakme")
    url = site_url(platform, "tutorial-breakme")
    assert get(url + "/get-profile").status_code == 200
    # A dependency that does not exist: the build fails, az says so with npm's error.
    package = json.loads((folder / "package.json").read_text())
    package["dependencies"]["easyauth-no-such-package-zz9"] = "1.0.0"
    (folder / "package.json").write_text(json.dumps(package))
    r = platform.shell(
        f'az webapp up --resource-group {GROUP} --name tutorial-breakme --plan myPlan --sku FREE '
        f'--location "West Europe" --os-type Linux --runtime "NODE:20-lts" || echo "EXIT=$?"',
        cwd=folder, timeout=600)
    assert "EXIT=" in r.stdout, r.stdout
    assert "build process failed" in r.stderr and ("E404" in r.stderr or "404" in r.stderr), r.stderr[-3000:]
    assert get(url + "/get-profile").status_code == 200, "the previous deployment keeps serving"
    # A start that crashes: az says so with the app's output.
    del package["dependencies"]["easyauth-no-such-package-zz9"]
    (folder / "package.json").write_text(json.dumps(package))
    (folder / "server.js").write_text("throw new Error('boom: the app crashes at start');\n")
    r = platform.shell(
        f'az webapp up --resource-group {GROUP} --name tutorial-breakme --plan myPlan --sku FREE '
        f'--location "West Europe" --os-type Linux --runtime "NODE:20-lts" || echo "EXIT=$?"',
        cwd=folder, timeout=600)
    assert "EXIT=" in r.stdout, r.stdout
    assert "boom: the app crashes at start" in r.stderr, r.stderr[-3000:]
    assert get(url + "/get-profile").status_code == 200, "the previous deployment keeps serving"


def test_webapp_delete(platform: AzPlatform):
    url = site_url(platform, "tutorial-breakme")
    folder = platform.data_dir / "sites" / "tutorial-breakme"
    assert folder.is_dir()
    platform.az("webapp", "delete", "--resource-group", GROUP, "--name", "tutorial-breakme")
    r = platform.az("webapp", "show", "-g", GROUP, "-n", "tutorial-breakme", check=False)
    assert r.returncode != 0 and "ResourceNotFound" in r.stderr + r.stdout, r.stderr
    assert "tutorial-breakme" not in platform.reread()["apps"]
    assert not folder.exists(), "the deployed code is deleted with the app"
    with pytest.raises(requests.ConnectionError):
        get(url + "/get-profile")
    assert "tutorial-breakme" not in [s["name"] for s in platform.az_json("webapp", "list")]


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_kudu_refuses_wrong_credentials_and_unsafe_zips(platform: AzPlatform, tmp_path: Path):
    state = platform.reread()
    scm = state["apps"][BACK]["scm_url"]
    creds = platform.az_json("webapp", "deployment", "list-publishing-credentials", "-g", GROUP, "-n", BACK)
    good = (creds["publishingUserName"], creds["publishingPassword"])
    ok_zip = zip_of({"server.js": b"x"})
    r = requests.post(f"{scm}/api/zipdeploy?isAsync=true", data=ok_zip, auth=(good[0], "wrong"),
                      verify=platform.ca_file, timeout=30)
    assert r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("Basic"), describe(r)
    before = sorted(str(p) for p in platform.data_dir.rglob("*"))
    for evil in ({"../../escaped.txt": b"x"}, {"/abs/escaped.txt": b"x"}):
        r = requests.post(f"{scm}/api/zipdeploy?isAsync=true", data=zip_of(evil), auth=good,
                          verify=platform.ca_file, timeout=30)
        assert r.status_code == 400, describe(r)
    assert not list(platform.data_dir.parent.rglob("escaped.txt"))
    after = sorted(str(p) for p in platform.data_dir.rglob("*"))
    assert [p for p in after if p not in before and "deployments" in p and "staging" not in p] == []
    # The back end still serves its deployment.
    assert get(site_url(platform, BACK) + "/get-profile").status_code == 401


def test_resource_manager_errors_read_well_in_az(platform: AzPlatform):
    state = platform.reread()
    base = f"{state['arm_url']}/subscriptions/{state['subscription_id']}/resourceGroups/{GROUP}/providers/Microsoft.Web"
    r = platform.az("rest", "--method", "get", "--url", f"{base}/functions/x?api-version=2024-11-01", check=False)
    assert r.returncode != 0 and "InvalidResourceType" in r.stderr, r.stderr
    r = platform.az("rest", "--method", "put", "--url",
                    f"{base}/sites/{FRONT}/config/appsettings?api-version=2024-11-01",
                    "--body", '{"properties": {"A": [1]}}', check=False)
    assert r.returncode != 0 and "InvalidRequestContent" in r.stderr, r.stderr
    assert "expected a string, found an array" in r.stderr and "properties" in r.stderr, r.stderr
    platform.az("group", "create", "--name", "otherGroup", "--location", "westeurope")
    r = platform.az("webapp", "create", "-g", "otherGroup", "-n", FRONT, "-p",
                    f"/subscriptions/{state['subscription_id']}/resourceGroups/{GROUP}/providers/Microsoft.Web/serverfarms/myPlan",
                    check=False)
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr


def test_without_az_the_wrapper_says_how_to_install_it(platform: AzPlatform, tmp_path: Path):
    import subprocess
    env = platform.az_env()
    env["EASYAUTH_AZ"] = str(tmp_path / "no-az-here")
    env["PATH"] = "/usr/bin:/bin"  # Debian's PATH without any az
    for cmd in (["az", "--data-dir", str(platform.data_dir), "version"], ["env", "--data-dir", str(platform.data_dir)]):
        r = subprocess.run([platform.binary, *cmd], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode != 0, r.stdout
        assert "pip install azure-cli" in r.stderr and "not found" in r.stderr, r.stderr


def test_service_principal_sign_in_with_a_wrong_secret_shows_the_aadsts_error(platform: AzPlatform,
                                                                             directory: Directory):
    r = platform.shell(
        f"az login --service-principal -u {directory.frontend.app_id} -p wrong-secret "
        f"--tenant {directory.tenant_id} 2>&1 || true")
    assert "AADSTS7000215" in r.stdout, r.stdout
    # Signing in with the right one works (and az is still usable afterwards).
    platform.shell(f"az login --service-principal -u {directory.frontend.app_id} "
                   f"-p '{directory.frontend.secret}' --tenant {directory.tenant_id} --output none")
    assert platform.az_json("account", "show")["user"]["name"] == directory.frontend.app_id
    time.sleep(0)  # keeps the ordering explicit: later tests sign in again as they need


def test_az_login_use_device_code_as_a_user(platform: AzPlatform, directory: Directory,
                                           monkeypatch: pytest.MonkeyPatch):
    """`az login --use-device-code`: the test reads the code from az's output and completes the
    identity provider's page as the person would; az then lists the subscription as alice."""
    import re
    import subprocess
    import threading
    from types import SimpleNamespace

    from easyauth_e2e import Browser, User, device_login

    script = (f'eval "$({platform.binary} env --data-dir {platform.data_dir})"\n'
              f"exec az login --use-device-code --tenant {directory.tenant_id} --output json")
    proc = subprocess.Popen(["bash", "-c", script], env=platform.az_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()
    message: dict[str, str] = {}

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            m = re.search(r"open the page (\S+) and enter the code (\S+) to authenticate", line)
            if m:
                message.update(uri=m.group(1), code=m.group(2))
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(60), "az printed no device code:\n" + "".join(lines)
        assert message["uri"] == f"{platform.idp_url}/devicelogin", message
        # requests lets REQUESTS_CA_BUNDLE override a session's own `verify`.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", platform.ca_file)
        monkeypatch.setenv("CURL_CA_BUNDLE", platform.ca_file)
        idp = SimpleNamespace(ca_path=Path(platform.ca_file), base=platform.idp_url,
                              host=platform.idp_url.split("//", 1)[1])
        alice = User(id="", upn=directory.user, password=directory.password, display_name="Alice Smith",
                     given_name="Alice", surname="Smith")
        pages = device_login(Browser(idp), message["uri"], message["code"], alice)  # type: ignore[arg-type]
        assert pages[-1] == "done" and "login" in pages, pages
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    assert proc.returncode == 0, "".join(lines)
    accounts = json.loads(out)
    state = platform.reread()
    mine = [a for a in accounts if a["id"] == state["subscription_id"]]
    assert mine and mine[0]["user"] == {"name": directory.user, "type": "user"}, accounts
    # As alice, az works against the Resource Manager.
    names = {s["name"] for s in platform.az_json("webapp", "list")}
    assert FRONT in names, names


def test_az_webapp_log_tail_shows_the_apps_output_and_refusals(platform: AzPlatform):
    """`az webapp log tail` follows the back end's log stream: its output, then a refused
    request with the module's reason as it happens."""
    import subprocess
    import threading

    script = (f'eval "$({platform.binary} env --data-dir {platform.data_dir})"\n'
              f"exec az webapp log tail --resource-group {GROUP} --name {BACK}")
    proc = subprocess.Popen(["bash", "-c", script], env=platform.az_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    connected, refused = threading.Event(), threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "connected to log-streaming service" in line:
                connected.set()
            if "easyauth: 401 GET /get-profile" in line:
                refused.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert connected.wait(90), "".join(lines)
        assert get(site_url(platform, BACK) + "/get-profile").status_code == 401
        assert refused.wait(30), "".join(lines)
    finally:
        proc.kill()
        proc.wait()
    text = "".join(lines)
    line = next(l for l in lines if "easyauth: 401 GET /get-profile" in l)
    assert len(line.split("easyauth: 401 GET /get-profile", 1)[1].strip()) > 10, line
    assert "server.js" in text or "listening" in text.lower(), "the app's own output: " + text[-3000:]


# --------------------------------------------------------------------------------------------
# The portal


def test_the_portal_steps_in_chromium(platform: AzPlatform, directory: Directory):
    """Step 6 and 7 again, clicked in the local portal instead of jq: undone with az first, then
    Chromium sets the back end's allowed client application and the front end's login
    parameters, and the front end's profile call works again."""
    import subprocess

    from up_e2e import E2E, ca_env
    reason = chromium_unavailable_reason()
    if reason:
        pytest.fail(reason)
    back_id, front_id = directory.backend.app_id, directory.frontend.app_id
    platform.shell(f"""
authSettings=$(az webapp auth show -g {GROUP} -n {FRONT} | jq '.properties' | jq '.identityProviders.azureActiveDirectory.login.loginParameters = []')
az webapp auth set --resource-group {GROUP} --name {FRONT} --body "$authSettings"
authSettings=$(az webapp auth show -g {GROUP} -n {BACK} | jq '.properties' | jq '.identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications = []')
az webapp auth set --resource-group {GROUP} --name {BACK} --body "$authSettings"
""")
    state = platform.reread()
    shots = ARTIFACTS / "az-portal"
    cmd = ["node", str(E2E / "node" / "portal_steps.mjs"), "--portal", state["portal_url"] + "/",
           "--user", directory.user, "--password", directory.password, "--front", FRONT, "--back", BACK,
           "--front-client", front_id, "--back-client", back_id, "--screenshot-dir", str(shots),
           "--ca-file", state["ca_file"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(E2E), env=ca_env(state["ca_file"]))
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"portal_steps.mjs printed no JSON (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result["ok"], json.dumps(result, indent=1)[-4000:] + "\n" + platform.log_tail(40)
    names = [b["name"] for b in result["blades"]]
    assert "front-end-environment-variables" in names, names
    assert "BACKEND_URL" in result["blades"][-1]["text"], result["blades"][-1]["text"]
    front = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", FRONT)
    login = front["properties"]["identityProviders"]["azureActiveDirectory"]["login"]
    assert login["loginParameters"] == [f"scope=openid offline_access api://{back_id}/user_impersonation"], login
    back = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", BACK)
    policy = back["properties"]["identityProviders"]["azureActiveDirectory"]["validation"]["defaultAuthorizationPolicy"]
    assert policy["allowedApplications"] == [front_id], policy
    platform.info = state
    result = run_browser(platform, "profile-status", ARTIFACTS / "az-portal-profile", frontend=FRONT)
    assert result["ok"] and result["status"] == 200, explain(result) + "\n" + platform.log_tail(60)


def test_the_tutorial_in_the_portal_from_add_identity_provider(platform: AzPlatform):
    """The tutorial's portal steps from "Add identity provider" on, in Chromium: new app
    registrations for both apps, the back end's scope granted to the front end (API permissions,
    Grant admin consent), the allowed client application, the login parameters; then a person
    signs in at the front end and sees `withAuthentication: true`."""
    import subprocess

    from up_e2e import E2E, ca_env
    reason = chromium_unavailable_reason()
    if reason:
        pytest.fail(reason)
    state = platform.reread()
    shots = ARTIFACTS / "az-portal-tutorial"
    cmd = ["node", str(E2E / "node" / "portal_tutorial.mjs"), "--portal", state["portal_url"] + "/",
           "--user", platform.user, "--password", platform.password, "--front", FRONT, "--back", BACK,
           "--screenshot-dir", str(shots), "--ca-file", state["ca_file"]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=str(E2E), env=ca_env(state["ca_file"]))
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"portal_tutorial.mjs printed no JSON (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result["ok"], json.dumps(result, indent=1)[-4000:] + "\n" + platform.log_tail(40)
    front_client, back_client = result["front_client"], result["back_client"]
    front = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", FRONT)["properties"]
    aad = front["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"]["clientId"] == front_client, aad
    assert aad["login"]["loginParameters"] == [
        f"scope=openid offline_access api://{back_client}/user_impersonation"], aad
    back = platform.az_json("webapp", "auth", "show", "-g", GROUP, "-n", BACK)["properties"]
    policy = back["identityProviders"]["azureActiveDirectory"]["validation"]["defaultAuthorizationPolicy"]
    assert policy["allowedApplications"] == [front_client], policy
    # The front end's registration holds the back end's scope, granted for the tenant (az ad).
    grants = platform.az_json("ad", "app", "permission", "list-grants", "--id", front_client)
    assert any("user_impersonation" in g["scope"] for g in grants), grants
    platform.info = state
    result = run_browser(platform, "full", ARTIFACTS / "az-portal-tutorial-signin", frontend=FRONT)
    assert result["ok"], explain(result) + "\n" + platform.log_tail(60)
    assert result["profile"]["withAuthentication"] == "true", explain(result)
