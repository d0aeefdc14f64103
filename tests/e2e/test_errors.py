"""The token endpoint's error catalogue (Entra-shaped JSON errors with AADSTS codes)."""

from __future__ import annotations

import pytest
import requests

from easyauth_e2e import IdpServer, World, describe, token_error

UNKNOWN = "11111111-2222-3333-4444-555555555555"


def cases(world: World) -> dict[str, tuple[dict, int, str, int]]:
    d, api = world.daemon, world.api2.identifier_uri
    cc = {"grant_type": "client_credentials", "client_id": d.app_id, "client_secret": d.secret}
    return {
        "unknown client": ({**cc, "client_id": UNKNOWN, "scope": f"{api}/.default"}, 400,
                           "unauthorized_client", 700016),
        "missing scope": (cc, 400, "invalid_request", 900144),
        "client credentials with a delegated scope": ({**cc, "scope": f"{api}/access_as_user"}, 400,
                                                      "invalid_scope", 70011),
        "client credentials for two resources": (
            {**cc, "scope": f"{api}/.default https://graph.microsoft.com/.default"}, 400, "invalid_scope", 70011),
        "unknown resource": ({**cc, "scope": "api://no-such-api/.default"}, 400, "invalid_resource", 500011),
        "no credential": ({k: v for k, v in cc.items() if k != "client_secret"} | {"scope": f"{api}/.default"},
                          401, "invalid_client", 7000218),
        "unsupported grant": ({**cc, "grant_type": "foo"}, 400, "unsupported_grant_type", 70003),
        "v1 resource parameter": ({**cc, "resource": api}, 400, "invalid_request", 901002),
    }


CASE_NAMES = ["unknown client", "missing scope", "client credentials with a delegated scope",
              "client credentials for two resources", "unknown resource", "no credential",
              "unsupported grant", "v1 resource parameter"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_token_endpoint_errors(idp: IdpServer, world: World, name: str):
    data, status, error, code = cases(world)[name]
    r = requests.post(idp.token_endpoint, data=data, timeout=10)
    assert r.status_code == status, describe(r)
    body = token_error(r)
    assert body["error"] == error, body
    assert body["error_codes"][0] == code, body
    assert "Trace ID:" in body["error_description"] and "Correlation ID:" in body["error_description"], body


def test_token_endpoint_only_accepts_post(idp: IdpServer):
    r = requests.get(idp.token_endpoint, timeout=10)
    assert r.status_code in (400, 405), describe(r)
    assert 900561 in token_error(r)["error_codes"]


def test_unknown_tenant_at_token_endpoint(idp: IdpServer, world: World):
    r = requests.post(f"{idp.base}/{UNKNOWN}/oauth2/v2.0/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": world.daemon.app_id,
        "client_secret": world.daemon.secret, "scope": f"{world.api2.identifier_uri}/.default"})
    assert r.status_code == 400, describe(r)
    assert token_error(r)["error_codes"] == [90002]


def test_correlation_id_echoes_client_request_id(idp: IdpServer, world: World):
    rid = "5f0d6a2e-1c3b-4d5e-8f70-9a1b2c3d4e5f"
    r = requests.post(idp.token_endpoint, timeout=10, headers={"client-request-id": rid},
                      data={"grant_type": "foo", "client_id": world.daemon.app_id})
    body = token_error(r)
    assert body["correlation_id"] == rid, body
