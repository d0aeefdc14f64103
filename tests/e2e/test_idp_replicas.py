"""Two `easyauth idp` replicas on one private PostgreSQL, behind nginx (round robin over https).

MSAL Python flows alternate between the replicas; one refresh token used on both at once has one
winner; a signing-key rotation while tokens are issued leaves every token verifiable against the
published JWKS; PostgreSQL restarted under load gives Entra-shaped 503s and then service again,
without restarting the replicas.
"""
from __future__ import annotations

import datetime
import glob
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import binary, interactive
from easyauth_e2e import (
    ACCESS_TOKEN_LIFETIME,
    ARTIFACTS,
    IdpServer,
    TokenValidator,
    World,
    describe,
    free_port,
    require_token,
    token_error,
)

GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
# Short enough that the rotation test sees one within its run; the replicas re-read every second,
# so a new key is published for two seconds before it signs.
KEY_ROTATION_SECONDS = 12
REPLICA_REFRESH_SECONDS = 1
OUTAGE_SECONDS = 9


# --------------------------------------------------------------------------------------------
# PostgreSQL and nginx


def _pg_bin() -> Path:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda p: int(Path(p).parent.name.split(".")[0]))
    for d in reversed(dirs):
        if (Path(d) / "initdb").is_file() and (Path(d) / "postgres").is_file():
            return Path(d)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    pytest.skip("PostgreSQL is not installed (Debian package `postgresql`; cargo xtask test installs it)")


class Postgres:
    """A private cluster in a temporary folder on a free loopback port (never the machine's own
    instance); as the `postgres` user when the tests run as root, which PostgreSQL requires."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="easyauth-e2e-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = ARTIFACTS / "replicas-postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            subprocess.run(["chown", "-R", "postgres:", str(self.dir)], check=True)
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale", "C")

    def _cmd(self, program: str, *args: str) -> list[str]:
        prefix = ["setpriv", "--pdeathsig", "KILL"]
        if self.as_root:
            prefix += ["--reuid=postgres", "--regid=postgres", "--init-groups"]
        return [*prefix, "--", str(self.bin / program), *args]

    def _run(self, program: str, *args: str) -> None:
        env = dict(os.environ, HOME=str(self.dir))
        done = subprocess.run(self._cmd(program, *args), cwd=self.dir, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{program} failed: {done.stdout}{done.stderr}"

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert self.proc is None
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self._cmd("postgres", "-D", str(self.dir / "data"), "-k", str(self.dir),
                      "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                      "-c", "fsync=off"),
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, HOME=str(self.dir)))
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"postgres exited:\n{self.log_path.read_text()}"
            ready = subprocess.run(self._cmd("psql", "-h", "127.0.0.1", "-p", str(self.port),
                                             "-U", "postgres", "-c", "SELECT 1"),
                                   cwd=self.dir, capture_output=True,
                                   env=dict(os.environ, HOME=str(self.dir)))
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"postgres did not start:\n{self.log_path.read_text()}")

    def create_database(self, name: str) -> str:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are cut, the data is kept."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def issue_cert(ca_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and localhost from the identity provider's own CA."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nginx")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            # Every identity provider of the session has a CA of the same name: the key
            # identifier is what picks the right one from the trust bundle.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = out_dir / "nginx.pem", out_dir / "nginx-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Nginx:
    """nginx terminating TLS on a free loopback port and proxying each request, round robin,
    to the replicas over https (verified against the same CA)."""

    def __init__(self, workdir: Path, port: int, upstreams: list[int], ca: Path) -> None:
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(self.binary).is_file():
            pytest.skip("nginx is not installed (Debian package `nginx-light`; cargo xtask test installs it)")
        self.dir = workdir
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        cert, key = issue_cert(ca.parent, workdir)
        servers = "\n".join(f"    server 127.0.0.1:{p};" for p in upstreams)
        user = "user root root;" if os.geteuid() == 0 else ""
        t = workdir
        (workdir / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
daemon off;
master_process on;
pid {t}/nginx.pid;
error_log {t}/error.log info;
events {{ worker_connections 512; }}
http {{
  access_log {t}/access.log;
  client_body_temp_path {t}/body;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  upstream idp {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass https://idp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_read_timeout 30s;
    }}
  }}
}}
""")
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(t), "-e", str(t / "error.log"), "-c", str(t / "nginx.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"nginx exited:\n{(t / 'error.log').read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not listen:\n{(t / 'error.log').read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.copy(self.dir / "error.log", ARTIFACTS / "replicas-nginx-error.log")


class Replica(IdpServer):
    """`easyauth idp` on its own port, with the balancer's URL as its public URL and the shared
    data dir (the local CA both serve certificates from)."""

    def __init__(self, world: World, workdir: Path, data_dir: Path, public_url: str, store: str):
        super().__init__(binary(), world, workdir, access_token_lifetime=ACCESS_TOKEN_LIFETIME,
                         extra_args=["--store", store,
                                     "--replica-refresh", str(REPLICA_REFRESH_SECONDS),
                                     "--key-rotation", str(KEY_ROTATION_SECONDS)])
        self.data_dir = data_dir
        self.public_url = public_url

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--public-url") + 1] = self.public_url
        return cmd

    def served(self, fragment: str) -> int:
        """How many request log lines name `fragment` in their path."""
        assert self.log_path is not None
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines()
                   if "path=" in line and fragment in line)


class Front(IdpServer):
    """What clients see: the balancer's address (never started itself)."""

    def __init__(self, world: World, workdir: Path, data_dir: Path, port: int):
        super().__init__(binary(), world, workdir)
        self.data_dir = data_dir
        self.port = port


class Cluster:
    def __init__(self, world: World, root: Path) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.pg = Postgres()
        self.pg.start()
        self.store_url = self.pg.create_database("idp")
        self.lb_port = free_port()
        data = root / "shared-data"
        data.mkdir()
        public = f"https://127.0.0.1:{self.lb_port}"
        self.a = Replica(world, root / "a", data, public, self.store_url)
        self.b = Replica(world, root / "b", data, public, self.store_url)
        self.nginx: Nginx | None = None
        self.front = Front(world, root / "front", data, self.lb_port)
        try:
            # The first creates the CA in the shared data dir; both then migrate one database.
            self.a.start()
            self.b.start()
            self.nginx = Nginx(root / "nginx", self.lb_port, [self.a.port, self.b.port],
                               self.a.ca_path)
        except BaseException:
            self.stop()
            raise
        self.tokens = TokenValidator(self.front)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        self.a.stop()
        self.b.stop()
        self.pg.remove()


@pytest.fixture(scope="module")
def cluster(world: World, tmp_path_factory: pytest.TempPathFactory):
    c = Cluster(world, tmp_path_factory.mktemp("replicas"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(autouse=True)
def _replicas_alive(cluster: Cluster):
    yield
    for r in (cluster.a, cluster.b):
        assert r.proc is not None and r.proc.poll() is None, f"a replica died\n{r.log_tail()}"


# --------------------------------------------------------------------------------------------
# Helpers


def app(front: IdpServer, client) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(client.app_id, client_credential=client.secret,
                                              authority=front.authority, instance_discovery=False)


def client_credentials(base: str, tenant: str, world: World) -> requests.Response:
    return requests.post(f"{base}/{tenant}/oauth2/v2.0/token", timeout=20, data={
        "grant_type": "client_credentials", "client_id": world.daemon.app_id,
        "client_secret": world.daemon.secret, "scope": f"{world.api2.identifier_uri}/.default"})


def refresh(base: str, tenant: str, world: World, rt: str, scope: str) -> requests.Response:
    return requests.post(f"{base}/{tenant}/oauth2/v2.0/token", timeout=20, data={
        "grant_type": "refresh_token", "client_id": world.webapp.app_id,
        "client_secret": world.webapp.secret, "refresh_token": rt,
        "scope": f"{scope} openid profile offline_access"})


def backend_scope(world: World) -> str:
    return f"{world.backend.identifier_uri}/{world.backend.scope_value}"


def sign_in(cluster: Cluster, world: World, scopes: list[str]) -> dict[str, Any]:
    r = interactive(cluster.front, world.webapp, scopes, world.alice)
    result = require_token(r.result)
    cluster.tokens.id_token(result["id_token"], world.webapp.app_id, nonce=r.expected_nonce)
    return result


def jwks_kids(base: str, tenant: str) -> set[str]:
    r = requests.get(f"{base}/{tenant}/discovery/v2.0/keys", timeout=20)
    assert r.status_code == 200, describe(r)
    return {k["kid"] for k in r.json()["keys"]}


# --------------------------------------------------------------------------------------------
# Tests


def test_msal_flows_through_the_balancer_use_both_replicas(cluster: Cluster, world: World):
    front, tokens = cluster.front, cluster.tokens
    before = (cluster.a.served("/oauth2/v2.0/token"), cluster.b.served("/oauth2/v2.0/token"))

    # client credentials: a new MSAL app each time, so nothing comes from MSAL's cache
    for _ in range(4):
        r = require_token(app(front, world.daemon).acquire_token_for_client(
            [f"{world.api2.identifier_uri}/.default"]))
        c = tokens.access_v2(r["access_token"], world.api2.app_id)
        assert c["azp"] == world.daemon.app_id, c

    # auth code (sign-in and consent pages, PKCE) through the balancer, then refresh and OBO
    scope = backend_scope(world)
    flow = interactive(front, world.webapp, [scope], world.alice)
    result = require_token(flow.result)
    tokens.id_token(result["id_token"], world.webapp.app_id, nonce=flow.expected_nonce)
    c = tokens.access_v1(result["access_token"], world.backend.identifier_uri)
    assert c["oid"] == world.alice.id, c
    account = flow.app.get_accounts()[0]
    for _ in range(3):
        refreshed = require_token(flow.app.acquire_token_silent([scope], account, force_refresh=True))
        assert refreshed.get("token_source") in (None, "identity_provider"), refreshed
        c = tokens.access_v1(refreshed["access_token"], world.backend.identifier_uri)
        assert c["oid"] == world.alice.id, c

    obo = require_token(app(front, world.backend).acquire_token_on_behalf_of(
        refreshed["access_token"], [GRAPH_USER_READ]))
    c = tokens.access_v1(obo["access_token"], "https://graph.microsoft.com")
    assert c["appid"] == world.backend.app_id and c["oid"] == world.alice.id, c
    me = requests.get(f"{front.base}/v1.0/me", timeout=20,
                      headers={"Authorization": f"Bearer {obo['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == world.alice.id, describe(me)

    after = (cluster.a.served("/oauth2/v2.0/token"), cluster.b.served("/oauth2/v2.0/token"))
    served = (after[0] - before[0], after[1] - before[1])
    assert served[0] > 0 and served[1] > 0, f"token requests per replica: {served}"


def test_a_sign_in_through_one_replica_is_honoured_by_the_other(cluster: Cluster, world: World):
    """The refresh token from a sign-in (whose pages went through the balancer) works on each
    replica directly: codes, sessions, consent and tokens are shared, not per replica."""
    scope = backend_scope(world)
    rt = sign_in(cluster, world, [scope])["refresh_token"]
    for replica in (cluster.a, cluster.b, cluster.a):
        r = refresh(replica.base, replica.tenant_id, world, rt, scope)
        assert r.status_code == 200, describe(r)
        rt = r.json()["refresh_token"]
        cluster.tokens.access_v1(r.json()["access_token"], world.backend.identifier_uri)


def test_consent_given_through_the_balancer_is_honoured_by_each_replica(cluster: Cluster,
                                                                        world: World):
    """Bob consents (the page is shown: nothing was granted before) on whichever replica nginx
    picks; each replica then honours the grant for his refresh token, within its re-read
    interval."""
    scope = backend_scope(world)
    flow = interactive(cluster.front, world.webapp, [scope], world.bob)
    assert "consent" in flow.sign_in.pages, flow.sign_in.pages
    rt = require_token(flow.result)["refresh_token"]
    for replica in (cluster.a, cluster.b):
        deadline = time.monotonic() + 30
        while True:
            r = refresh(replica.base, replica.tenant_id, world, rt, scope)
            if r.status_code == 200:
                break
            # Not yet re-read on this replica: consent_required, and the token is not spent.
            assert r.status_code == 400 and 65001 in token_error(r)["error_codes"], describe(r)
            assert time.monotonic() < deadline, f"consent never reached {replica.base}"
            time.sleep(0.2)
        rt = r.json()["refresh_token"]
        c = cluster.tokens.access_v1(r.json()["access_token"], world.backend.identifier_uri)
        assert c["oid"] == world.bob.id and c["scp"] == world.backend.scope_value, c


def test_one_refresh_token_on_both_replicas_at_once_has_one_winner(cluster: Cluster, world: World):
    scope = backend_scope(world)
    for round_ in range(3):
        rt = sign_in(cluster, world, [scope])["refresh_token"]
        start = threading.Barrier(2)
        answers: dict[str, requests.Response] = {}

        def use(name: str, replica: Replica) -> None:
            start.wait()
            answers[name] = refresh(replica.base, replica.tenant_id, world, rt, scope)

        threads = [threading.Thread(target=use, args=(n, r))
                   for n, r in (("a", cluster.a), ("b", cluster.b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        codes = sorted(r.status_code for r in answers.values())
        assert codes == [200, 400], {n: describe(r) for n, r in answers.items()}
        loser = next(r for r in answers.values() if r.status_code == 400)
        err = token_error(loser)
        assert err["error"] == "invalid_grant" and 50173 in err["error_codes"], err
        # The documented reuse rule: a second use revokes the whole family, the winner's new
        # refresh token included.
        winner = next(r for r in answers.values() if r.status_code == 200)
        again = refresh(cluster.front.base, cluster.front.tenant_id, world,
                        winner.json()["refresh_token"], scope)
        assert again.status_code == 400 and token_error(again)["error"] == "invalid_grant", \
            f"round {round_}: {describe(again)}"


def test_key_rotation_while_tokens_are_issued(cluster: Cluster, world: World):
    """Tokens are requested through the balancer for longer than a rotation period; each is
    checked against the JWKS both replicas publish right after it was issued."""
    front = cluster.front
    kids_seen: set[str] = set()
    deadline = time.monotonic() + 3 * KEY_ROTATION_SECONDS
    issued = 0
    while time.monotonic() < deadline or len(kids_seen) < 2:
        assert time.monotonic() < deadline + 6 * KEY_ROTATION_SECONDS, \
            f"no rotation seen; kids: {kids_seen}\n{cluster.a.log_tail()}"
        r = client_credentials(front.base, front.tenant_id, world)
        assert r.status_code == 200, describe(r)
        token = r.json()["access_token"]
        kid = jwt.get_unverified_header(token)["kid"]
        if kid not in kids_seen:
            # What a relying party does on an unknown kid: fetch the key set again.
            cluster.tokens.reset_keys()
        kids_seen.add(kid)
        for replica in (cluster.a, cluster.b):
            published = jwks_kids(replica.base, replica.tenant_id)
            assert kid in published, f"{kid} not yet published by a replica: {published}"
        cluster.tokens.access_v2(token, world.api2.app_id)
        issued += 1
        time.sleep(0.2)
    assert len(kids_seen) >= 2 and issued > 0, kids_seen
    # Earlier keys stay published: every kid ever used still verifies.
    assert kids_seen <= jwks_kids(front.base, front.tenant_id)


def test_postgres_restart_under_load(cluster: Cluster, world: World):
    """While PostgreSQL is stopped and started again, requests that need the store answer
    Entra's 503 `temporarily_unavailable` (within the request timeout, never a 500), and the
    same replicas serve again afterwards."""
    front = cluster.front
    scope = backend_scope(world)
    rt = sign_in(cluster, world, [scope])["refresh_token"]
    stop = threading.Event()
    outcomes: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def load() -> None:
        while not stop.is_set():
            for kind, call in (
                ("client_credentials", lambda: client_credentials(front.base, front.tenant_id, world)),
                # The device authorization endpoint writes a record: it needs the store.
                ("devicecode", lambda: requests.post(
                    f"{front.base}/{front.tenant_id}/oauth2/v2.0/devicecode", timeout=20,
                    data={"client_id": world.webapp.app_id, "scope": "openid"})),
            ):
                r = call()
                problem = ""
                if r.status_code != 200:
                    try:
                        err = token_error(r)
                        problem = err["error"]
                        if r.status_code == 503:
                            assert r.headers.get("Retry-After"), describe(r)
                            assert 90033 in err["error_codes"], err
                    except AssertionError as e:
                        problem = f"not Entra-shaped: {e}"
                with lock:
                    outcomes.append((kind, r.status_code, problem))
            time.sleep(0.05)

    workers = [threading.Thread(target=load) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        cluster.pg.stop()
        # Longer than the pool's 5 s acquire timeout, so requests waiting for a connection are
        # answered (503) before the database is back.
        time.sleep(OUTAGE_SECONDS)
        with lock:
            during = len(outcomes)
        cluster.pg.start()
        # Service resumes: wait for a store-backed request to succeed again (bounded by the
        # pool's timeout plus a reconnect).
        deadline = time.monotonic() + 60
        while True:
            r = refresh(front.base, front.tenant_id, world, rt, scope)
            if r.status_code == 200:
                break
            assert r.status_code == 503, describe(r)
            assert time.monotonic() < deadline, "the replicas did not serve again"
            time.sleep(0.5)
        time.sleep(1)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    bad = [o for o in outcomes if o[1] not in (200, 503) or (o[1] == 503 and o[2] != "temporarily_unavailable")]
    assert not bad, f"answers other than 200 or Entra's 503: {bad[:10]}"
    unavailable = [o for o in outcomes if o[1] == 503]
    assert unavailable, f"no request needed the store during the outage ({during} requests)"
    # After the restart both replicas answer store-backed requests again.
    for replica in (cluster.a, cluster.b):
        d = requests.post(f"{replica.base}/{replica.tenant_id}/oauth2/v2.0/devicecode", timeout=20,
                          data={"client_id": world.webapp.app_id, "scope": "openid"})
        assert d.status_code == 200, describe(d)
    # Nothing half-written: the token minted before the outage was rotated once, and its
    # successor works.
    again = refresh(front.base, front.tenant_id, world, r.json()["refresh_token"], scope)
    assert again.status_code == 200, describe(again)
