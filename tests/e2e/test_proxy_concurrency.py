"""`easyauth proxy` under concurrent use: sign-ins, refreshes and proxied requests in parallel
(the token store and the session cookies must hold up)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from easyauth_e2e import World, describe
from proxy_e2e import ProxyIdp, ProxyServer, api_get, app_token, require_echo, sign_in_alice_via

pytestmark = pytest.mark.proxy


def test_parallel_sign_ins_refreshes_and_requests(frontend: ProxyServer, backend: ProxyServer,
                                                  proxy_idp: ProxyIdp, world: World):
    with ThreadPoolExecutor(max_workers=8) as pool:
        signed = list(pool.map(lambda _: sign_in_alice_via(frontend, proxy_idp, world), range(8)))
    ids = {s.headers["x-ms-token-aad-refresh-token"] for s in signed}
    assert len(ids) == 8, "sessions share stored tokens"

    def refresh_and_use(s):
        r = s.browser.get(frontend.url("/.auth/refresh"))
        assert r.status_code == 200, describe(r)
        echo = require_echo(s.browser.get(frontend.url("/after-refresh")))
        return echo["headers"]["x-ms-token-aad-access-token"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        tokens = list(pool.map(refresh_and_use, signed))
    assert all(t != s.access_token for t, s in zip(tokens, signed))

    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret, f"{world.backend.identifier_uri}/.default")
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda i: api_get(backend.url(f"/n/{i}"), token=token).status_code, range(200)))
    assert statuses == [200] * 200, {s: statuses.count(s) for s in set(statuses)}
