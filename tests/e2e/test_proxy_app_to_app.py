"""App to app (the tutorial's back end): a second `easyauth proxy` configured for the back-end
API (allowedAudiences api://<backend>, allowedApplications [front end]) called with bearer tokens."""

from __future__ import annotations

import time

import pytest
import requests

from easyauth_e2e import GRAPH_RESOURCE, TokenValidator, World, describe
from proxy_e2e import (
    API_UA,
    ProxyBrowser,
    ProxyIdp,
    ProxyServer,
    SignedIn,
    api_get,
    app_token,
    auth_headers,
    decode_principal,
    require_echo,
    unverified_claims,
)

pytestmark = pytest.mark.proxy


def fresh_user_token(signed: SignedIn, frontend: ProxyServer) -> str:
    """alice's current access token for the back end (x-ms-token-aad-access-token), refreshed
    through the front end when the short-lived one is about to expire."""
    token = require_echo(signed.browser.get(frontend.url("/page")))["headers"]["x-ms-token-aad-access-token"]
    if unverified_claims(token)["exp"] - time.time() < 4:
        r = signed.browser.get(frontend.url("/.auth/refresh"))
        assert r.status_code == 200, describe(r)
        token = require_echo(signed.browser.get(frontend.url("/page")))["headers"]["x-ms-token-aad-access-token"]
    return token


def check_challenge(resp, backend: ProxyServer, proxy_idp: ProxyIdp, world: World) -> None:
    www = resp.headers.get("WWW-Authenticate", "")
    assert www.startswith("Bearer"), f"no Bearer challenge:\n{describe(resp)}"
    assert f'realm="{backend.host}"' in www or 'realm="127.0.0.1"' in www, www
    assert f'authorization_uri="{proxy_idp.authority}/oauth2/v2.0/authorize"' in www, www
    assert f'resource_id="{world.backend.app_id}"' in www, www


def test_backend_accepts_the_users_token(backend: ProxyServer, frontend: ProxyServer,
                                         alice_frontend: SignedIn, world: World,
                                         proxy_tokens: TokenValidator):
    token = fresh_user_token(alice_frontend, frontend)
    proxy_tokens.access_v1(token, world.backend.identifier_uri)
    r = api_get(backend.url("/get-profile"), token=token)
    echo = require_echo(r, "back end with alice's token")
    h = echo["headers"]
    assert h.get("x-ms-client-principal-id") == world.alice.id, auth_headers(echo)
    assert h.get("x-ms-client-principal-name") == world.alice.upn, auth_headers(echo)
    assert h.get("x-ms-client-principal-idp") == "aad", auth_headers(echo)
    principal = decode_principal(h["x-ms-client-principal"])
    assert principal["auth_typ"] == "aad", principal
    # the tutorial's back end reads the Authorization header itself
    assert h.get("authorization") == f"Bearer {token}", h.get("authorization")


def test_backend_accepts_the_front_ends_app_token(backend: ProxyServer, proxy_idp: ProxyIdp,
                                                  world: World):
    """Client credentials of an allowed application (webapp) for api://<backend>/.default: 200."""
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret,
                      f"{world.backend.identifier_uri}/.default")
    r = api_get(backend.url("/data"), token=token)
    echo = require_echo(r, "back end with webapp's app token")
    assert echo["headers"].get("x-ms-client-principal-idp") == "aad", auth_headers(echo)


def test_token_of_another_client_is_403(backend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    token = app_token(proxy_idp, world.other_client.app_id, world.other_client.secret,
                      f"{world.backend.identifier_uri}/.default")
    c = unverified_claims(token)
    assert c["aud"] == world.backend.identifier_uri and c["appid"] == world.other_client.app_id, c
    r = api_get(backend.url("/get-profile"), token=token)
    assert r.status_code == 403, f"a client not in allowedApplications got in:\n{describe(r)}"
    assert world.other_client.app_id in r.text, \
        f"--development: the 403 body should name the refused client:\n{describe(r)}"


def test_token_for_another_audience_is_401(backend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    # issued to an allowed application (webapp), but for Microsoft Graph
    token = app_token(proxy_idp, world.webapp.app_id, world.webapp.secret, f"{GRAPH_RESOURCE}/.default")
    assert unverified_claims(token)["aud"] == GRAPH_RESOURCE
    r = api_get(backend.url("/get-profile"), token=token)
    assert r.status_code == 401, describe(r)
    check_challenge(r, backend, proxy_idp, world)
    # and a token for another API (api2, v2 token, aud = api2's client id)
    token2 = app_token(proxy_idp, world.daemon.app_id, world.daemon.secret,
                       f"{world.api2.identifier_uri}/.default")
    r2 = api_get(backend.url("/get-profile"), token=token2)
    assert r2.status_code == 401, describe(r2)


def test_no_token_non_browser_is_401_with_challenge(backend: ProxyServer, proxy_idp: ProxyIdp,
                                                    world: World):
    r = api_get(backend.url("/get-profile"))
    assert r.status_code == 401, describe(r)
    check_challenge(r, backend, proxy_idp, world)
    # an XMLHttpRequest from a browser is not redirected either
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(backend.url("/get-profile"), headers={"X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 401, describe(r)


def test_no_token_browser_is_redirected(backend: ProxyServer, proxy_idp: ProxyIdp):
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(backend.url("/get-profile"))
    assert r.status_code == 302, describe(r)


def test_bearer_failure_is_never_a_redirect(backend: ProxyServer, proxy_idp: ProxyIdp):
    """A browser presenting an invalid bearer token gets 401, not the login redirect."""
    b = ProxyBrowser(proxy_idp.ca_path)
    r = b.get(backend.url("/get-profile"), headers={"Authorization": "Bearer a.b.c"})
    assert r.status_code == 401, describe(r)


# --------------------------------------------------------------------------------------------
# Client-directed sign-in (POST /.auth/login/aad) and X-ZUMO-AUTH


def _zumo(backend: ProxyServer, token: str) -> dict:
    r = requests.post(backend.url("/.auth/login/aad"), json={"access_token": token},
                      headers={"User-Agent": API_UA}, timeout=30)
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert body.get("authenticationToken") and body.get("user", {}).get("userId", "").startswith("sid:"), body
    return body


def test_client_directed_sign_in_and_x_zumo_auth(backend: ProxyServer, frontend: ProxyServer,
                                                 alice_frontend: SignedIn, world: World):
    token = fresh_user_token(alice_frontend, frontend)
    zumo = _zumo(backend, token)["authenticationToken"]
    r = api_get(backend.url("/zumo"), headers={"X-ZUMO-AUTH": zumo})
    echo = require_echo(r, "X-ZUMO-AUTH")
    h = echo["headers"]
    assert h.get("x-ms-client-principal-id") == world.alice.id, auth_headers(echo)
    assert h.get("x-ms-client-principal-idp") == "aad", auth_headers(echo)
    assert "x-zumo-auth" not in h or h["x-zumo-auth"] == zumo, auth_headers(echo)
    r = api_get(backend.url("/.auth/me"), headers={"X-ZUMO-AUTH": zumo})
    assert r.status_code == 200 and r.json()[0]["provider_name"] == "aad", describe(r)
    assert r.json()[0]["user_id"] == world.alice.upn, r.json()
    # /.auth/refresh with X-ZUMO-AUTH answers a new authenticationToken
    r = api_get(backend.url("/.auth/refresh"), headers={"X-ZUMO-AUTH": zumo})
    assert r.status_code in (200, 401), describe(r)  # 401: no refresh token with a bare access token
    if r.status_code == 200:
        assert r.json().get("authenticationToken"), r.text


def test_client_directed_sign_in_refuses_bad_tokens(backend: ProxyServer, proxy_idp: ProxyIdp, world: World):
    for token in ("a.b.c", app_token(proxy_idp, world.webapp.app_id, world.webapp.secret,
                                     "https://graph.microsoft.com/.default")):
        r = requests.post(backend.url("/.auth/login/aad"), json={"access_token": token},
                          headers={"User-Agent": API_UA}, timeout=30)
        assert r.status_code == 401, describe(r)


def test_tampered_x_zumo_auth_counts_as_absent(backend: ProxyServer, frontend: ProxyServer,
                                               alice_frontend: SignedIn):
    zumo = _zumo(backend, fresh_user_token(alice_frontend, frontend))["authenticationToken"]
    require_echo(api_get(backend.url("/zumo"), headers={"X-ZUMO-AUTH": zumo}), "control: the untouched X-ZUMO-AUTH")
    mid = len(zumo) // 2
    tampered = zumo[:mid] + ("A" if zumo[mid] != "A" else "B") + zumo[mid + 1:]
    for value in (tampered, zumo[:-5], "garbage"):
        r = api_get(backend.url("/zumo"), headers={"X-ZUMO-AUTH": value})
        assert r.status_code == 401, f"X-ZUMO-AUTH {value[:20]}...:\n{describe(r)}"


# --------------------------------------------------------------------------------------------
# Built-in authorization rules


def test_allowed_principals_refuses_other_users(proxies, proxy_idp: ProxyIdp, world: World,
                                                frontend: ProxyServer, alice_frontend: SignedIn):
    from proxy_e2e import aad_settings
    settings = aad_settings(proxy_idp, world, client_id=world.backend.app_id,
                            audiences=[world.backend.identifier_uri], allowed_apps=[world.webapp.app_id])
    aad = settings["properties"]["identityProviders"]["azureActiveDirectory"]
    aad["validation"]["defaultAuthorizationPolicy"]["allowedPrincipals"] = {"identities": [world.bob.id]}
    p = proxies.shared("bob-only", lambda: proxies.start("bob-only", settings, secret=world.backend.secret))
    r = api_get(p.url("/x"), token=fresh_user_token(alice_frontend, frontend))
    assert r.status_code == 403, f"alice is not in allowedPrincipals:\n{describe(r)}"


def test_allowed_tenants_refuses_other_tenants(proxies, proxy_idp: ProxyIdp, world: World,
                                               frontend: ProxyServer, alice_frontend: SignedIn):
    from proxy_e2e import aad_settings
    settings = aad_settings(proxy_idp, world, client_id=world.backend.app_id,
                            audiences=[world.backend.identifier_uri], allowed_apps=[world.webapp.app_id])
    p = proxies.shared("other-tenant-only", lambda: proxies.start(
        "other-tenant-only", settings, secret=world.backend.secret,
        env={"WEBSITE_AUTH_AAD_ALLOWED_TENANTS": "11111111-2222-3333-4444-555555555555"}))
    r = api_get(p.url("/x"), token=fresh_user_token(alice_frontend, frontend))
    assert r.status_code == 403, f"alice's tenant is not allowed:\n{describe(r)}"
