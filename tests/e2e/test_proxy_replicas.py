"""Three `easyauth proxy` replicas of one site behind nginx (round-robin), sharing sessions in a
private redis-server and the site's WEBSITE_AUTH_* keys, as a production deployment runs them:

- a sign-in through the load balancer is a sign-in on every replica (127.0.0.1 and localhost);
- `/.auth/refresh` on one replica is seen by the others; sign-out on one is sign-out everywhere;
- 50 concurrent refreshes of one session across the replicas, its access token expired: exactly
  one refresh-token redeem reaches the identity provider;
- Redis stopped: session requests get 503 (not a sign-in redirect) and keep their cookie; Redis
  back (append-only persistence): the same sessions work without signing in again;
- kill -9 of a replica under load loses no request beyond those in flight on it.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import pytest
import requests

from easyauth_e2e import World, describe
from proxy_e2e import (
    PROXY_ACCESS_TOKEN_LIFETIME,
    ProxyBrowser,
    ProxyFactory,
    ProxyIdp,
    ProxyServer,
    aad_settings,
    browser_sign_in,
    drive_provider,
    require_echo,
)
from services import Nginx, RedisServer

pytestmark = pytest.mark.proxy

SESSION_COOKIE = "AppServiceAuthSession"


@dataclass
class Front:
    """The load balancer's address under one host name, as browser_sign_in expects a proxy."""

    nginx: Nginx
    name: str

    @property
    def host(self) -> str:
        return f"{self.name}:{self.nginx.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def log_tail(self, lines: int = 30) -> str:
        return self.nginx.log_path.read_text(errors="replace")[-3000:]


@dataclass
class Deployment:
    redis: RedisServer
    replicas: list[ProxyServer]
    nginx: Nginx

    def front(self, name: str = "127.0.0.1") -> Front:
        return Front(self.nginx, name)


@pytest.fixture(scope="module")
def deployment(proxies: ProxyFactory, proxy_idp: ProxyIdp, world: World,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("replicas")
    redis = RedisServer(root / "redis").start()
    keys = {"WEBSITE_AUTH_ENCRYPTION_KEY": secrets.token_hex(32),
            "WEBSITE_AUTH_SIGNING_KEY": secrets.token_hex(32)}
    settings = aad_settings(proxy_idp, world)
    replicas = [proxies.start(f"replica{i}", settings, env=keys, public_url=False,
                              extra_args=["--session-store", redis.url])
                for i in range(3)]
    nginx = Nginx(root / "nginx", [r.host for r in replicas]).start()
    yield Deployment(redis, replicas, nginx)
    nginx.stop()
    for r in replicas:
        r.stop()
    redis.stop()


def sign_in(deployment: Deployment, proxy_idp: ProxyIdp, world: World, host: str = "127.0.0.1"):
    front = deployment.front(host)
    browser = ProxyBrowser(os.environ["SSL_CERT_FILE"])
    si = browser_sign_in(browser, front, front.url("/profile?via=lb"), provider_host=proxy_idp.host,
                         user=world.alice)
    assert si.final is not None, si.final_location
    echo = require_echo(si.final, "the page after signing in through the load balancer")
    assert echo["headers"]["x-ms-client-principal-name"] == world.alice.upn
    cookie = browser.session.cookies.get(SESSION_COOKIE)
    assert cookie, "the session cookie"
    return browser, cookie, echo


def get(url: str, cookie: str, **kw) -> requests.Response:
    return requests.get(url, cookies={SESSION_COOKIE: cookie}, allow_redirects=False, timeout=30, **kw)


def refresh_redeems(proxy_idp: ProxyIdp, client_id: str) -> int:
    """How many refresh-token redeems of `client_id` the identity provider has logged."""
    text = proxy_idp.log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines()
               if 'grant="refresh_token"' in line and f'client="{client_id}"' in line
               and "status=200" in line)


def test_the_banner_names_the_session_store(deployment: Deployment):
    banner = deployment.replicas[0].banner()
    assert banner["session store"] == [f"{deployment.redis.url} (Redis)"], banner


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_sign_in_through_one_replica_is_a_sign_in_on_all(deployment: Deployment, proxy_idp: ProxyIdp,
                                                          world: World, host: str):
    _, cookie, _ = sign_in(deployment, proxy_idp, world, host)
    for replica in deployment.replicas:
        echo = require_echo(get(replica.url("/direct"), cookie), f"{replica.name} directly")
        assert echo["headers"]["x-ms-client-principal-name"] == world.alice.upn, replica.name
    # Round-robin through the balancer: every answer is the signed-in app page.
    front = deployment.front(host)
    for i in range(6):
        echo = require_echo(get(front.url(f"/lb/{i}"), cookie), f"request {i} through nginx")
        assert echo["headers"]["x-ms-client-principal-name"] == world.alice.upn
    served = deployment.nginx.access_log.read_text()
    assert served.count("GET /lb/") >= 6


def test_refresh_and_sign_out_on_one_replica_are_seen_by_the_others(deployment: Deployment,
                                                                   proxy_idp: ProxyIdp, world: World):
    _, cookie, echo = sign_in(deployment, proxy_idp, world)
    a, b, c = deployment.replicas
    before = echo["headers"]["x-ms-token-aad-access-token"]
    r = get(a.url("/.auth/refresh"), cookie)
    assert r.status_code == 200, describe(r)
    after_b = require_echo(get(b.url("/after-refresh"), cookie))["headers"]["x-ms-token-aad-access-token"]
    after_c = get(c.url("/.auth/me"), cookie).json()[0]["access_token"]
    assert after_b != before
    assert after_b == after_c

    out = get(c.url("/.auth/logout"), cookie)
    assert out.status_code in (302, 303), describe(out)
    for replica in (a, b, c):
        # A copy of the signed-out cookie is anonymous on every replica (an API-style client
        # gets the 401 of RedirectToLoginPage; a browser would be sent to sign in).
        r = get(replica.url("/after-sign-out"), cookie)
        assert r.status_code == 401, f"{replica.name}: {describe(r)}"
        assert r.headers["x-easyauth-reason-code"] == "authentication-required"
        assert get(replica.url("/.auth/me"), cookie).status_code == 401


def test_concurrent_refreshes_across_replicas_redeem_the_refresh_token_once(
        deployment: Deployment, proxy_idp: ProxyIdp, world: World):
    _, cookie, echo = sign_in(deployment, proxy_idp, world)
    # Let the access token expire, as the app would find it.
    time.sleep(PROXY_ACCESS_TOKEN_LIFETIME + 1)
    redeemed_before = refresh_redeems(proxy_idp, world.webapp.app_id)
    start = threading.Barrier(50)

    def refresh(i: int) -> int:
        start.wait(timeout=30)
        return get(deployment.replicas[i % 3].url("/.auth/refresh"), cookie).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(refresh, range(50)))
    assert statuses == [200] * 50, {s: statuses.count(s) for s in set(statuses)}
    # The log line is written when the answer is sent; give it a moment to reach the file.
    for _ in range(50):
        if refresh_redeems(proxy_idp, world.webapp.app_id) > redeemed_before:
            break
        time.sleep(0.1)
    assert refresh_redeems(proxy_idp, world.webapp.app_id) - redeemed_before == 1
    tokens = {get(r.url("/.auth/me"), cookie).json()[0]["access_token"] for r in deployment.replicas}
    assert len(tokens) == 1 and echo["headers"]["x-ms-token-aad-access-token"] not in tokens


def test_redis_down_is_503_with_the_cookie_kept_and_sessions_return_with_it(
        deployment: Deployment, proxy_idp: ProxyIdp, world: World):
    _, cookie, _ = sign_in(deployment, proxy_idp, world)
    deployment.redis.stop()
    try:
        for replica in deployment.replicas:
            r = get(replica.url("/while-redis-is-down"), cookie)
            assert r.status_code == 503, f"{replica.name}: {describe(r)}"
            assert "Set-Cookie" not in r.headers, "the cookie is kept"
            assert r.headers.get("x-easyauth-reason-code") == "session-store-unavailable"
            assert r.headers.get("Retry-After")
            assert get(replica.url("/.auth/me"), cookie).status_code == 503
        r = get(deployment.front().url("/through-the-balancer"), cookie)
        assert r.status_code == 503, describe(r)
        # A new sign-in cannot be stored: a 503 page that offers to try again, not a 401.
        newcomer = ProxyBrowser(os.environ["SSL_CERT_FILE"])
        front = deployment.front()
        start = newcomer.get(front.url("/.auth/login/aad?post_login_redirect_uri=/later"))
        assert start.status_code == 302, describe(start)
        cb = drive_provider(newcomer, newcomer.get(start.headers["Location"]),
                            front.url("/.auth/login/aad/callback"), user=world.alice, pages=[])
        assert cb.status_code == 503, describe(cb)
        assert "Try again" in cb.text
    finally:
        deployment.redis.start()
    for replica in deployment.replicas:
        r = None
        for _ in range(100):
            r = get(replica.url("/after-redis-is-back"), cookie)
            if r.status_code != 503:
                break
            time.sleep(0.1)
        echo = require_echo(r, f"{replica.name} once Redis is back")
        assert echo["headers"]["x-ms-client-principal-name"] == world.alice.upn


def test_kill_9_of_a_replica_under_load_loses_only_what_was_in_flight_on_it(
        deployment: Deployment, proxy_idp: ProxyIdp, world: World):
    _, cookie, _ = sign_in(deployment, proxy_idp, world)
    front = deployment.front()
    workers, per_worker = 4, 60
    done = threading.Event()
    count = {"n": 0}
    lock = threading.Lock()

    def load(w: int) -> list[int]:
        statuses = []
        for i in range(per_worker):
            try:
                statuses.append(get(front.url(f"/load/{w}/{i}"), cookie).status_code)
            except requests.RequestException:
                statuses.append(-1)
            with lock:
                count["n"] += 1
                if count["n"] == workers * per_worker // 3:
                    done.set()
        return statuses

    victim = deployment.replicas[2]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(load, w) for w in range(workers)]
        assert done.wait(timeout=120)
        victim.proc.kill()
        statuses = [s for f in futures for s in f.result()]
    victim.proc.wait(timeout=10)
    # Killed on purpose: not a crash for the suite's crash check.
    victim.proc = None
    ProxyServer.running.remove(victim)
    failed = [s for s in statuses if s != 200]
    assert len(statuses) == workers * per_worker
    assert len(failed) <= workers, f"{len(failed)} failed: {failed}"
    # The survivors carry on: the session is in Redis, not in the dead replica.
    for i in range(6):
        echo = require_echo(get(front.url(f"/after-kill/{i}"), cookie))
        assert echo["headers"]["x-ms-client-principal-name"] == world.alice.upn


def test_a_replica_starts_while_redis_is_down_and_serves_once_it_is_up(
        proxies: ProxyFactory, proxy_idp: ProxyIdp, world: World,
        tmp_path_factory: pytest.TempPathFactory):
    redis = RedisServer(tmp_path_factory.mktemp("late-redis"))  # not started yet
    replica = proxies.start("late-redis", aad_settings(proxy_idp, world), public_url=False,
                            env={"WEBSITE_AUTH_ENCRYPTION_KEY": secrets.token_hex(32),
                                 "WEBSITE_AUTH_SIGNING_KEY": secrets.token_hex(32)},
                            extra_args=["--session-store", redis.url])
    try:
        # Started (no crash loop): /.auth/version answered for start() to return.
        r = get(replica.url("/with-a-cookie"), "not-a-session")
        assert r.status_code in (401, 302), describe(r)  # an unknown cookie is just anonymous
        redis.start()
        browser = ProxyBrowser(os.environ["SSL_CERT_FILE"])
        si = browser_sign_in(browser, replica, replica.url("/after-redis-started"),
                             provider_host=proxy_idp.host, user=world.alice)
        echo = require_echo(si.final, "signed in once Redis is up")
        assert echo["headers"]["x-ms-client-principal-name"] == world.alice.upn
    finally:
        replica.stop()
        redis.stop()
