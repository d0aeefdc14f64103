"""Concurrent clients: parallel token requests and sign-ins all succeed with unique tokens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import interactive
from easyauth_e2e import Browser, IdpServer, TokenValidator, World, describe, require_token


def test_parallel_client_credentials(idp: IdpServer, world: World, tokens: TokenValidator):
    def one(_: int) -> requests.Response:
        return requests.post(idp.token_endpoint, timeout=30, data={
            "grant_type": "client_credentials", "client_id": world.daemon.app_id,
            "client_secret": world.daemon.secret, "scope": f"{world.api2.identifier_uri}/.default"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(48)))
    for a in answers:
        assert a.status_code == 200, describe(a)
    utis = {tokens.access_v2(a.json()["access_token"], world.api2.app_id)["uti"] for a in answers}
    assert len(utis) == len(answers), "every token needs its own uti"


def test_parallel_sign_ins_and_refreshes(idp: IdpServer, world: World, tokens: TokenValidator,
                                         backend_scope: str):
    def one(_: int) -> list[str]:
        r = interactive(idp, world.webapp, [backend_scope], world.alice, browser=Browser(idp))
        result = require_token(r.result)
        rt, ats = result["refresh_token"], [result["access_token"]]
        for _ in range(3):
            resp = requests.post(idp.token_endpoint, timeout=30, data={
                "grant_type": "refresh_token", "client_id": world.webapp.app_id,
                "client_secret": world.webapp.secret, "refresh_token": rt,
                "scope": f"{backend_scope} openid profile offline_access"})
            assert resp.status_code == 200, describe(resp)
            rt = resp.json()["refresh_token"]
            ats.append(resp.json()["access_token"])
        return ats

    with ThreadPoolExecutor(6) as pool:
        all_ats = [at for ats in pool.map(one, range(6)) for at in ats]
    for at in all_ats:
        assert tokens.access_v1(at, world.backend.identifier_uri)["oid"] == world.alice.id
    assert len(set(all_ats)) == len(all_ats)
