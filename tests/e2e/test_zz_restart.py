"""Restart on the same data dir and port: keys and refresh tokens survive.

The file name sorts last so the restart does not disturb the other modules."""

from __future__ import annotations

import pytest
import requests

from conftest import confidential_app
from easyauth_e2e import IdpServer, TokenValidator, World, describe, require_token


def test_restart_keeps_keys_and_refresh_tokens(idp: IdpServer, world: World, tokens: TokenValidator,
                                               backend_scope: str, sign_in_alice):
    app_token = require_token(confidential_app(idp, world.daemon).acquire_token_for_client(
        [f"{world.api2.identifier_uri}/.default"]))["access_token"]
    signed_in = sign_in_alice([backend_scope])
    user_token = signed_in.result["access_token"]
    rt = signed_in.result["refresh_token"]
    kids_before = {k["kid"] for k in requests.get(idp.jwks_uri_v2, timeout=10).json()["keys"]}
    ca_before = idp.ca_path.read_bytes()

    idp.restart()
    tokens.reset_keys()  # fetch the JWKS again from the restarted server

    assert idp.ca_path.read_bytes() == ca_before, "the CA must survive a restart"
    kids_after = {k["kid"] for k in requests.get(idp.jwks_uri_v2, timeout=10).json()["keys"]}
    assert kids_before <= kids_after, (kids_before, kids_after)
    tokens.access_v2(app_token, world.api2.app_id)
    tokens.access_v1(user_token, world.backend.identifier_uri)

    resp = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "client_id": world.webapp.app_id,
        "client_secret": world.webapp.secret, "refresh_token": rt,
        "scope": f"{backend_scope} openid profile offline_access"})
    assert resp.status_code == 200, describe(resp)
    c = tokens.access_v1(resp.json()["access_token"], world.backend.identifier_uri)
    assert c["oid"] == world.alice.id, c

    # MSAL (a new app instance: discovery again) still works after the restart
    r = require_token(confidential_app(idp, world.daemon).acquire_token_for_client(
        [f"{world.api2.identifier_uri}/.default"]))
    tokens.access_v2(r["access_token"], world.api2.app_id)


def test_every_token_was_validated(tokens: TokenValidator, request):
    if request.session.testscollected < 20:
        pytest.skip("only meaningful for a full run of the suite")
    kinds = {t.kind for t in tokens.validated}
    # the suite as a whole must have validated each kind of token at least once
    assert {"access-v1", "access-v2", "id"} <= kinds, kinds
    assert all(t.header.get("kid") for t in tokens.validated)
