"""The real Azure CLI against `easyauth up` (test_az_*.py).

- `az_binary()`: the pinned `azure-cli` from PyPI that `cargo xtask test` installs once and keeps
  (`$EASYAUTH_AZ`, else ~/.cache/easyauth/azure-cli-<version>/bin/az).
- `AzPlatform`: a bare `easyauth up` with a directory file of the test's own (a tenant, alice, and
  the front end's and back end's app registrations with known secrets), and helpers to run
  `easyauth az ...` (the wrapper) or a bash script in the environment `easyauth env` prints (plain
  `az`, as a person types the tutorial's commands).

Every command, its exit status and output go to target/test-artifacts/az-<n>.log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from easyauth_e2e import ARTIFACTS, ROOT, free_port
from up_e2e import PlatformProcess

AZ_VERSION = "2.91.0"
TUTORIAL_APPS = ROOT / "examples" / "tutorial-apps"
GROUP = "myAuthResourceGroup"


def az_binary() -> str:
    env = os.environ.get("EASYAUTH_AZ")
    candidate = Path(env) if env else Path.home() / ".cache" / "easyauth" / f"azure-cli-{AZ_VERSION}" / "bin" / "az"
    if not candidate.is_file():
        pytest.fail(f"the Azure CLI is not installed at {candidate} (`cargo xtask test` installs azure-cli=="
                    f"{AZ_VERSION} from PyPI there; EASYAUTH_AZ overrides)")
    return str(candidate)


def guid() -> str:
    return str(uuid.uuid4())


@dataclass
class Registration:
    name: str
    app_id: str
    secret: str
    scope_id: str = ""


@dataclass
class Directory:
    tenant_id: str
    user: str
    password: str
    frontend: Registration
    backend: Registration

    @classmethod
    def generate(cls) -> "Directory":
        secret = lambda: "s~" + uuid.uuid4().hex + uuid.uuid4().hex[:8]  # noqa: E731
        return cls(
            tenant_id=guid(), user="alice@contoso.onmicrosoft.com", password="Alice-" + uuid.uuid4().hex[:12],
            frontend=Registration("tutorial-frontend", guid(), secret()),
            backend=Registration("tutorial-backend", guid(), secret(), scope_id=guid()),
        )

    def json(self) -> dict[str, Any]:
        b, f = self.backend, self.frontend
        return {
            "tenant": {"id": self.tenant_id, "domain": "contoso.onmicrosoft.com", "displayName": "Contoso (az tutorial)"},
            "users": [{"id": guid(), "userPrincipalName": self.user, "displayName": "Alice Smith",
                       "givenName": "Alice", "surname": "Smith", "mail": self.user, "password": self.password}],
            "applications": [
                # As "Add identity provider" in the portal creates them (the portal issue makes
                # them through Graph; here they come from the directory file).
                {"appId": b.app_id, "displayName": b.name, "identifierUris": [f"api://{b.app_id}"],
                 "web": {"redirectUris": [], "implicitGrantSettings": {"enableIdTokenIssuance": True}},
                 "api": {"oauth2PermissionScopes": [{"id": b.scope_id, "value": "user_impersonation", "type": "User",
                                                     "userConsentDisplayName": f"Access {b.name}"}]},
                 "passwordCredentials": [{"secretText": b.secret}]},
                {"appId": f.app_id, "displayName": f.name, "identifierUris": [f"api://{f.app_id}"],
                 "web": {"redirectUris": [], "implicitGrantSettings": {"enableIdTokenIssuance": True}},
                 # The tutorial's step: API permissions -> My APIs -> the back end -> user_impersonation.
                 "requiredResourceAccess": [{"resourceAppId": b.app_id,
                                             "resourceAccess": [{"id": b.scope_id, "type": "Scope"}]}],
                 "passwordCredentials": [{"secretText": f.secret}]},
            ],
        }


_runs = 0


class AzPlatform(PlatformProcess):
    """A bare `easyauth up` (no apps) with the test's directory, and the Azure CLI pointed at it."""

    def __init__(self, binary: str, workdir: Path, name: str, directory: Directory):
        workdir.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        path = workdir / "directory.json"
        path.write_text(json.dumps(directory.json(), indent=2))
        super().__init__(binary, workdir, name, extra_args=["--bare", "--directory", str(path)])
        self.az_path = az_binary()
        # Fixed ports, as a person has them (the defaults): a restart keeps every URL, and the
        # issuer stored in the apps' auth settings stays right.
        self.ports = {"--port": free_port(), "--scm-port": free_port(), "--idp-port": free_port(),
                      "--arm-port": free_port(), "--portal-port": free_port()}

    def command(self) -> list[str]:
        cmd = [self.binary, "up", "--data-dir", str(self.data_dir)]
        for flag, port in self.ports.items():
            cmd += [flag, str(port)]
        return cmd + self.extra_args

    @property
    def user(self) -> str:
        return self.directory.user

    @property
    def password(self) -> str:
        return self.directory.password

    def az_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "AZURE_CONFIG_DIR",
                  "NODE_EXTRA_CA_CERTS", "EASYAUTH_LOG"):
            env.pop(k, None)
        env["EASYAUTH_AZ"] = self.az_path
        env["PATH"] = f"{Path(self.az_path).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _record(self, what: str, r: subprocess.CompletedProcess) -> None:
        global _runs
        _runs += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"az-{_runs:02d}.log").write_text(
            f"$ {what}\n-> exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}\n")

    def az(self, *args: str, cwd: Path | None = None, check: bool = True,
           timeout: float = 600) -> subprocess.CompletedProcess:
        """`easyauth az --data-dir D ARGS` (the wrapper)."""
        cmd = [self.binary, "az", "--data-dir", str(self.data_dir), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(cwd or self.workdir),
                           env=self.az_env())
        self._record(" ".join(["easyauth az", *args]), r)
        if check and r.returncode != 0:
            raise AssertionError(f"`easyauth az {' '.join(args)}` exited {r.returncode}\nstderr: {r.stderr[-4000:]}\n"
                                 f"stdout: {r.stdout[-2000:]}\n{self.log_tail()}")
        return r

    def az_json(self, *args: str, cwd: Path | None = None) -> Any:
        out = self.az(*args, "--output", "json", cwd=cwd).stdout.strip()
        return json.loads(out) if out else None

    def shell(self, script: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """A bash script where `eval "$(easyauth env)"` made plain `az` talk to the platform."""
        full = f'set -euo pipefail\neval "$({self.binary} env --data-dir {self.data_dir})"\n{script}'
        r = subprocess.run(["bash", "-c", full], capture_output=True, text=True, timeout=timeout,
                           cwd=str(cwd or self.workdir), env=self.az_env())
        self._record(f"bash -c <<EOF\n{script}\nEOF", r)
        if r.returncode != 0:
            raise AssertionError(f"script exited {r.returncode}:\n{script}\nstderr: {r.stderr[-4000:]}\n"
                                 f"stdout: {r.stdout[-2000:]}\n{self.log_tail()}")
        return r


def copy_app(name: str, dest: Path) -> Path:
    """A fresh copy of one of examples/tutorial-apps (az webapp up writes .azure/config into it)."""
    target = dest / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(TUTORIAL_APPS / name, target, ignore=shutil.ignore_patterns("node_modules", ".azure", "__pycache__"))
    return target


def jq_path() -> str:
    jq = shutil.which("jq")
    if not jq:
        pytest.fail("jq is not installed (`cargo xtask test` installs the Debian package)")
    return jq
