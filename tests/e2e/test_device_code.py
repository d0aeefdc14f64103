"""The Azure CLI's sign-ins, done by MSAL Python exactly as `az login` does them: the device code
flow of the CLI's well-known public client against `organizations`, then a silent Graph token
from the same refresh token; and `az login --service-principal`'s client credentials request for
Azure Resource Manager. (The real `az` also needs the ARM endpoint, which this suite does not
start; what it asks of the identity provider is what MSAL asks here.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import msal
import requests

from easyauth_e2e import (
    GRAPH_RESOURCE,
    Browser,
    IdpServer,
    TokenValidator,
    World,
    describe,
    device_login,
    require_token,
    token_error,
)

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM = "https://management.core.windows.net/"
ARM_SCOPE = "https://management.core.windows.net//.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CP1 = '{"access_token":{"xms_cc":{"values":["CP1"]}}}'


def cli_app(idp: IdpServer) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(AZURE_CLI, authority=f"{idp.base}/organizations",
                                        instance_discovery=False, client_capabilities=["CP1"])


def complete_in_background(idp: IdpServer, flow: dict[str, Any], world: World,
                           **kw: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """A person on another device: waits a moment (so the client sees `authorization_pending`
    first), then completes the page with requests."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        time.sleep(1)
        try:
            outcome["pages"] = device_login(Browser(idp), flow["verification_uri"], flow["user_code"],
                                            world.alice, **kw)
        except BaseException as e:  # reported by the test, not lost in the thread
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def finished(thread: threading.Thread, outcome: dict[str, Any]) -> list[str]:
    thread.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["pages"]


def test_msal_device_flow_for_arm_then_graph_from_the_refresh_token(
        idp: IdpServer, world: World, tokens: TokenValidator):
    app = cli_app(idp)
    flow = app.initiate_device_flow(scopes=[ARM_SCOPE])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{idp.base}/devicelogin", flow
    assert flow["interval"] == 5 and flow["expires_in"] == 900, flow
    assert flow["message"] == (f"To sign in, use a web browser to open the page {idp.base}/devicelogin "
                               f"and enter the code {flow['user_code']} to authenticate."), flow

    thread, outcome = complete_in_background(idp, flow, world)
    result = require_token(app.acquire_token_by_device_flow(flow))
    assert finished(thread, outcome) == ["code", "confirm", "login", "done"], \
        "the Azure CLI needs no consent"

    c = tokens.access_v1(result["access_token"], ARM)
    assert c["appid"] == AZURE_CLI and c["appidacr"] == "0", c
    assert c["oid"] == world.alice.id and c["upn"] == world.alice.upn, c
    assert c["scp"] == "user_impersonation", c
    assert "idtyp" not in c, c
    tokens.id_token(result["id_token"], AZURE_CLI)
    assert result["id_token_claims"]["oid"] == world.alice.id
    assert result.get("refresh_token"), "offline_access gives a refresh token"

    # MSAL keyed the account by client_info (uid.utid), as it does with Entra.
    accounts = app.get_accounts(username=world.alice.upn)
    assert len(accounts) == 1, app.get_accounts()
    assert accounts[0]["home_account_id"] == f"{world.alice.id}.{idp.tenant_id}", accounts[0]

    # `az ad signed-in-user show`: a Graph token from the ARM sign-in's refresh token.
    graph = require_token(app.acquire_token_silent([GRAPH_SCOPE], account=accounts[0]))
    assert graph.get("token_source") == "identity_provider", graph.get("token_source")
    g = tokens.access_v1(graph["access_token"], GRAPH_RESOURCE)
    assert g["appid"] == AZURE_CLI and g["oid"] == world.alice.id, g
    assert "User.Read" in g["scp"].split(" "), g
    me = requests.get(idp.graph_me, headers={"Authorization": f"Bearer {graph['access_token']}"},
                      timeout=10)
    assert me.status_code == 200 and me.json()["id"] == world.alice.id, describe(me)

    # And ARM again, silently (the cached token).
    again = require_token(app.acquire_token_silent([ARM_SCOPE], account=accounts[0]))
    tokens.access_v1(again["access_token"], ARM)


def test_msal_device_flow_declined(idp: IdpServer, world: World):
    app = cli_app(idp)
    flow = app.initiate_device_flow(scopes=[ARM_SCOPE])
    thread, outcome = complete_in_background(idp, flow, world, confirm="cancel")
    result = app.acquire_token_by_device_flow(flow)
    assert finished(thread, outcome) == ["code", "confirm", "cancelled"]
    assert "access_token" not in result, result
    assert result.get("error") == "authorization_declined", result
    assert result["error_description"].startswith("AADSTS65004:"), result


def test_unknown_device_code(idp: IdpServer):
    r = requests.post(f"{idp.base}/organizations/oauth2/v2.0/token", timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": AZURE_CLI,
        "device_code": "not-a-device-code", "client_info": "1", "claims": CP1})
    assert r.status_code == 400, describe(r)
    err = token_error(r)
    assert err["error"] == "bad_verification_code" and err["error_codes"] == [70018], err


def test_az_login_service_principal_request(idp: IdpServer, world: World, tokens: TokenValidator):
    """The two requests `az login --service-principal -u <appId> -p <secret> --tenant <tenant>`
    makes of the identity provider, byte for byte in their parameters."""
    discovery = requests.get(idp.discovery_url(), timeout=10)
    assert discovery.status_code == 200, describe(discovery)
    token_endpoint = discovery.json()["token_endpoint"]
    form = {"client_id": world.daemon.app_id, "grant_type": "client_credentials", "client_info": "1",
            "claims": CP1, "scope": ARM_SCOPE, "client_secret": world.daemon.secret}
    r = requests.post(token_endpoint, data=form, timeout=10)
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert "refresh_token" not in body and "id_token" not in body, body
    c = tokens.access_v1(body["access_token"], ARM)
    assert c["appid"] == world.daemon.app_id and c["appidacr"] == "1", c
    assert c["idtyp"] == "app" and c["sub"] == c["oid"], c
    assert "roles" not in c and "scp" not in c, c

    wrong = requests.post(token_endpoint, data={**form, "client_secret": "not-the-secret"}, timeout=10)
    assert wrong.status_code == 401, describe(wrong)
    err = token_error(wrong)
    assert err["error"] == "invalid_client" and err["error_codes"] == [7000215], err

    # MSAL's own request (what az builds it from), with the CP1 capability.
    app = msal.ConfidentialClientApplication(world.daemon.app_id, client_credential=world.daemon.secret,
                                             authority=idp.authority, instance_discovery=False,
                                             client_capabilities=["CP1"])
    result = require_token(app.acquire_token_for_client([ARM_SCOPE]))
    tokens.access_v1(result["access_token"], ARM)
    sdk = require_token(app.acquire_token_for_client(["https://management.azure.com/.default"]))
    tokens.access_v1(sdk["access_token"], "https://management.azure.com")
