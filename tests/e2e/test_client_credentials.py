"""client_credentials with MSAL Python (secret, certificate), azure-identity and raw requests."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from azure.identity import CertificateCredential, ClientSecretCredential

from easyauth_e2e import (
    IdpServer,
    TokenValidator,
    World,
    b64url,
    describe,
    require_token,
    token_error,
)


def default_scope(world: World) -> str:
    return f"{world.api2.identifier_uri}/.default"


def check_app_token(tokens: TokenValidator, world: World, token: str, acr: str) -> dict:
    c = tokens.access_v2(token, world.api2.app_id)
    assert c["azp"] == world.daemon.app_id, c
    assert c["azpacr"] == acr, c
    assert c["roles"] == [world.api2.role_value], c  # only the assigned role, not Data.Write
    assert "scp" not in c, c
    assert c["sub"] == c["oid"], c  # app-only: sub == oid == service principal id
    assert c["oid"] not in (world.daemon.app_id,), "oid must be the service principal id, not the appId"
    return c


def test_msal_client_secret(make_app, world: World, tokens: TokenValidator):
    app = make_app(world.daemon)
    r = require_token(app.acquire_token_for_client([default_scope(world)]))
    assert r["token_type"] == "Bearer"
    assert isinstance(r["expires_in"], int) and 0 < r["expires_in"] <= 120
    assert "refresh_token" not in r and "id_token" not in r
    c1 = check_app_token(tokens, world, r["access_token"], "1")
    # second call: served from MSAL's cache? No - 120 s lifetime < 5 min, so MSAL asks again.
    r2 = require_token(app.acquire_token_for_client([default_scope(world)]))
    assert r2["token_source"] == "identity_provider"
    c2 = check_app_token(tokens, world, r2["access_token"], "1")
    assert c2["uti"] != c1["uti"]


def test_msal_client_certificate(make_app, world: World, tokens: TokenValidator):
    cert = world.daemon.cert
    app = make_app(world.daemon, credential={"private_key": cert.key_pem, "thumbprint": cert.sha1_hex})
    r = require_token(app.acquire_token_for_client([default_scope(world)]))
    check_app_token(tokens, world, r["access_token"], "2")


def test_msal_client_certificate_with_x5c(make_app, world: World, tokens: TokenValidator):
    cert = world.daemon.cert
    app = make_app(world.daemon, credential={"private_key": cert.key_pem, "thumbprint": cert.sha1_hex,
                                             "public_certificate": cert.cert_pem})
    r = require_token(app.acquire_token_for_client([default_scope(world)]))
    check_app_token(tokens, world, r["access_token"], "2")


def test_msal_by_domain_authority(make_app, idp: IdpServer, world: World, tokens: TokenValidator):
    app = make_app(world.daemon, authority=f"{idp.base}/{world.domain}")
    r = require_token(app.acquire_token_for_client([default_scope(world)]))
    check_app_token(tokens, world, r["access_token"], "1")


def test_azure_identity_client_secret(idp: IdpServer, world: World, tokens: TokenValidator):
    cred = ClientSecretCredential(world.tenant_id, world.daemon.app_id, world.daemon.secret,
                                  authority=idp.base, disable_instance_discovery=True)
    at = cred.get_token(default_scope(world))
    assert at.expires_on > 0
    check_app_token(tokens, world, at.token, "1")


def test_azure_identity_certificate(idp: IdpServer, world: World, tokens: TokenValidator):
    cert = world.daemon.cert
    cred = CertificateCredential(world.tenant_id, world.daemon.app_id,
                                 certificate_data=(cert.key_pem + cert.cert_pem).encode(),
                                 authority=idp.base, disable_instance_discovery=True)
    at = cred.get_token(default_scope(world))
    check_app_token(tokens, world, at.token, "2")


def test_client_secret_basic(idp: IdpServer, world: World, tokens: TokenValidator):
    basic = base64.b64encode(f"{world.daemon.app_id}:{world.daemon.secret}".encode()).decode()
    r = requests.post(idp.token_endpoint, timeout=10, headers={"Authorization": f"Basic {basic}"},
                      data={"grant_type": "client_credentials", "scope": default_scope(world)})
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert "no-store" in r.headers.get("Cache-Control", ""), describe(r)
    assert "scope" not in body and "refresh_token" not in body, body
    assert isinstance(body["expires_in"], int) and isinstance(body["ext_expires_in"], int), body
    check_app_token(tokens, world, body["access_token"], "1")


def test_wrong_secret_is_invalid_client(idp: IdpServer, world: World):
    r = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "client_credentials", "client_id": world.daemon.app_id,
        "client_secret": "not-the-secret", "scope": default_scope(world)})
    assert r.status_code == 401, describe(r)
    body = token_error(r)
    assert body["error"] == "invalid_client", body
    assert 7000215 in body["error_codes"], body


def test_unassigned_client_gets_no_roles(make_app, world: World, tokens: TokenValidator):
    # other-client has no app role assignment on api2: token issued, without roles.
    app = make_app(world.other_client)
    r = require_token(app.acquire_token_for_client([default_scope(world)]))
    c = tokens.access_v2(r["access_token"], world.api2.app_id)
    assert c["azp"] == world.other_client.app_id
    assert not c.get("roles"), c


def make_assertion(idp: IdpServer, app, variant: str) -> str:
    cert = app.cert
    key = serialization.load_pem_private_key(cert.key_pem.encode(), password=None)
    sha1 = hashlib.sha1(cert.cert_der).digest()
    if variant == "x5t":
        alg, headers = "RS256", {"x5t": b64url(sha1)}
    elif variant == "x5t-padded":
        alg, headers = "RS256", {"x5t": base64.urlsafe_b64encode(sha1).decode()}
    else:
        alg, headers = "PS256", {"x5t#S256": b64url(hashlib.sha256(cert.cert_der).digest())}
    now = time.time()
    return jwt.encode({"aud": idp.token_endpoint, "iss": app.app_id, "sub": app.app_id,
                       "jti": str(uuid.uuid4()), "iat": now, "exp": now + 600},
                      key, algorithm=alg, headers=headers)


def test_certificate_registered_as_pem(idp: IdpServer, world: World, tokens: TokenValidator):
    """webapp's keyCredentials `key` is a PEM string instead of base64 DER."""
    r = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "client_credentials", "client_id": world.webapp.app_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": make_assertion(idp, world.webapp, "x5t"), "scope": default_scope(world)})
    assert r.status_code == 200, describe(r)
    c = tokens.access_v2(r.json()["access_token"], world.api2.app_id)
    assert c["azp"] == world.webapp.app_id and c["azpacr"] == "2", c


@pytest.mark.parametrize("variant", ["x5t", "x5t-padded", "x5t#S256-PS256"])
def test_raw_client_assertion(idp: IdpServer, world: World, tokens: TokenValidator, variant: str):
    """Hand-made certificate assertions in the shapes real libraries send: msal-node (RS256, x5t
    unpadded base64url), MSAL Python / azure-identity (RS256, x5t base64url WITH '=' padding),
    and SHA-256 thumbprints (PS256, x5t#S256)."""
    assertion = make_assertion(idp, world.daemon, variant)
    r = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "client_credentials", "client_id": world.daemon.app_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion, "scope": default_scope(world)})
    assert r.status_code == 200, describe(r)
    check_app_token(tokens, world, r.json()["access_token"], "2")


def test_client_secret_basic_is_form_urlencoded(idp: IdpServer, world: World, tokens: TokenValidator):
    """RFC 6749 section 2.3.1: id and secret are form-urlencoded before base64 (Entra follows it)."""
    from urllib.parse import quote_plus

    from easyauth_e2e import SPECIAL_SECRET

    basic = base64.b64encode(
        f"{quote_plus(world.other_client.app_id)}:{quote_plus(SPECIAL_SECRET)}".encode()).decode()
    r = requests.post(idp.token_endpoint, timeout=10, headers={"Authorization": f"Basic {basic}"},
                      data={"grant_type": "client_credentials", "scope": default_scope(world)})
    assert r.status_code == 200, describe(r)
    c = tokens.access_v2(r.json()["access_token"], world.api2.app_id)
    assert c["azp"] == world.other_client.app_id
    # the same secret in the body (client_secret_post) works as well
    r = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "client_credentials", "client_id": world.other_client.app_id,
        "client_secret": SPECIAL_SECRET, "scope": default_scope(world)})
    assert r.status_code == 200, describe(r)


def test_forged_client_assertions_are_rejected(idp: IdpServer, world: World):
    """Signed with another key but naming daemon's registered thumbprint; wrong audience; expired."""
    from dataclasses import replace

    from easyauth_e2e import make_cert

    impostor = make_cert("impostor")
    real = world.daemon.cert
    forged_cert = replace(real, key_pem=impostor.key_pem)  # same thumbprint, wrong private key
    key = serialization.load_pem_private_key(real.key_pem.encode(), password=None)
    hdr = {"x5t": b64url(hashlib.sha1(real.cert_der).digest())}
    now = time.time()
    base = {"iss": world.daemon.app_id, "sub": world.daemon.app_id, "iat": now}
    cases = {
        "wrong key": make_assertion(idp, replace(world.daemon, cert=forged_cert), "x5t"),
        "wrong aud": jwt.encode({**base, "aud": "https://example.test/token", "exp": now + 600,
                                 "jti": str(uuid.uuid4())}, key, algorithm="RS256", headers=hdr),
        "expired": jwt.encode({**base, "aud": idp.token_endpoint, "iat": now - 7200, "exp": now - 3600,
                               "jti": str(uuid.uuid4())}, key, algorithm="RS256", headers=hdr),
    }
    for name, assertion in cases.items():
        r = requests.post(idp.token_endpoint, timeout=10, data={
            "grant_type": "client_credentials", "client_id": world.daemon.app_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, "scope": default_scope(world)})
        assert r.status_code in (400, 401), f"{name}: {describe(r)}"
        assert token_error(r)["error"] == "invalid_client", f"{name}: {describe(r)}"
