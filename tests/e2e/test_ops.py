"""The operations listener of `easyauth proxy` and `easyauth idp` (`--ops-listen`): `/healthz`,
`/readyz` and `/metrics` on the address each prints in its banner, reached as 127.0.0.1 and as
localhost; the exposition passes `promtool check metrics` (Prometheus' own linter); the counters
move as requests are made; and the W3C trace context a client sends reaches the app unchanged.

    cargo xtask test --only-e2e -- -k test_ops
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from easyauth_e2e import World, describe
from proxy_e2e import (
    API_UA,
    SECRET_SETTING,
    EchoApp,
    ProxyIdp,
    ProxyServer,
    aad_settings,
    api_get,
    app_token,
    require_echo,
)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
OPS_ARGS = ["--ops-listen", "127.0.0.1:0"]  # the system picks the port; the banner names it


def banner_ops_port(log_path: Path) -> int:
    """The port of the `operations  http://127.0.0.1:PORT (...)` banner line."""
    for line in log_path.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "operations":
            url = words[1]
            assert url.startswith("http://127.0.0.1:"), line
            return int(url.rsplit(":", 1)[1])
    raise AssertionError(f"no `operations` line in the banner:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def ops_idp(proxy_binary: str, world: World, proxy_idp: ProxyIdp,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyIdp]:
    """An identity provider of its own with the operations listener (the proxy one's directory)."""
    server = ProxyIdp(proxy_binary, world, tmp_path_factory.mktemp("ops-idp"))
    server.extra_args += OPS_ARGS
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ops_proxy(proxy_binary: str, world: World, ops_idp: ProxyIdp, echo_app: EchoApp,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """The tutorial's back end (allowedApplications [webapp]) in front of the echo app."""
    settings = aad_settings(ops_idp, world, client_id=world.backend.app_id,
                            audiences=[world.backend.identifier_uri],
                            allowed_apps=[world.webapp.app_id])
    proxy = ProxyServer(proxy_binary, "ops", settings, echo_app.url,
                        tmp_path_factory.mktemp("ops-proxy"),
                        env={SECRET_SETTING: world.backend.secret},
                        ca_bundle=Path(os.environ["SSL_CERT_FILE"]), extra_args=OPS_ARGS)
    try:
        proxy.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield proxy
    proxy.stop()


def ops_urls(log_path: Path | None) -> list[str]:
    assert log_path is not None
    port = banner_ops_port(log_path)
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def metrics_of(base: str) -> dict[str, float]:
    """`name{labels}` (as exposed) -> value."""
    r = requests.get(base + "/metrics", timeout=10)
    assert r.status_code == 200, describe(r)
    out: dict[str, float] = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def backend_token(idp: ProxyIdp, world: World) -> str:
    return app_token(idp, world.webapp.app_id, world.webapp.secret,
                     f"{world.backend.identifier_uri}/.default")


@pytest.mark.parametrize("server", ["proxy", "idp"])
def test_health_readiness_and_metrics_on_both_names(server: str, ops_proxy: ProxyServer,
                                                    ops_idp: ProxyIdp):
    log = ops_proxy.log_path if server == "proxy" else ops_idp.log_path
    for base in ops_urls(log):
        alive = requests.get(base + "/healthz", timeout=10)
        assert (alive.status_code, alive.text) == (200, "ok\n"), describe(alive)
        # The proxy's readiness fetches the provider's discovery document itself if needed.
        ready = requests.get(base + "/readyz", timeout=10)
        assert ready.status_code == 200, describe(ready)
        assert ready.text.startswith("ready\n"), ready.text
        assert all(line.endswith(": ok") for line in ready.text.splitlines()[1:]), ready.text
        m = requests.get(base + "/metrics", timeout=10)
        assert m.status_code == 200, describe(m)
        assert m.headers["Content-Type"].startswith("text/plain; version=0.0.4"), m.headers
        assert 'easyauth_build_info{version="' in m.text, m.text
        # Nothing else is served there: the app's paths are the app's.
        other = requests.get(base + "/", timeout=10)
        assert other.status_code == 404, describe(other)


def test_the_identity_provider_answers_health_on_its_own_origin_too(ops_idp: ProxyIdp):
    for path, first in (("/healthz", "ok"), ("/readyz", "ready")):
        r = requests.get(ops_idp.base + path, verify=str(ops_idp.ca_path), timeout=10)
        assert r.status_code == 200, describe(r)
        assert r.text.splitlines()[0] == first, r.text


def test_the_app_keeps_its_own_health_paths(ops_proxy: ProxyServer):
    """/healthz on the module's own port is the app's path (here behind authentication)."""
    r = api_get(ops_proxy.url("/healthz"))
    assert r.status_code == 401, describe(r)


@pytest.mark.skipif(not Path(PROMTOOL).is_file(), reason="promtool is not installed "
                    "(Debian's prometheus; `cargo xtask test` installs it)")
@pytest.mark.parametrize("server", ["proxy", "idp"])
def test_metrics_pass_promtool(server: str, ops_proxy: ProxyServer, ops_idp: ProxyIdp,
                               world: World):
    # Some traffic first, so the families have samples with labels.
    token = backend_token(ops_idp, world)
    require_echo(api_get(ops_proxy.url("/data"), token=token), "bearer call")
    assert api_get(ops_proxy.url("/data")).status_code == 401
    log = ops_proxy.log_path if server == "proxy" else ops_idp.log_path
    base = ops_urls(log)[0]
    exposition = requests.get(base + "/metrics", timeout=10).text
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, text=True,
                           capture_output=True, timeout=60)
    problems = (check.stdout + check.stderr).strip()
    assert check.returncode == 0 and not problems, \
        f"promtool check metrics (exit {check.returncode}):\n{problems}\n--- exposition ---\n{exposition}"


def test_counters_move_as_requests_are_made(ops_proxy: ProxyServer, ops_idp: ProxyIdp,
                                            world: World):
    proxy_ops = ops_urls(ops_proxy.log_path)[0]
    idp_ops = ops_urls(ops_idp.log_path)[0]
    unauthorized = 'easyauth_module_requests_total{outcome="unauthorized",reason="authentication-required"}'
    passed = 'easyauth_module_requests_total{outcome="passed",reason="none"}'
    forbidden = 'easyauth_module_requests_total{outcome="forbidden",reason="application-not-allowed"}'
    issued = 'easyauth_idp_tokens_issued_total{grant="client_credentials"}'
    token_ok = 'easyauth_idp_requests_total{endpoint="token",status="200"}'
    before, idp_before = metrics_of(proxy_ops), metrics_of(idp_ops)

    anonymous = requests.get(ops_proxy.url("/data"), headers={"User-Agent": API_UA}, timeout=30)
    assert anonymous.status_code == 401, describe(anonymous)
    token = backend_token(ops_idp, world)
    require_echo(api_get(ops_proxy.url("/data"), token=token), "bearer call")
    require_echo(api_get(ops_proxy.url("/data"), token=token), "bearer call")
    other = app_token(ops_idp, world.other_client.app_id, world.other_client.secret,
                      f"{world.backend.identifier_uri}/.default")
    assert api_get(ops_proxy.url("/data"), token=other).status_code == 403

    after, idp_after = metrics_of(proxy_ops), metrics_of(idp_ops)
    assert after.get(unauthorized, 0) == before.get(unauthorized, 0) + 1, after
    assert after.get(passed, 0) == before.get(passed, 0) + 2, after
    assert after.get(forbidden, 0) == before.get(forbidden, 0) + 1, after
    assert after["easyauth_module_jwks_fetches_total{result=\"ok\"}"] >= 1, after
    assert idp_after.get(issued, 0) == idp_before.get(issued, 0) + 2, idp_after
    assert idp_after.get(token_ok, 0) == idp_before.get(token_ok, 0) + 2, idp_after
    # No token, client id or path in any label.
    text = requests.get(proxy_ops + "/metrics", timeout=10).text
    assert token[:40] not in text and "/data" not in text and world.webapp.app_id not in text


def test_trace_context_reaches_the_app_unchanged(ops_proxy: ProxyServer, ops_idp: ProxyIdp,
                                                 world: World):
    token = backend_token(ops_idp, world)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    echo = require_echo(api_get(ops_proxy.url("/traced"), token=token,
                                headers={"traceparent": traceparent, "tracestate": tracestate}),
                        "traced call")
    assert echo["headers"].get("traceparent") == traceparent, echo["headers"]
    assert echo["headers"].get("tracestate") == tracestate, echo["headers"]
    # None sent: the module makes none up.
    echo = require_echo(api_get(ops_proxy.url("/untraced"), token=token), "untraced call")
    assert "traceparent" not in echo["headers"] and "tracestate" not in echo["headers"], echo


def test_an_idp_waiting_for_its_database_is_alive_but_not_ready(proxy_binary: str,
                                                                tmp_path: Path):
    """`easyauth idp --store postgres://…` with nothing listening there: no crash loop; the
    operations listener answers at once, /healthz 200 and /readyz 503 naming the store."""
    from easyauth_e2e import ARTIFACTS, free_port
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "idp-waiting-for-postgres.log"
    dead = free_port()  # nothing listens there
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [proxy_binary, "idp", "--data-dir", str(tmp_path / "data"),
             "--listen", f"127.0.0.1:{free_port()}",
             "--store", f"postgres://easyauth:secret@127.0.0.1:{dead}/easyauth", *OPS_ARGS],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            try:
                port = banner_ops_port(log_path)
            except AssertionError:
                time.sleep(0.1)
        assert port is not None, log_path.read_text()
        for host in ("127.0.0.1", "localhost"):
            assert requests.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
            ready = requests.get(f"http://{host}:{port}/readyz", timeout=5)
            assert ready.status_code == 503, ready.text
            assert "store" in ready.text
        assert proc.poll() is None, "still waiting, not exited"
        assert "secret" not in log_path.read_text(), "the password is never logged"
    finally:
        proc.kill()
        proc.wait(timeout=10)
