"""`az ad` with the real Azure CLI against a bare `easyauth up`: the identity provider answers
Microsoft Graph for the directory. The `easyauth az` wrapper signs az in as the platform's
service principal, whose Graph app roles let it manage the directory. An app is created,
given an identifier URI, a service principal, a secret, a Graph permission and its admin grant,
and a scope through `az rest`; the secret then works at the token endpoint. Users and
credentials are managed too; last, a user signed in with the device code does the same with her
delegated token."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest
import requests

from az_e2e import AzPlatform, Directory
from up_e2e import up_unavailable_reason

pytestmark = pytest.mark.az

GRAPH = "00000003-0000-0000-c000-000000000000"
USER_READ = "e1fe6dd8-ba31-4d61-89e7-88639da4683d"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzPlatform]:
    from conftest import binary
    b = binary()
    reason = up_unavailable_reason(b)
    if reason:
        pytest.fail(reason)
    p = AzPlatform(b, tmp_path_factory.mktemp("az-graph"), "az-graph", Directory.generate())
    p.start()
    yield p
    p.stop(check=False)


def test_az_ad_manages_app_registrations(platform: AzPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    app = platform.az_json("ad", "app", "create", "--display-name", "graph-e2e-app")
    app_id, object_id = app["appId"], app["id"]
    assert app["displayName"] == "graph-e2e-app"

    platform.az("ad", "app", "update", "--id", app_id, "--identifier-uris", f"api://{app_id}")
    shown = platform.az_json("ad", "app", "show", "--id", app_id)
    assert shown["identifierUris"] == [f"api://{app_id}"]

    sp = platform.az_json("ad", "sp", "create", "--id", app_id)
    assert sp["appId"] == app_id
    assert f"api://{app_id}" in sp["servicePrincipalNames"]

    cred = platform.az_json("ad", "app", "credential", "reset", "--id", app_id, "--append")
    secret = cred["password"]
    assert cred["appId"] == app_id and secret

    platform.az("ad", "app", "permission", "add", "--id", app_id, "--api", GRAPH,
                "--api-permissions", f"{USER_READ}=Scope")
    platform.az("ad", "app", "permission", "grant", "--id", app_id, "--api", GRAPH, "--scope", "User.Read")
    grants = platform.az_json("ad", "app", "permission", "list-grants", "--id", app_id)
    assert any("User.Read" in g["scope"] for g in grants), grants

    scope_id = "5b7c2a1f-3e4d-4f6a-8b1c-2d3e4f5a6b7c"
    body = {"api": {"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": [
        {"id": scope_id, "value": "access_as_user", "type": "User", "isEnabled": True,
         "adminConsentDisplayName": "Access graph-e2e-app", "adminConsentDescription": "Access it",
         "userConsentDisplayName": "Access graph-e2e-app", "userConsentDescription": "Access it"}]}}
    graph_url = f"{platform.idp_url}/v1.0/applications/{object_id}"
    platform.az("rest", "--method", "PATCH", "--uri", graph_url,
                "--headers", "Content-Type=application/json", "--body", json.dumps(body))
    shown = platform.az_json("ad", "app", "show", "--id", app_id)
    assert [s["value"] for s in shown["api"]["oauth2PermissionScopes"]] == ["access_as_user"]

    # Removing an enabled scope is refused, as Entra refuses it.
    refused = platform.az("rest", "--method", "PATCH", "--uri", graph_url,
                          "--headers", "Content-Type=application/json",
                          "--body", json.dumps({"api": {"oauth2PermissionScopes": []}}), check=False)
    assert refused.returncode != 0
    assert "disabled first" in refused.stderr, refused.stderr

    # A refused write leaves the registration unchanged: a duplicate scope value, a bad
    # identifier URI.
    before = platform.az_json("ad", "app", "show", "--id", app_id)
    dup = dict(body["api"]["oauth2PermissionScopes"][0], id="6c8d3b2a-4f5e-4a7b-9c2d-3e4f5a6b7c8d")
    refused = platform.az("rest", "--method", "PATCH", "--uri", graph_url,
                          "--headers", "Content-Type=application/json",
                          "--body", json.dumps({"api": {"oauth2PermissionScopes":
                                                        [body["api"]["oauth2PermissionScopes"][0], dup]}}),
                          check=False)
    assert refused.returncode != 0 and "access_as_user" in refused.stderr, refused.stderr
    refused = platform.az("ad", "app", "update", "--id", app_id, "--identifier-uris", "not a uri", check=False)
    assert refused.returncode != 0, refused.stdout
    assert platform.az_json("ad", "app", "show", "--id", app_id) == before

    # A client pre-authorized for the new scope (`api.preAuthorizedApplications`): MSAL signs
    # alice in through it with no consent prompt and gets a token carrying the scope.
    client = platform.az_json("ad", "app", "create", "--display-name", "graph-e2e-client",
                              "--web-redirect-uris", "http://localhost/cb")
    platform.az("ad", "sp", "create", "--id", client["appId"])
    client_secret = platform.az_json("ad", "app", "credential", "reset", "--id", client["appId"],
                                     "--append")["password"]
    platform.az("rest", "--method", "PATCH", "--uri", graph_url,
                "--headers", "Content-Type=application/json",
                "--body", json.dumps({"api": {"preAuthorizedApplications": [
                    {"appId": client["appId"], "delegatedPermissionIds": [scope_id]}]}}))
    assert platform.az_json("ad", "app", "show", "--id", app_id)["api"]["preAuthorizedApplications"][0][
        "appId"] == client["appId"]
    import jwt
    import msal
    # requests lets REQUESTS_CA_BUNDLE override a session's own `verify` (MSAL and the browser).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", platform.ca_file)
    monkeypatch.setenv("CURL_CA_BUNDLE", platform.ca_file)

    from easyauth_e2e import Browser, User, sign_in
    msal_app = msal.ConfidentialClientApplication(
        client["appId"], client_credential=client_secret,
        authority=f"{platform.idp_url}/{platform.directory.tenant_id}", instance_discovery=False,
        verify=platform.ca_file)
    flow = msal_app.initiate_auth_code_flow([f"api://{app_id}/access_as_user"],
                                            redirect_uri="http://localhost/cb")
    idp = SimpleNamespace(ca_path=Path(platform.ca_file), base=platform.idp_url,
                          host=platform.idp_url.split("//", 1)[1])
    alice = User(id="", upn=platform.directory.user, password=platform.directory.password,
                 display_name="Alice Smith", given_name="Alice", surname="Smith")
    si = sign_in(Browser(idp), flow["auth_uri"], "http://localhost/cb", alice)  # type: ignore[arg-type]
    assert "consent" not in si.pages, si.pages
    result = msal_app.acquire_token_by_auth_code_flow(flow, si.params)
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["scp"] == "access_as_user" and claims["aud"] in (app_id, f"api://{app_id}"), claims

    # The secret az printed works at the token endpoint.
    token = requests.post(
        f"{platform.idp_url}/{platform.directory.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
              "scope": f"api://{app_id}/.default"},
        verify=platform.ca_file, timeout=30)
    assert token.status_code == 200, token.text

    platform.az("ad", "app", "delete", "--id", app_id)
    gone = platform.az("ad", "app", "show", "--id", app_id, check=False)
    assert gone.returncode != 0


def test_az_ad_manages_users_and_credentials(platform: AzPlatform) -> None:
    upn = "carol@contoso.onmicrosoft.com"
    weak = platform.az("ad", "user", "create", "--display-name", "Carol", "--user-principal-name", upn,
                       "--password", "short", check=False)
    assert weak.returncode != 0 and "complexity" in weak.stderr, weak.stderr
    user = platform.az_json("ad", "user", "create", "--display-name", "Carol", "--user-principal-name", upn,
                            "--password", "Carol-Passw0rd!")
    assert user["userPrincipalName"] == upn
    shown = platform.az_json("ad", "user", "show", "--id", upn)
    assert shown["id"] == user["id"]
    platform.az("ad", "user", "update", "--id", upn, "--display-name", "Carol C.")
    assert platform.az_json("ad", "user", "show", "--id", user["id"])["displayName"] == "Carol C."
    listed = platform.az_json("ad", "user", "list", "--upn", upn)
    assert [u["id"] for u in listed] == [user["id"]]
    platform.az("ad", "user", "delete", "--id", upn)
    assert platform.az("ad", "user", "show", "--id", upn, check=False).returncode != 0

    app = platform.az_json("ad", "app", "create", "--display-name", "graph-e2e-creds")
    app_id = app["appId"]
    first = platform.az_json("ad", "app", "credential", "reset", "--id", app_id, "--append",
                             "--display-name", "first")
    platform.az_json("ad", "app", "credential", "reset", "--id", app_id, "--append", "--display-name", "second")
    creds = platform.az_json("ad", "app", "credential", "list", "--id", app_id)
    assert sorted(c["displayName"] for c in creds) == ["first", "second"]
    first_key = next(c["keyId"] for c in creds if c["displayName"] == "first")
    platform.az("ad", "app", "credential", "delete", "--id", app_id, "--key-id", first_key)
    creds = platform.az_json("ad", "app", "credential", "list", "--id", app_id)
    assert [c["displayName"] for c in creds] == ["second"]
    # The deleted secret no longer works.
    token = requests.post(
        f"{platform.idp_url}/{platform.directory.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": first["password"],
              "scope": "https://management.core.windows.net//.default"},
        verify=platform.ca_file, timeout=30)
    assert token.status_code == 401, token.text

    sps = platform.az_json("ad", "sp", "list", "--display-name", "Microsoft Graph")
    assert any(sp["appId"] == GRAPH for sp in sps)


def test_az_ad_sp_create_for_rbac(platform: AzPlatform) -> None:
    """The tutorials' one-liner for a CI identity: an app, its service principal and a secret."""
    sp = platform.az_json("ad", "sp", "create-for-rbac", "--name", "graph-e2e-ci")
    assert sp["displayName"] == "graph-e2e-ci" and sp["tenant"] == platform.directory.tenant_id
    token = requests.post(
        f"{platform.idp_url}/{platform.directory.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": sp["appId"], "client_secret": sp["password"],
              "scope": "https://management.core.windows.net//.default"},
        verify=platform.ca_file, timeout=30)
    assert token.status_code == 200, token.text
    # Run again, it resets the secret of the same app.
    again = platform.az_json("ad", "sp", "create-for-rbac", "--name", "graph-e2e-ci")
    assert again["appId"] == sp["appId"] and again["password"] != sp["password"]


def test_a_signed_in_user_manages_the_directory(platform: AzPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    """`az login --use-device-code` as alice (the page completed as she would), then `az ad` with
    her delegated Graph token: any user of the local tenant acts as its administrator. Last in
    the file: az stays signed in as alice."""
    from easyauth_e2e import Browser, User, device_login

    directory = platform.directory
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
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", platform.ca_file)
        monkeypatch.setenv("CURL_CA_BUNDLE", platform.ca_file)
        idp = SimpleNamespace(ca_path=Path(platform.ca_file), base=platform.idp_url,
                              host=platform.idp_url.split("//", 1)[1])
        alice = User(id="", upn=directory.user, password=directory.password, display_name="Alice Smith",
                     given_name="Alice", surname="Smith")
        pages = device_login(Browser(idp), message["uri"], message["code"], alice)  # type: ignore[arg-type]
        assert pages[-1] == "done", pages
        proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    assert proc.returncode == 0, "".join(lines)

    me = json.loads(platform.shell("az ad signed-in-user show --output json").stdout)
    assert me["userPrincipalName"] == directory.user
    app = json.loads(platform.shell("az ad app create --display-name alices-app --output json").stdout)
    assert app["displayName"] == "alices-app"
    platform.shell(f"az ad app delete --id {app['appId']}")
