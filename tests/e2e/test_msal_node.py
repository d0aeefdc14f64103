"""MSAL Node (@azure/msal-node): client credentials (secret, certificate) and on-behalf-of."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from easyauth_e2e import (
    ARTIFACTS,
    GRAPH_RESOURCE,
    REDIRECT_URI,
    Browser,
    IdpServer,
    TokenValidator,
    World,
    describe,
    sign_in,
)

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node" / "msal_node.mjs"


def run_node(idp: IdpServer, ops: list[dict]) -> dict[str, dict]:
    if shutil.which("node") is None:
        pytest.fail("node is not installed")
    if not (HERE / "node_modules" / "@azure" / "msal-node").is_dir():
        pytest.fail("tests/e2e/node_modules is missing: run `npm ci` in tests/e2e (cargo xtask test does)")
    config = {"authority": idp.authority, "knownAuthorities": [idp.host], "ops": ops}
    proc = subprocess.run(["node", str(SCRIPT), json.dumps(config)], capture_output=True, text=True,
                          timeout=90, env=idp.node_env(), cwd=HERE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "msal-node.log", "a") as log:
        log.write(f"ops: {[o['name'] for o in ops]}\nexit {proc.returncode}\nstderr:\n{proc.stderr}\n")
    assert proc.returncode == 0, f"node exited {proc.returncode}\n{proc.stderr}\n{proc.stdout}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["results"]


def ok(res: dict) -> dict:
    assert res.get("ok"), f"msal-node failed: {json.dumps(res, indent=1)}"
    return res


def test_client_credentials(idp: IdpServer, world: World, tokens: TokenValidator):
    scope = f"{world.api2.identifier_uri}/.default"
    cert = world.daemon.cert
    res = run_node(idp, [
        {"name": "secret", "op": "client_credentials", "clientId": world.daemon.app_id,
         "clientSecret": world.daemon.secret, "scopes": [scope]},
        {"name": "cert-sha1", "op": "client_credentials", "clientId": world.daemon.app_id,
         "certificate": {"thumbprint": cert.sha1_hex, "privateKey": cert.key_pem}, "scopes": [scope]},
    ])
    for name, acr in (("secret", "1"), ("cert-sha1", "2")):
        r = ok(res[name])
        assert r["tokenType"] == "Bearer" and r["fromCache"] is False, r
        c = tokens.access_v2(r["accessToken"], world.api2.app_id)
        assert c["azp"] == world.daemon.app_id and c["azpacr"] == acr, (name, c)
        assert c["roles"] == [world.api2.role_value], (name, c)


def test_client_certificate_sha256_ps256(idp: IdpServer, world: World, tokens: TokenValidator):
    """msal-node with a SHA-256 thumbprint signs the assertion with PS256 and x5t#S256."""
    cert = world.daemon.cert
    res = run_node(idp, [
        {"name": "cert-sha256", "op": "client_credentials", "clientId": world.daemon.app_id,
         "certificate": {"thumbprintSha256": cert.sha256_hex, "privateKey": cert.key_pem},
         "scopes": [f"{world.api2.identifier_uri}/.default"]},
    ])
    c = tokens.access_v2(ok(res["cert-sha256"])["accessToken"], world.api2.app_id)
    assert c["azpacr"] == "2", c


def test_on_behalf_of(idp: IdpServer, world: World, tokens: TokenValidator, backend_scope: str,
                      sign_in_alice):
    user = sign_in_alice([backend_scope]).result["access_token"]
    other = sign_in_alice([f"{world.api2.identifier_uri}/access_as_user"]).result["access_token"]
    res = run_node(idp, [
        {"name": "obo", "op": "on_behalf_of", "clientId": world.backend.app_id,
         "clientSecret": world.backend.secret, "oboAssertion": user,
         "scopes": ["https://graph.microsoft.com/User.Read"]},
        {"name": "obo-wrong-aud", "op": "on_behalf_of", "clientId": world.backend.app_id,
         "clientSecret": world.backend.secret, "oboAssertion": other,
         "scopes": ["https://graph.microsoft.com/User.Read"]},
    ])
    r = ok(res["obo"])
    c = tokens.access_v1(r["accessToken"], GRAPH_RESOURCE)
    assert c["appid"] == world.backend.app_id and c["oid"] == world.alice.id, c
    assert "User.Read" in c["scp"].split(" "), c
    me = requests.get(idp.graph_me, headers={"Authorization": f"Bearer {r['accessToken']}"}, timeout=10)
    assert me.status_code == 200, describe(me)
    assert me.json()["id"] == world.alice.id and me.json()["displayName"] == world.alice.display_name
    if r.get("idToken"):
        tokens.id_token(r["idToken"], world.backend.app_id)
    bad = res["obo-wrong-aud"]
    assert not bad["ok"], bad
    assert bad.get("errorCode") == "invalid_grant", bad
    assert "AADSTS50013" in (bad.get("errorMessage") or ""), bad


def test_auth_code_flow_and_silent_refresh(idp: IdpServer, world: World, tokens: TokenValidator,
                                           backend_scope: str):
    """msal-node builds the authorize URL (PKCE), the tiny browser signs alice in, msal-node
    redeems the code and then refreshes silently (forceRefresh)."""
    common = {"clientId": world.webapp.app_id, "clientSecret": world.webapp.secret,
              "scopes": [backend_scope], "redirectUri": REDIRECT_URI}
    start = ok(run_node(idp, [{"name": "url", "op": "auth_code_url", "nonce": "n-0S6_WzA2Mj", **common}])["url"])
    si = sign_in(Browser(idp), start["url"], REDIRECT_URI, world.alice)
    assert "code" in si.params, si
    assert si.params.get("state") == start["state"]
    res = run_node(idp, [{"name": "code", "op": "by_code", "code": si.params["code"],
                          "verifier": start["verifier"], "state": start["state"], "nonce": "n-0S6_WzA2Mj",
                          "clientInfo": si.params.get("client_info"), **common}])["code"]
    ok(res)
    assert res["account"]["username"] == world.alice.upn, res["account"]
    assert res["account"]["homeAccountId"] == f"{world.alice.id}.{world.tenant_id}", res["account"]
    c = tokens.access_v1(res["accessToken"], world.backend.identifier_uri)
    assert c["oid"] == world.alice.id and c["scp"] == "user_impersonation", c
    tokens.id_token(res["idToken"], world.webapp.app_id, nonce="n-0S6_WzA2Mj")
    refreshed = ok(res["refreshed"])
    assert refreshed["fromCache"] is False and refreshed["accessToken"] != res["accessToken"]
    tokens.access_v1(refreshed["accessToken"], world.backend.identifier_uri)
