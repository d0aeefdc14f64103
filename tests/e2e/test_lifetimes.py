"""A second identity provider with tiny lifetimes: the --*-lifetime options are honoured and
refresh tokens expire."""

from __future__ import annotations

import time

import pytest
import requests

from conftest import binary, interactive
from easyauth_e2e import IdpServer, TokenValidator, World, describe, require_token, token_error

AT, IDT, RT = 7, 9, 5  # the CLI accepts lifetimes >= 5 s


@pytest.fixture(scope="module")
def short_idp(world: World, tmp_path_factory: pytest.TempPathFactory):
    server = IdpServer(binary(), world, tmp_path_factory.mktemp("idp-short"), access_token_lifetime=AT,
                       extra_args=["--id-token-lifetime", str(IDT), "--refresh-token-lifetime", str(RT)])
    server.start()
    yield server
    server.stop()


def test_lifetimes_and_refresh_token_expiry(short_idp: IdpServer, world: World, backend_scope: str):
    tokens = TokenValidator(short_idp)
    r = interactive(short_idp, world.webapp, [backend_scope], world.alice)
    result = require_token(r.result)
    assert result["expires_in"] == AT, result["expires_in"]
    tokens.access_v1(result["access_token"], world.backend.identifier_uri)  # checks exp - iat == AT
    idc = tokens.id_token(result["id_token"], world.webapp.app_id, nonce=r.expected_nonce)
    assert idc["exp"] - idc["iat"] == IDT, idc

    cc = requests.post(short_idp.token_endpoint, timeout=10, data={
        "grant_type": "client_credentials", "client_id": world.daemon.app_id,
        "client_secret": world.daemon.secret, "scope": f"{world.api2.identifier_uri}/.default"})
    assert cc.status_code == 200, describe(cc)
    assert cc.json()["expires_in"] == AT
    tokens.access_v2(cc.json()["access_token"], world.api2.app_id)

    time.sleep(RT + 1.5)
    resp = requests.post(short_idp.token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "client_id": world.webapp.app_id,
        "client_secret": world.webapp.secret, "refresh_token": result["refresh_token"],
        "scope": f"{backend_scope} openid profile offline_access"})
    assert resp.status_code == 400, f"refresh token outlived --refresh-token-lifetime {RT}\n{describe(resp)}"
    assert token_error(resp)["error"] == "invalid_grant"
