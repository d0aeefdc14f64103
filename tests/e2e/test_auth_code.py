"""Authorization code + PKCE through the IdP's login and consent pages, driven by MSAL Python."""

from __future__ import annotations

import json
from urllib.parse import urljoin

import pytest
import requests

from conftest import InteractiveResult, confidential_app, interactive
from easyauth_e2e import (
    REDIRECT_URI,
    Browser,
    IdpServer,
    TokenValidator,
    World,
    b64url_decode,
    describe,
    parse_forms,
    require_token,
    sign_in,
    token_error,
)


@pytest.fixture(scope="module")
def first(idp: IdpServer, world: World, backend_scope: str) -> InteractiveResult:
    """alice's very first sign-in into webapp for the backend API (login + consent)."""
    return interactive(idp, world.webapp, [backend_scope], world.alice)


def check_backend_token(tokens: TokenValidator, world: World, token: str) -> dict:
    c = tokens.access_v1(token, world.backend.identifier_uri)
    assert c["scp"] == "user_impersonation", c
    assert c["appid"] == world.webapp.app_id and c["appidacr"] == "1", c
    assert c["oid"] == world.alice.id, c
    assert world.alice.upn in (c.get("upn"), c.get("unique_name")), c
    assert c.get("name") == world.alice.display_name, c
    assert "roles" not in c or c["roles"], c
    return c


def test_login_and_consent_pages(first: InteractiveResult, world: World, tokens: TokenValidator,
                                 backend_scope: str):
    assert first.sign_in.pages == ["login", "consent"], first.sign_in
    assert first.sign_in.params.get("state") == first.flow["state"]
    # client_info is also returned in the authorize response (MSAL asked with client_info=1)
    assert json.loads(b64url_decode(first.sign_in.params["client_info"])) == {
        "uid": world.alice.id, "utid": world.tenant_id}
    r = require_token(first.result)
    assert r["token_type"] == "Bearer"
    assert isinstance(r["expires_in"], int) and 0 < r["expires_in"] <= 120, r["expires_in"]
    assert backend_scope in r["scope"].split(" "), r["scope"]
    assert r.get("refresh_token"), "offline_access was requested: refresh_token expected"
    check_backend_token(tokens, world, r["access_token"])
    idc = tokens.id_token(r["id_token"], world.webapp.app_id, nonce=first.expected_nonce)
    assert idc["oid"] == world.alice.id
    assert idc["preferred_username"] == world.alice.upn
    assert idc["name"] == world.alice.display_name
    # client_info (MSAL asks with client_info=1) gives MSAL a home account id
    info = json.loads(b64url_decode(r["client_info"]))
    assert info == {"uid": world.alice.id, "utid": world.tenant_id}, info
    accounts = first.app.get_accounts()
    assert [a["username"] for a in accounts] == [world.alice.upn], accounts
    assert accounts[0]["home_account_id"] == f"{world.alice.id}.{world.tenant_id}"


def test_second_sign_in_skips_login_and_consent(first: InteractiveResult, idp: IdpServer,
                                                 world: World, tokens: TokenValidator,
                                                 backend_scope: str):
    require_token(first.result)
    again = interactive(idp, world.webapp, [backend_scope], world.alice, browser=first.browser)
    assert again.sign_in.pages == [], f"expected a direct redirect, saw {again.sign_in.pages}"
    r = require_token(again.result)
    check_backend_token(tokens, world, r["access_token"])
    tokens.id_token(r["id_token"], world.webapp.app_id, nonce=again.expected_nonce)


def test_new_browser_logs_in_but_consent_is_remembered(first: InteractiveResult, idp: IdpServer,
                                                       world: World, tokens: TokenValidator,
                                                       backend_scope: str):
    require_token(first.result)
    fresh = interactive(idp, world.webapp, [backend_scope], world.alice, browser=Browser(idp))
    assert fresh.sign_in.pages == ["login"], fresh.sign_in.pages
    check_backend_token(tokens, world, require_token(fresh.result)["access_token"])


def test_pre_authorized_client_needs_no_consent(idp: IdpServer, world: World, tokens: TokenValidator,
                                                api2_scope: str):
    r = interactive(idp, world.webapp, [api2_scope], world.alice, browser=Browser(idp))
    assert r.sign_in.pages == ["login"], r.sign_in.pages
    c = tokens.access_v2(require_token(r.result)["access_token"], world.api2.app_id)
    assert c["scp"] == world.api2.scope_value, c
    assert c["azp"] == world.webapp.app_id and c["azpacr"] == "1", c
    assert c["oid"] == world.alice.id and c["preferred_username"] == world.alice.upn, c
    assert c["name"] == world.alice.display_name, c


def test_form_post_response_mode(first: InteractiveResult, idp: IdpServer, world: World,
                                 tokens: TokenValidator, backend_scope: str):
    require_token(first.result)
    r = interactive(idp, world.webapp, [backend_scope], world.alice, browser=first.browser,
                    response_mode="form_post")
    assert r.sign_in.pages == ["form_post"], r.sign_in.pages
    assert r.sign_in.params.get("state") == r.flow["state"]
    check_backend_token(tokens, world, require_token(r.result)["access_token"])


def test_consent_denied(idp: IdpServer, world: World, backend_scope: str):
    r = interactive(idp, world.webapp, [backend_scope], world.bob, consent="deny")
    assert r.sign_in.pages == ["login", "consent"], r.sign_in.pages
    assert r.sign_in.params.get("error") == "access_denied", r.sign_in.params
    assert r.sign_in.params.get("state") == r.flow["state"]
    assert "access_token" not in r.result


def test_consent_required_at_token_endpoint(idp: IdpServer, world: World, backend_scope: str,
                                            tokens: TokenValidator):
    """bob signs in with OIDC scopes only (no consent needed), then uses his refresh token for
    the backend API that he never consented to: invalid_grant / 65001 / consent_required."""
    r = interactive(idp, world.webapp, [], world.bob, browser=Browser(idp))
    assert "consent" not in r.sign_in.pages, r.sign_in.pages
    result = require_token(r.result)
    tokens.id_token(result["id_token"], world.webapp.app_id, nonce=r.expected_nonce)
    resp = requests.post(idp.token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "client_id": world.webapp.app_id,
        "client_secret": world.webapp.secret, "refresh_token": result["refresh_token"],
        "scope": f"{backend_scope} offline_access openid"})
    assert resp.status_code == 400, describe(resp)
    body = token_error(resp)
    assert body["error"] == "invalid_grant", body
    assert 65001 in body["error_codes"], body
    assert body.get("suberror") == "consent_required", body


def redeem(idp: IdpServer, world: World, r: InteractiveResult, **override: str) -> requests.Response:
    data = {
        "grant_type": "authorization_code", "client_id": world.webapp.app_id,
        "client_secret": world.webapp.secret, "code": r.sign_in.params["code"],
        "redirect_uri": REDIRECT_URI, "code_verifier": r.flow["code_verifier"],
        "scope": " ".join(r.flow["scope"]) if isinstance(r.flow.get("scope"), list) else
        r.flow.get("scope", ""),
    }
    data.update(override)
    return requests.post(idp.token_endpoint, data=data, timeout=10)


def test_code_cannot_be_redeemed_twice(first: InteractiveResult, idp: IdpServer, world: World):
    require_token(first.result)  # MSAL already redeemed first's code
    resp = redeem(idp, world, first)
    assert resp.status_code == 400, describe(resp)
    body = token_error(resp)
    assert body["error"] == "invalid_grant", body


def test_pkce_verifier_is_checked(first: InteractiveResult, idp: IdpServer, world: World,
                                  backend_scope: str, tokens: TokenValidator):
    app = first.app
    flow = app.initiate_auth_code_flow([backend_scope], redirect_uri=REDIRECT_URI)
    si = sign_in(first.browser, flow["auth_uri"], REDIRECT_URI, world.alice)
    fake = InteractiveResult(app, flow, si, {}, first.browser)
    bad = redeem(idp, world, fake, code_verifier="x" * 43)
    assert bad.status_code == 400, describe(bad)
    assert token_error(bad)["error"] == "invalid_grant"
    # a fresh code redeemed by hand with the right verifier works
    flow2 = app.initiate_auth_code_flow([backend_scope], redirect_uri=REDIRECT_URI)
    si2 = sign_in(first.browser, flow2["auth_uri"], REDIRECT_URI, world.alice)
    good = redeem(idp, world, InteractiveResult(app, flow2, si2, {}, first.browser))
    assert good.status_code == 200, describe(good)
    body = good.json()
    assert body["token_type"] == "Bearer" and isinstance(body["ext_expires_in"], int), body
    check_backend_token(tokens, world, body["access_token"])


def test_silent_refresh(idp: IdpServer, world: World, tokens: TokenValidator, backend_scope: str,
                        sign_in_alice):
    r = sign_in_alice([backend_scope])
    accounts = r.app.get_accounts()
    assert len(accounts) == 1, accounts
    # access tokens live 120 s < MSAL's 5-minute margin: silent must go to the IdP (refresh token)
    silent = require_token(r.app.acquire_token_silent([backend_scope], account=accounts[0]))
    assert silent.get("token_source") == "identity_provider", silent.get("token_source")
    assert silent["access_token"] != r.result["access_token"]
    c = check_backend_token(tokens, world, silent["access_token"])
    assert c["uti"] != tokens.access_v1(r.result["access_token"], world.backend.identifier_uri)["uti"]
    # the same refresh token also serves another consented/pre-authorized resource
    other = require_token(r.app.acquire_token_silent([f"{world.api2.identifier_uri}/access_as_user"],
                                                     account=accounts[0]))
    c2 = tokens.access_v2(other["access_token"], world.api2.app_id)
    assert c2["scp"] == "access_as_user" and c2["oid"] == world.alice.id, c2


def test_wrong_password_shows_login_again(idp: IdpServer, world: World, backend_scope: str):
    app = confidential_app(idp, world.webapp)
    flow = app.initiate_auth_code_flow([backend_scope], redirect_uri=REDIRECT_URI)
    b = Browser(idp)
    page = b.request("GET", flow["auth_uri"])
    assert page.status_code == 200, describe(page)
    login = next(f for f in parse_forms(page.text, page.url) if "passwd" in f.field_names())
    resp = b.submit(login, login.data({"login": world.alice.upn, "passwd": "wrong-password"}))
    assert resp.status_code != 302 or "code=" not in resp.headers.get("Location", ""), describe(resp)
    if resp.status_code == 200:
        assert any("passwd" in f.field_names() for f in parse_forms(resp.text, resp.url)), describe(resp)


def test_localhost_redirect_port_is_ignored(idp: IdpServer, world: World, tokens: TokenValidator,
                                            backend_scope: str):
    """`http://localhost` is registered: MSAL's random-port loopback redirect URIs must match."""
    app = confidential_app(idp, world.webapp)
    redirect = "http://localhost:53123"
    flow = app.initiate_auth_code_flow([backend_scope], redirect_uri=redirect)
    si = sign_in(Browser(idp), flow["auth_uri"], redirect, world.alice)
    assert "code" in si.params, si
    r = require_token(app.acquire_token_by_auth_code_flow(flow, si.params))
    check_backend_token(tokens, world, r["access_token"])


def test_unregistered_redirect_uri_is_not_followed(idp: IdpServer, world: World, backend_scope: str):
    app = confidential_app(idp, world.webapp)
    flow = app.initiate_auth_code_flow([backend_scope], redirect_uri="https://evil.test/callback")
    resp = Browser(idp).request("GET", flow["auth_uri"])
    assert resp.status_code not in (301, 302, 303, 307, 308), describe(resp)
    assert "AADSTS50011" in resp.text, describe(resp)
    assert not any("passwd" in f.field_names() for f in parse_forms(resp.text, resp.url)), \
        "no login form for an invalid request"


def test_logout_ends_the_session(idp: IdpServer, world: World, tokens: TokenValidator,
                                 backend_scope: str):
    browser = Browser(idp)
    first = interactive(idp, world.webapp, [backend_scope], world.alice, browser=browser)
    require_token(first.result)
    again = interactive(idp, world.webapp, [backend_scope], world.alice, browser=browser)
    assert again.sign_in.pages == [], "session cookie should skip the login page"
    # sign out (front channel); follow redirects that stay on the IdP
    url = f"{idp.base}/{idp.tenant_id}/oauth2/v2.0/logout?post_logout_redirect_uri={REDIRECT_URI}"
    resp = browser.request("GET", url)
    for _ in range(5):
        if resp.status_code in (301, 302, 303, 307, 308):
            loc = urljoin(resp.url, resp.headers["Location"])
            if not browser.on_idp(loc):
                assert loc.startswith(REDIRECT_URI), loc
                break
            resp = browser.request("GET", loc)
        else:
            assert resp.status_code == 200, describe(resp)
            break
    after = interactive(idp, world.webapp, [backend_scope], world.alice, browser=browser)
    assert after.sign_in.pages == ["login"], after.sign_in.pages
    check_backend_token(tokens, world, require_token(after.result)["access_token"])


def test_prompt_parameter(idp: IdpServer, world: World, tokens: TokenValidator, backend_scope: str):
    browser = Browser(idp)
    app = confidential_app(idp, world.webapp)
    # prompt=none without a session: error=login_required back to the app
    flow = app.initiate_auth_code_flow([backend_scope], redirect_uri=REDIRECT_URI, prompt="none")
    si = sign_in(browser, flow["auth_uri"], REDIRECT_URI, None)
    assert si.params.get("error") == "login_required", si
    assert si.params.get("state") == flow["state"]
    # sign in once
    require_token(interactive(idp, world.webapp, [backend_scope], world.alice, browser=browser,
                              app=app).result)
    # prompt=none with a session: straight to the app with a code
    r = interactive(idp, world.webapp, [backend_scope], None, browser=browser, app=app, prompt="none")
    assert r.sign_in.pages == [], r.sign_in
    check_backend_token(tokens, world, require_token(r.result)["access_token"])
    # prompt=login: the login page although there is a session
    r = interactive(idp, world.webapp, [backend_scope], world.alice, browser=browser, app=app,
                    prompt="login")
    assert r.sign_in.pages == ["login"], r.sign_in.pages
    require_token(r.result)
    # prompt=consent: the consent page although consent was given
    r = interactive(idp, world.webapp, [backend_scope], world.alice, browser=browser, app=app,
                    prompt="consent")
    assert r.sign_in.pages == ["consent"], r.sign_in.pages
    require_token(r.result)
