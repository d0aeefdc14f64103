#!/usr/bin/env python3
"""Credentials for the proxy benchmark (`cargo xtask bench --only proxy`), standard library only.

1. A browser session: GET <proxy>/.auth/login/aad like a browser, follow the redirect to the
   `easyauth idp` sign-in page, submit the login form (`login`, `passwd` + hidden inputs), accept
   the consent page if one is shown, POST the form_post page's hidden inputs to the proxy's
   /.auth/login/aad/callback, and keep the `AppServiceAuthSession*` cookies it sets.
2. An app token: client_credentials at the IdP's token endpoint for `--scope`.
3. Checks that the proxy lets both through to the upstream (200), once each.

Prints `COOKIE=<Cookie header value>` and `BEARER=<access token>` on stdout.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/130.0 Safari/537.36 easyauth-bench")


class Form:
    def __init__(self, action: str, method: str):
        self.action = action
        self.method = method
        self.fields: list[tuple[str, str, str]] = []  # (name, value, type)
        self.buttons: list[tuple[str, str]] = []

    def names(self) -> set[str]:
        return {n for n, _, _ in self.fields}

    def data(self, overrides: dict[str, str] | None = None,
             button: tuple[str, str] | None = None) -> dict[str, str]:
        out = {n: v for n, v, t in self.fields if n and t not in ("submit", "button")}
        out.update(overrides or {})
        if button:
            out[button[0]] = button[1]
        return out


class FormParser(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.forms: list[Form] = []
        self.current: Form | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.current = Form(urllib.parse.urljoin(self.base, a.get("action", "")),
                                a.get("method", "get").lower())
            self.forms.append(self.current)
        elif self.current is not None and tag in ("input", "button"):
            typ = a.get("type", "submit" if tag == "button" else "text").lower()
            name = a.get("name", "")
            if typ in ("submit", "button") or tag == "button":
                if name:
                    self.current.buttons.append((name, a.get("value", "")))
            self.current.fields.append((name, a.get("value", ""), typ))

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    def __init__(self, ca: str):
        self.jar = http.cookiejar.CookieJar()
        ctx = ssl.create_default_context(cafile=ca)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=ctx),
            NoRedirect())
        self.trace: list[str] = []

    def request(self, method: str, url: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body, method=method)
        req.add_header("User-Agent", BROWSER_UA)
        req.add_header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            resp = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as e:  # 3xx (no redirect handler) and 4xx/5xx
            resp = e
        status = resp.status if hasattr(resp, "status") else resp.code
        text = resp.read().decode("utf-8", "replace")
        location = resp.headers.get("Location")
        self.trace.append(f"{method} {url} -> {status}" + (f" Location: {location}" if location else ""))
        return status, resp.headers, text, url

    def fail(self, why: str, text: str = "") -> None:
        sys.exit(f"credentials.py: {why}\n--- trace ---\n" + "\n".join(self.trace)
                 + (f"\n--- last page ---\n{text[:2000]}" if text else ""))


def origin(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def sign_in(b: Browser, proxy: str, user: str, password: str) -> str:
    callback = proxy + "/.auth/login/aad/callback"
    status, headers, text, url = b.request("GET", proxy + "/.auth/login/aad?post_login_redirect_uri=/")
    pages: list[str] = []
    for _ in range(15):
        if status in (301, 302, 303, 307, 308):
            loc = urllib.parse.urljoin(url, headers.get("Location", ""))
            if loc.startswith(callback):
                status, headers, text, url = b.request("GET", loc)
                break
            status, headers, text, url = b.request("GET", loc)
            continue
        if status != 200:
            b.fail(f"unexpected HTTP {status}", text)
        parser = FormParser(url)
        parser.feed(text)
        post = next((f for f in parser.forms if f.action.startswith(callback)), None)
        if post is not None:
            pages.append("form_post")
            status, headers, text, url = b.request(
                "POST", post.action, data=post.data(), headers={"Origin": origin(url)})
            break
        login = next((f for f in parser.forms if {"login", "passwd"} <= f.names()), None)
        if login is not None:
            if "login" in pages:
                b.fail("the login page came back (wrong password?)", text)
            pages.append("login")
            status, headers, text, url = b.request(
                "POST", login.action, data=login.data({"login": user, "passwd": password}))
            continue
        consent = next((f for f in parser.forms if any(n == "consent" for n, _ in f.buttons)), None)
        if consent is not None:
            pages.append("consent")
            status, headers, text, url = b.request(
                "POST", consent.action, data=consent.data(button=("consent", "accept")))
            continue
        b.fail("a page that is neither login, consent nor form_post", text)
    else:
        b.fail("the sign-in did not reach the callback in 15 steps")
    if status not in (302, 303):
        b.fail(f"the callback answered {status}, not a redirect", text)
    cookies = sorted((c.name, c.value) for c in b.jar if c.name.startswith("AppServiceAuthSession"))
    if not cookies:
        b.fail("the callback set no AppServiceAuthSession cookie")
    print(f"credentials.py: signed in ({' -> '.join(pages)}); cookies: "
          + ", ".join(f"{n} ({len(v)} chars)" for n, v in cookies), file=sys.stderr)
    return "; ".join(f"{n}={v}" for n, v in cookies)


def client_credentials(ca: str, token_url: str, client_id: str, secret: str, scope: str) -> str:
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": secret, "scope": scope}).encode()
    ctx = ssl.create_default_context(cafile=ca)
    try:
        with urllib.request.urlopen(urllib.request.Request(token_url, data=body), context=ctx,
                                    timeout=30) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as e:
        sys.exit(f"credentials.py: token request answered {e.code}: {e.read()[:500]!r}")
    token = answer.get("access_token")
    if not token:
        sys.exit(f"credentials.py: no access_token in {answer}")
    print(f"credentials.py: client_credentials token ({len(token)} chars, expires_in "
          f"{answer.get('expires_in')})", file=sys.stderr)
    return token


def check(url: str, headers: dict[str, str], what: str) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "easyauth-bench", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
        reason = e.headers.get("x-easyauth-reason", "")
        sys.exit(f"credentials.py: {what}: the proxy answered {status} ({reason}): {body[:300]!r}")
    print(f"credentials.py: {what}: GET {url} -> {status}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--ca", required=True, help="the IdP's CA (PEM)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--token-url", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--scope", required=True)
    args = ap.parse_args()
    cookie = sign_in(Browser(args.ca), args.proxy.rstrip("/"), args.user, args.password)
    bearer = client_credentials(args.ca, args.token_url, args.client_id, args.client_secret, args.scope)
    check(args.proxy.rstrip("/") + "/", {"Cookie": cookie}, "session cookie")
    check(args.proxy.rstrip("/") + "/", {"Authorization": f"Bearer {bearer}"}, "bearer token")
    print(f"COOKIE={cookie}")
    print(f"BEARER={bearer}")


if __name__ == "__main__":
    main()
