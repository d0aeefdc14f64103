"""On-behalf-of (backend -> Microsoft Graph) and the built-in Graph `/v1.0/me` stand-in."""

from __future__ import annotations

import requests

from easyauth_e2e import (
    GRAPH_RESOURCE,
    IdpServer,
    TokenValidator,
    World,
    describe,
    require_token,
    token_error,
)

GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"


def check_graph_token(tokens: TokenValidator, world: World, token: str, client_id: str) -> dict:
    c = tokens.access_v1(token, GRAPH_RESOURCE)
    assert "User.Read" in c["scp"].split(" "), c
    assert c["appid"] == client_id, c
    assert c["oid"] == world.alice.id, c
    return c


def get_me(idp: IdpServer, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(idp.graph_me, headers=headers, timeout=10)


def check_me(resp: requests.Response, world: World) -> None:
    assert resp.status_code == 200, describe(resp)
    me = resp.json()
    assert me["id"] == world.alice.id, me
    assert me["displayName"] == world.alice.display_name, me
    assert me["userPrincipalName"] == world.alice.upn, me
    assert me["givenName"] == world.alice.given_name and me["surname"] == world.alice.surname, me
    assert me["mail"] == world.alice.upn, me
    assert me["businessPhones"] == [], me
    for key in ("@odata.context", "jobTitle", "mobilePhone", "officeLocation", "preferredLanguage"):
        assert key in me, (key, me)


def test_obo_to_graph(make_app, idp: IdpServer, world: World, tokens: TokenValidator,
                      backend_scope: str, sign_in_alice):
    user = sign_in_alice([backend_scope]).result["access_token"]
    backend = make_app(world.backend)
    r = require_token(backend.acquire_token_on_behalf_of(user, [GRAPH_USER_READ]))
    assert r["token_type"] == "Bearer"
    check_graph_token(tokens, world, r["access_token"], world.backend.app_id)
    check_me(get_me(idp, r["access_token"]), world)


def test_obo_rejects_token_for_another_app(make_app, world: World, api2_scope: str, sign_in_alice):
    # alice's token for api2 (aud = api2) presented by backend: not meant for backend.
    user = sign_in_alice([api2_scope]).result["access_token"]
    backend = make_app(world.backend)
    r = backend.acquire_token_on_behalf_of(user, [GRAPH_USER_READ])
    assert "access_token" not in r, r
    assert r.get("error") == "invalid_grant", r
    assert 50013 in r.get("error_codes", []), r


def test_obo_rejects_app_only_token(make_app, world: World, tokens: TokenValidator):
    # an app-only token (no user) for the backend cannot be exchanged
    app_token = require_token(make_app(world.daemon).acquire_token_for_client(
        [f"{world.backend.identifier_uri}/.default"]))["access_token"]
    c = tokens.access_v1(app_token, world.backend.identifier_uri)  # app-only v1 token
    assert c["appid"] == world.daemon.app_id and "scp" not in c, c
    r = make_app(world.backend).acquire_token_on_behalf_of(app_token, [GRAPH_USER_READ])
    assert "access_token" not in r, r
    assert r.get("error") in ("invalid_grant", "invalid_request"), r


def test_obo_without_downstream_consent(make_app, world: World, api2_scope: str, sign_in_alice,
                                        backend_scope: str):
    # backend -> api2: no grant, no pre-authorization, no user consent => consent_required
    user = sign_in_alice([backend_scope]).result["access_token"]
    r = make_app(world.backend).acquire_token_on_behalf_of(user, [api2_scope])
    assert "access_token" not in r, r
    assert r.get("error") == "invalid_grant", r
    assert 65001 in r.get("error_codes", []), r
    assert r.get("suberror") == "consent_required", r


def test_graph_me_with_user_token_after_consent(idp: IdpServer, world: World, tokens: TokenValidator,
                                                sign_in_alice):
    # webapp has no grant for Graph: alice consents to User.Read on the consent page
    r = sign_in_alice([GRAPH_USER_READ])
    assert r.sign_in.pages == ["login", "consent"], r.sign_in.pages
    token = r.result["access_token"]
    check_graph_token(tokens, world, token, world.webapp.app_id)
    check_me(get_me(idp, token), world)


def test_graph_me_rejects_bad_tokens(idp: IdpServer, world: World, make_app, tokens: TokenValidator):
    for token in (None, "not-a-jwt"):
        resp = get_me(idp, token)
        assert resp.status_code == 401, describe(resp)
        assert resp.json()["error"]["code"] == "InvalidAuthenticationToken", describe(resp)
    # a valid token for another audience (api2) is not a Graph token
    app_token = require_token(make_app(world.daemon).acquire_token_for_client(
        [f"{world.api2.identifier_uri}/.default"]))["access_token"]
    tokens.access_v2(app_token, world.api2.app_id)
    resp = get_me(idp, app_token)
    assert resp.status_code == 401, describe(resp)
    assert resp.json()["error"]["code"] == "InvalidAuthenticationToken", describe(resp)


def test_token_endpoint_error_shape(idp: IdpServer, world: World):
    resp = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "client_id": world.backend.app_id,
        "client_secret": world.backend.secret, "assertion": "garbage",
        "requested_token_use": "on_behalf_of", "scope": GRAPH_USER_READ})
    assert resp.status_code == 400, describe(resp)
    body = token_error(resp)
    assert body["error"] in ("invalid_grant", "invalid_request"), body


def test_azure_identity_on_behalf_of(idp: IdpServer, world: World, tokens: TokenValidator,
                                     backend_scope: str, sign_in_alice):
    from azure.identity import OnBehalfOfCredential

    user = sign_in_alice([backend_scope]).result["access_token"]
    cred = OnBehalfOfCredential(world.tenant_id, world.backend.app_id, client_secret=world.backend.secret,
                                user_assertion=user, authority=idp.base, disable_instance_discovery=True)
    at = cred.get_token(GRAPH_USER_READ)
    check_graph_token(tokens, world, at.token, world.backend.app_id)
    check_me(get_me(idp, at.token), world)
