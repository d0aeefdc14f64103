"""The real Azure CLI (`az`, 2.91) signing in against the identity provider. `az login` normally
lists subscriptions from Azure Resource Manager afterwards; `--skip-subscription-discovery` (with
`--tenant`) makes it create a tenant-level account instead, and `az cloud register
--skip-endpoint-discovery` registers a cloud without asking ARM for its metadata, so these tests
need the identity provider alone. (Tests of `az` against the local ARM endpoint belong with it.)

Skipped when az is not installed (EASYAUTH_AZ, or ~/.cache/easyauth/azure-cli-2.91.0/bin/az)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from easyauth_e2e import ARTIFACTS, GRAPH_RESOURCE, Browser, IdpServer, TokenValidator, World, device_login

AZ = Path(os.environ.get("EASYAUTH_AZ") or Path.home() / ".cache/easyauth/azure-cli-2.91.0/bin/az")
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM = "https://management.core.windows.net/"

pytestmark = pytest.mark.skipif(not AZ.is_file(), reason=f"the Azure CLI is not installed at {AZ}")


class Az:
    """`az` with its own config dir, trusting the identity provider's CA, asking no real Azure."""

    def __init__(self, idp: IdpServer, config_dir: Path):
        self.idp = idp
        self.env = dict(os.environ)
        self.env.update({
            "AZURE_CONFIG_DIR": str(config_dir),
            # trust_ca() pointed this at a bundle with every CA of this session
            "REQUESTS_CA_BUNDLE": os.environ.get("REQUESTS_CA_BUNDLE", str(idp.ca_path)),
            "AZURE_CORE_INSTANCE_DISCOVERY": "false",
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_LOGIN_EXPERIENCE_V2": "false",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
        })
        self.log = ARTIFACTS / "az.log"

    def _record(self, args: list[str], proc_out: str, proc_err: str, code: int) -> None:
        # The transcript goes to the artifacts: never the secret after -p, nor tokens.
        shown = ["***" if i > 0 and args[i - 1] in ("-p", "--password") else a for i, a in enumerate(args)]
        proc_out = re.sub(r'("accessToken": ")[^"]+', r"\1***", proc_out)
        with open(self.log, "a") as f:
            f.write(f"$ az {' '.join(shown)}\n(exit {code})\n{proc_out}\n{proc_err}\n")

    def run(self, *args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
        p = subprocess.run([str(AZ), *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        self._record(list(args), p.stdout, p.stderr, p.returncode)
        if check:
            assert p.returncode == 0, f"az {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return p

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def register_cloud(self) -> None:
        self.run("cloud", "register", "--name", "EasyAuthLocal", "--skip-endpoint-discovery",
                 "--endpoint-active-directory", self.idp.base,
                 # never called: login skips subscription discovery
                 "--endpoint-resource-manager", "https://127.0.0.1:9/",
                 "--endpoint-active-directory-resource-id", ARM,
                 "--endpoint-microsoft-graph-resource-id", "https://graph.microsoft.com/")
        self.run("cloud", "set", "--name", "EasyAuthLocal")


@pytest.fixture
def az(idp: IdpServer, tmp_path: Path) -> Az:
    a = Az(idp, tmp_path / "azure")
    a.register_cloud()
    return a


def test_az_login_service_principal(az: Az, idp: IdpServer, world: World, tokens: TokenValidator):
    accounts = az.json("login", "--service-principal", "-u", world.daemon.app_id,
                       "-p", world.daemon.secret, "--tenant", idp.tenant_id,
                       "--skip-subscription-discovery")
    assert accounts and accounts[0]["tenantId"] == idp.tenant_id, accounts
    assert accounts[0]["user"] == {"name": world.daemon.app_id, "type": "servicePrincipal"}, accounts

    token = az.json("account", "get-access-token", "--tenant", idp.tenant_id)
    c = tokens.access_v1(token["accessToken"], ARM)
    assert c["appid"] == world.daemon.app_id and c["idtyp"] == "app", c
    assert token["tenant"] == idp.tenant_id, token

    wrong = az.run("login", "--service-principal", "-u", world.daemon.app_id, "-p", "not-the-secret",
                   "--tenant", idp.tenant_id, "--skip-subscription-discovery", check=False)
    assert wrong.returncode != 0, wrong.stdout
    assert "AADSTS7000215" in wrong.stderr, wrong.stderr


def test_az_login_use_device_code(az: Az, idp: IdpServer, world: World, tokens: TokenValidator):
    proc = subprocess.Popen([str(AZ), "login", "--use-device-code", "--tenant", idp.tenant_id,
                             "--skip-subscription-discovery", "-o", "json"],
                            env=az.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    found = threading.Event()
    message: dict[str, str] = {}

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr.append(line)
            m = re.search(r"open the page (\S+) and enter the code (\S+) to authenticate", line)
            if m:
                message.update(uri=m.group(1), code=m.group(2))
                found.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert found.wait(60), f"az printed no device code message:\n{''.join(stderr)}"
        assert message["uri"] == f"{idp.base}/devicelogin", message
        pages = device_login(Browser(idp), message["uri"], message["code"], world.alice)
        assert pages == ["code", "confirm", "login", "done"], pages
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    az._record(["login", "--use-device-code"], out, "".join(stderr), proc.returncode)
    assert proc.returncode == 0, "".join(stderr)
    accounts = json.loads(out)
    assert accounts[0]["user"] == {"name": world.alice.upn, "type": "user"}, accounts
    assert accounts[0]["tenantId"] == idp.tenant_id, accounts

    arm = az.json("account", "get-access-token", "--tenant", idp.tenant_id)
    c = tokens.access_v1(arm["accessToken"], ARM)
    assert c["appid"] == AZURE_CLI and c["oid"] == world.alice.id and c["scp"] == "user_impersonation", c

    # Microsoft Graph from the same sign-in's refresh token (no second sign-in).
    graph = az.json("account", "get-access-token", "--tenant", idp.tenant_id, "--resource-type", "ms-graph")
    g = tokens.access_v1(graph["accessToken"], GRAPH_RESOURCE)
    assert g["appid"] == AZURE_CLI and "User.Read" in g["scp"].split(" "), g

    signed_out = az.run("logout", "--username", world.alice.upn, check=False)
    assert signed_out.returncode == 0, signed_out.stderr
