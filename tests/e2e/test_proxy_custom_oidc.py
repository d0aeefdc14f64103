"""`easyauth proxy` with a custom OpenID Connect provider (node oidc-provider over https)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from easyauth_e2e import ARTIFACTS, World, describe, free_port
from proxy_e2e import (
    API_UA,
    MYOIDC_SECRET_SETTING,
    OidcProvider,
    ProxyBrowser,
    ProxyFactory,
    ProxyIdp,
    browser_sign_in,
    decode_principal,
    query_params,
    require_echo,
)

pytestmark = pytest.mark.proxy


@pytest.fixture(scope="module")
def myoidc(proxies: ProxyFactory, proxy_idp: ProxyIdp, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = OidcProvider(tmp_path_factory.mktemp("myoidc"),
                            redirect_uris=[f"{base}/.auth/login/myoidc/callback"],
                            post_logout_uris=[f"{base}/.auth/logout/complete"])
    try:
        provider.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    # one bundle: the identity providers' CAs and the oidc-provider's CA
    bundle = ARTIFACTS / "ca-bundle-myoidc.pem"
    bundle.write_text(Path(os.environ["SSL_CERT_FILE"]).read_text() + "\n" + provider.ca_path.read_text())
    settings = {"properties": {
        "platform": {"enabled": True},
        "globalValidation": {"requireAuthentication": True, "unauthenticatedClientAction": "RedirectToLoginPage",
                             "redirectToProvider": "myoidc"},
        "identityProviders": {"customOpenIdConnectProviders": {"myoidc": {
            "enabled": True,
            "registration": {
                "clientId": OidcProvider.CLIENT_ID,
                "clientCredential": {"clientSecretSettingName": MYOIDC_SECRET_SETTING},
                "openIdConnectConfiguration": {"wellKnownOpenIdConfiguration": provider.well_known},
            },
            "login": {"nameClaimType": "email", "scopes": ["openid", "profile", "email"]},
        }}},
        "login": {"tokenStore": {"enabled": True}},
    }}
    proxy = proxies.start("myoidc", settings, env={MYOIDC_SECRET_SETTING: provider.secret},
                          ca_bundle=bundle, port=port)
    yield provider, proxy, bundle
    proxy.stop()
    provider.stop()


def test_custom_oidc_sign_in(myoidc, world: World):
    provider, proxy, bundle = myoidc
    b = ProxyBrowser(bundle)
    si = browser_sign_in(b, proxy, proxy.url("/hello?z=9"), provider="myoidc", provider_host=provider.host,
                         login=OidcProvider.USER_SUB)
    q = query_params(si.authorize_url)
    assert urlsplit(si.authorize_url).netloc == provider.host, si.authorize_url
    assert q.get("client_id") == OidcProvider.CLIENT_ID, q
    assert q.get("redirect_uri") == proxy.url("/.auth/login/myoidc/callback"), q
    assert "openid" in q.get("scope", "").split(), q
    assert si.final_location == proxy.url("/hello?z=9"), b.trace_text()
    echo = require_echo(si.final, "after the custom OIDC sign-in")
    h = echo["headers"]
    assert h.get("x-ms-client-principal-idp") == "myoidc", h
    principal = decode_principal(h["x-ms-client-principal"])
    assert principal["auth_typ"] == "myoidc", principal
    vals = {c["val"] for c in principal["claims"]}
    assert OidcProvider.USER_SUB in vals, principal
    assert h.get("x-ms-client-principal-name") == OidcProvider.USER_EMAIL, h
    assert h.get("x-ms-token-myoidc-id-token"), sorted(h)
    # /.auth/me
    r = b.get(proxy.url("/.auth/me"))
    assert r.status_code == 200, describe(r)
    me = r.json()
    assert isinstance(me, list) and me[0]["provider_name"] == "myoidc", me
    assert me[0].get("id_token") == h["x-ms-token-myoidc-id-token"], me
    assert me[0].get("user_id") == OidcProvider.USER_EMAIL, me
    # a non-browser without the cookie: 401
    r = requests.get(proxy.url("/hello"), headers={"User-Agent": API_UA}, allow_redirects=False, timeout=30)
    assert r.status_code == 401, describe(r)


def test_custom_oidc_logout(myoidc):
    """/.auth/logout goes through the provider's end_session_endpoint (oidc-provider asks for a
    confirmation) and back to /.auth/logout/complete; the session is gone afterwards."""
    import re
    from urllib.parse import urljoin
    provider, proxy, bundle = myoidc
    b = ProxyBrowser(bundle)
    browser_sign_in(b, proxy, proxy.url("/hello"), provider="myoidc", provider_host=provider.host,
                    login=OidcProvider.USER_SUB)
    cookies = b.session_cookies()
    # no offline_access: nothing to refresh with
    r = b.get(proxy.url("/.auth/refresh"))
    assert r.status_code in (400, 401), describe(r)
    r = b.get(proxy.url("/.auth/logout"))
    assert r.status_code == 302, describe(r)
    loc = r.headers["Location"]
    assert urlsplit(loc).netloc == provider.host and urlsplit(loc).path == "/session/end", loc
    q = query_params(loc)
    assert q.get("post_logout_redirect_uri") == proxy.url("/.auth/logout/complete"), q
    assert q.get("client_id") == OidcProvider.CLIENT_ID or q.get("id_token_hint"), q
    r = b.get(loc)
    assert r.status_code == 200, describe(r)
    action = re.search(r'action="([^"]+)"', r.text).group(1)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', r.text).group(1)
    r = b.request("POST", urljoin(r.url, action), data={"xsrf": xsrf, "logout": "yes"})
    for _ in range(4):
        if r.status_code not in (302, 303):
            break
        r = b.get(urljoin(r.url, r.headers["Location"]))
    assert r.status_code == 200 and r.url.startswith(proxy.url("/.auth/logout/complete")), \
        f"{describe(r)}\n{b.trace_text()}"
    r = requests.get(proxy.url("/hello"), cookies=cookies, headers={"User-Agent": API_UA}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 401, f"the replayed cookie still works after logout:\n{describe(r)}"
