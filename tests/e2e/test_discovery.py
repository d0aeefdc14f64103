"""OpenID Connect discovery documents (v1 and v2, by tenant GUID and domain) and the JWKS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
import requests
from cryptography import x509

from easyauth_e2e import IdpServer, World, b64url, b64url_decode, describe


@pytest.fixture(params=["guid", "domain"])
def tenant_segment(request: pytest.FixtureRequest, world: World) -> str:
    return world.tenant_id if request.param == "guid" else world.domain


def get_json(url: str) -> dict:
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, describe(r)
    assert r.headers.get("content-type", "").startswith("application/json"), describe(r)
    return r.json()


def test_v2_discovery(idp: IdpServer, tenant_segment: str):
    doc = get_json(idp.discovery_url(tenant_segment, v2=True))
    base, tid = idp.base, idp.tenant_id
    # Tenant-specific documents name the GUID (never the domain alias) in issuer and endpoints.
    assert doc["issuer"] == f"{base}/{tid}/v2.0"
    assert doc["authorization_endpoint"] == f"{base}/{tid}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/{tid}/discovery/v2.0/keys"
    assert doc["end_session_endpoint"] == f"{base}/{tid}/oauth2/v2.0/logout"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert "code" in doc["response_types_supported"]
    assert {"client_secret_post", "client_secret_basic", "private_key_jwt"} <= set(
        doc["token_endpoint_auth_methods_supported"])
    assert {"openid", "profile", "email", "offline_access"} <= set(doc["scopes_supported"])


def test_v1_discovery(idp: IdpServer, tenant_segment: str):
    doc = get_json(idp.discovery_url(tenant_segment, v2=False))
    base, tid = idp.base, idp.tenant_id
    assert doc["issuer"] == f"{base}/{tid}/"
    assert doc["jwks_uri"] == f"{base}/{tid}/discovery/keys"
    for ep in ("authorization_endpoint", "token_endpoint"):
        assert doc[ep].startswith(f"{base}/{tid}/"), (ep, doc[ep])


def test_unknown_tenant_is_rejected(idp: IdpServer):
    r = requests.get(idp.discovery_url("00000000-1111-2222-3333-444444444444"), timeout=10)
    assert 400 <= r.status_code < 500, describe(r)


def check_jwks(keys: list[dict], expect_issuer: str | None) -> None:
    assert keys, "JWKS has no keys"
    now = dt.datetime.now(dt.timezone.utc)
    for k in keys:
        for member in ("kty", "use", "kid", "x5t", "n", "e", "x5c"):
            assert member in k, f"{member} missing from {k}"
        assert k["kty"] == "RSA" and k["use"] == "sig", k
        der = base64.b64decode(k["x5c"][0])  # standard base64, not url-safe
        thumb = b64url(hashlib.sha1(der).digest())
        assert k["kid"] == k["x5t"] == thumb, (k["kid"], k["x5t"], thumb)
        cert = x509.load_der_x509_certificate(der)
        assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc, \
            (cert.not_valid_before_utc, cert.not_valid_after_utc)
        pub = cert.public_key().public_numbers()
        assert pub.n == int.from_bytes(b64url_decode(k["n"]), "big"), "n does not match x5c"
        assert pub.e == int.from_bytes(b64url_decode(k["e"]), "big"), "e does not match x5c"
        assert pub.n.bit_length() >= 2048
        if expect_issuer is not None:
            assert k.get("issuer") == expect_issuer, k.get("issuer")


def test_jwks_v2(idp: IdpServer):
    jwks = get_json(idp.jwks_uri_v2)
    check_jwks(jwks["keys"], expect_issuer=idp.issuer_v2)


def test_jwks_v1(idp: IdpServer):
    jwks = get_json(idp.jwks_uri_v1)
    check_jwks(jwks["keys"], expect_issuer=None)
    v2_kids = {k["kid"] for k in get_json(idp.jwks_uri_v2)["keys"]}
    assert {k["kid"] for k in jwks["keys"]} == v2_kids


def test_jwks_by_domain_matches_guid(idp: IdpServer, world: World):
    by_domain = get_json(f"{idp.base}/{world.domain}/discovery/v2.0/keys")
    by_guid = get_json(idp.jwks_uri_v2)
    assert {k["kid"] for k in by_domain["keys"]} == {k["kid"] for k in by_guid["keys"]}
