"""Refresh-token rotation and family revocation (raw requests to the token endpoint)."""

from __future__ import annotations

import requests

from easyauth_e2e import IdpServer, TokenValidator, World, describe, token_error


def refresh(idp: IdpServer, world: World, rt: str, scope: str) -> requests.Response:
    return requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "client_id": world.webapp.app_id,
        "client_secret": world.webapp.secret, "refresh_token": rt,
        "scope": f"{scope} openid profile offline_access"})


def test_refresh_rotation_and_reuse_revokes_family(idp: IdpServer, world: World, tokens: TokenValidator,
                                                   backend_scope: str, sign_in_alice):
    rt1 = sign_in_alice([backend_scope]).result["refresh_token"]

    ok = refresh(idp, world, rt1, backend_scope)
    assert ok.status_code == 200, describe(ok)
    body = ok.json()
    rt2 = body["refresh_token"]
    assert rt2 and rt2 != rt1, "a new refresh token must be returned on every use"
    assert body["token_type"] == "Bearer" and backend_scope in body["scope"].split(" "), body
    c = tokens.access_v1(body["access_token"], world.backend.identifier_uri)
    assert c["oid"] == world.alice.id and c["scp"] == "user_impersonation", c
    tokens.id_token(body["id_token"], world.webapp.app_id)

    # presenting rt1 again: replay => invalid_grant (AADSTS50173) ...
    replay = refresh(idp, world, rt1, backend_scope)
    assert replay.status_code == 400, describe(replay)
    err = token_error(replay)
    assert err["error"] == "invalid_grant", err
    assert 50173 in err["error_codes"], err

    # ... and the whole family is revoked: the successor stops working too
    after = refresh(idp, world, rt2, backend_scope)
    assert after.status_code == 400, describe(after)
    assert token_error(after)["error"] == "invalid_grant"


def test_refresh_token_is_bound_to_its_client(idp: IdpServer, world: World, backend_scope: str,
                                             sign_in_alice):
    rt = sign_in_alice([backend_scope]).result["refresh_token"]
    resp = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "client_id": world.other_client.app_id,
        "client_secret": world.other_client.secret, "refresh_token": rt,
        "scope": f"{backend_scope} offline_access"})
    assert resp.status_code == 400, describe(resp)
    assert token_error(resp)["error"] == "invalid_grant"
    # and the legitimate client can still use it (a foreign client must not revoke it)
    ok = refresh(idp, world, rt, backend_scope)
    assert ok.status_code == 200, describe(ok)


def test_garbage_refresh_token(idp: IdpServer, world: World, backend_scope: str):
    resp = refresh(idp, world, "not-a-refresh-token", backend_scope)
    assert resp.status_code == 400, describe(resp)
    assert token_error(resp)["error"] in ("invalid_grant", "invalid_request")
