"""Helpers for the `easyauth up` acceptance tests (test_up_*.py).

- `PlatformProcess`: `easyauth up --data-dir D --port 0 --idp-port 0 [--site F]`, waits for
  `<data-dir>/platform.json` (and the `ready` line), keeps the output in
  `target/test-artifacts/up-<n>-<name>.log`, runs the az-style `easyauth webapp ...` commands
  (`webapp(...)` -> parsed JSON), finds each app's processes (children of `up` whose environment
  names the app: `WEBSITE_SITE_NAME`), and stops with SIGTERM (exit within 10 s, platform.json
  removed, no app process left behind).
- `run_browser`: node/browser_tutorial.mjs (headless Chromium through playwright-core).
- `sign_in` + `AppBrowser`: the requests-based browser of proxy_e2e.py, for pages read as JSON.

Everything that talks to the platform's identity provider is told the platform's own CA
(`ca_file` in platform.json) explicitly: these machines set REQUESTS_CA_BUNDLE globally, and the
session's conftest points it at another CA.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from easyauth_e2e import ARTIFACTS, ROOT, describe
from proxy_e2e import BROWSER_UA, REDIRECTS, ProxyBrowser, drive_provider

E2E = Path(__file__).resolve().parent
BROWSER_SCRIPT = E2E / "node" / "browser_tutorial.mjs"
EXPRESS_SITE = ROOT / "examples" / "express-site"
EXPRESS_APP = EXPRESS_SITE / "app.mjs"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
AAD = "azureActiveDirectory"


def up_unavailable_reason(binary: str) -> str | None:
    """Why `easyauth up` cannot be tested with this build (None when it can)."""
    try:
        r = subprocess.run([binary, "up", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`easyauth up --help` could not run: {e}"
    text = r.stdout + r.stderr
    if r.returncode != 0:
        return f"`easyauth up --help` exited {r.returncode}: {text.strip()[:200]}"
    missing = [flag for flag in ("--site", "--data-dir", "--port", "--idp-port") if flag not in text]
    if missing:
        return f"`easyauth up` in this build has no {', '.join(missing)} (not implemented yet)"
    return None


def ca_env(ca_file: str | Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"):
        env[k] = str(ca_file)
    return env


# --------------------------------------------------------------------------------------------
# /proc: the processes `up` runs


def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ... ; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if fields and fields[0] != "Z":
            out.setdefault(int(fields[1]), []).append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2:].split()[:1] != ["Z"]


def proc_env(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def proc_cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


# --------------------------------------------------------------------------------------------
# easyauth up


class PlatformProcess:
    _counter = 0

    def __init__(self, binary: str, workdir: Path, name: str, site: Path | None = None,
                 extra_args: list[str] | None = None):
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.site = site
        self.data_dir = workdir / "data"
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        PlatformProcess._counter += 1
        self.log_path = ARTIFACTS / f"up-{PlatformProcess._counter}-{name}.log"
        self.webapp_log = ARTIFACTS / f"up-{PlatformProcess._counter}-{name}-webapp.log"

    @property
    def platform_json(self) -> Path:
        return self.data_dir / "platform.json"

    def command(self) -> list[str]:
        cmd = [self.binary, "up", "--data-dir", str(self.data_dir), "--port", "0", "--idp-port", "0",
               "--arm-port", "0", "--scm-port", "0", "--portal-port", "0"]
        if self.site is not None:
            cmd += ["--site", str(self.site)]
        return cmd + self.extra_args

    def start(self, timeout: float = START_TIMEOUT) -> "PlatformProcess":
        assert self.proc is None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        log.write(("$ " + " ".join(self.command()) + "\n").encode())
        log.flush()
        env = dict(os.environ)
        # as a developer would run it: `up` trusts its own CA without being told (the session's
        # conftest points these at another identity provider's CA)
        for k in ("EASYAUTH_LOG", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                  "NODE_EXTRA_CA_CERTS"):
            env.pop(k, None)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, cwd=str(self.workdir))
        log.close()
        deadline = time.monotonic() + timeout
        last = "platform.json not written yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"`easyauth up` exited with {code} during start-up\n{self.log_tail(60)}")
            if self.platform_json.is_file():
                try:
                    self.info = json.loads(self.platform_json.read_text())
                except ValueError as e:  # being written
                    last = f"platform.json not valid JSON yet: {e}"
                else:
                    if "ready" in self.log_text():
                        return self
                    last = "platform.json written but no `ready` line printed"
            time.sleep(0.1)
        self.stop(check=False)
        raise RuntimeError(f"`easyauth up` not ready after {timeout:.0f}s ({last})\n{self.log_tail(60)}")

    # -- what platform.json says

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    @property
    def ca_file(self) -> str:
        return self.info["ca_file"]

    @property
    def idp_url(self) -> str:
        return self.info["idp_url"].rstrip("/")

    def app(self, name: str) -> dict[str, Any]:
        return self.info["apps"][name]

    def url(self, name: str, path: str = "") -> str:
        return self.app(name)["url"].rstrip("/") + path

    def client_id(self, name: str) -> str:
        return self.app(name)["client_id"]

    @property
    def user(self) -> str:
        return self.info["demo_user"]["username"]

    @property
    def password(self) -> str:
        return self.info["demo_user"]["password"]

    def env(self) -> dict[str, str]:
        return ca_env(self.ca_file)

    def reread(self) -> dict[str, Any]:
        return json.loads(self.platform_json.read_text())

    # -- output

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()
        return "\n".join([f"--- last lines of {self.log_path} ---", *text[-lines:]])

    def assert_running(self) -> None:
        assert self.proc is not None, "`easyauth up` is not running"
        code = self.proc.poll()
        assert code is None, f"`easyauth up` exited with {code}\n{self.log_tail()}"

    # -- az-style commands

    def webapp_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.binary, "webapp", *args, "--data-dir", str(self.data_dir)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.env())
        with open(self.webapp_log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n-> exit {r.returncode}\n{r.stdout}{r.stderr}\n")
        if check and r.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd[1:])}` exited {r.returncode}\nstdout: {r.stdout}\n"
                                 f"stderr: {r.stderr}")
        return r

    def webapp(self, *args: str) -> Any:
        """Runs `easyauth webapp ARGS --data-dir D`; the parsed JSON it printed (None if nothing)."""
        r = self.webapp_run(*args)
        out = r.stdout.strip()
        if not out:
            return None
        try:
            return json.loads(out)
        except ValueError as e:
            raise AssertionError(f"`easyauth webapp {' '.join(args)}` did not print JSON ({e}):\n{out[:2000]}")

    def auth_show(self, app: str) -> dict[str, Any]:
        res = self.webapp("auth", "show", "--name", app)
        assert isinstance(res, dict) and isinstance(res.get("properties"), dict), \
            f"`webapp auth show --name {app}` is not an authsettingsV2 resource: {res}"
        return res

    def auth_set(self, app: str, resource: dict[str, Any], *, inline: bool = False) -> Any:
        """`webapp auth set --name APP --body @FILE` (or the JSON itself with inline=True, as the
        tutorial passes `--body "$authSettings"`); `resource` is the whole resource or just its
        properties."""
        if inline:
            return self.webapp("auth", "set", "--name", app, "--body", json.dumps(resource))
        body = self.workdir / f"auth-{app}-{time.monotonic_ns()}.json"
        body.write_text(json.dumps(resource, indent=2))
        return self.webapp("auth", "set", "--name", app, "--body", f"@{body}")

    def appsettings_list(self, app: str) -> list[dict[str, Any]]:
        res = self.webapp("config", "appsettings", "list", "--name", app)
        assert isinstance(res, list), f"appsettings list is not a list: {res}"
        return res

    def appsettings_set(self, app: str, **settings: str) -> Any:
        return self.webapp("config", "appsettings", "set", "--name", app, "--settings",
                           *[f"{k}={v}" for k, v in settings.items()])

    # -- the apps' processes

    def app_pids(self) -> dict[str, set[int]]:
        """Live descendants of `up` per app, by WEBSITE_SITE_NAME in their environment (or the
        `easyauth sample NAME` command line)."""
        assert self.proc is not None
        out: dict[str, set[int]] = {}
        for pid in descendants(self.proc.pid):
            name = proc_env(pid).get("WEBSITE_SITE_NAME")
            if not name:  # the tutorial's apps: `easyauth sample frontend|backend`
                argv = proc_cmdline(pid)
                if len(argv) >= 3 and argv[1] == "sample":
                    name = argv[2]
            if name:
                out.setdefault(name, set()).add(pid)
        return out

    # -- stop

    def stop(self, check: bool = True) -> None:
        """SIGTERM; `up` must exit within STOP_TIMEOUT, remove platform.json and leave no app
        process behind (with check=True these are assertions)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is not None:
            if check:
                raise AssertionError(f"`easyauth up` had already exited ({proc.returncode})\n{self.log_tail()}")
            return
        family = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        problems = []
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"`easyauth up` did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM")
            proc.kill()
            proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in family):
            time.sleep(0.05)
        left = [p for p in family if alive(p)]
        if left:
            problems.append("app processes left running after `up` exited: "
                            + ", ".join(f"{p} {' '.join(proc_cmdline(p))[:120]}" for p in left))
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if self.platform_json.exists():
            problems.append(f"{self.platform_json} still exists after `up` exited")
        if check and problems:
            raise AssertionError("\n".join(problems) + "\n" + self.log_tail())


# --------------------------------------------------------------------------------------------
# Auth settings: edit one path of an authsettingsV2 resource


def aad(resource: dict[str, Any]) -> dict[str, Any]:
    return resource["properties"]["identityProviders"][AAD]


def with_allowed_applications(resource: dict[str, Any], apps: list[str]) -> dict[str, Any]:
    r = copy.deepcopy(resource)
    aad(r).setdefault("validation", {}).setdefault("defaultAuthorizationPolicy", {})["allowedApplications"] = apps
    return r


def with_login_parameters(resource: dict[str, Any], params: list[str]) -> dict[str, Any]:
    r = copy.deepcopy(resource)
    aad(r).setdefault("login", {})["loginParameters"] = params
    return r


# --------------------------------------------------------------------------------------------
# Chromium


def chromium_unavailable_reason() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (`cargo xtask test` installs the Debian package chromium)"
    if not (E2E / "node_modules" / "playwright-core").is_dir():
        return "tests/e2e/node_modules/playwright-core is missing (run `npm ci` in tests/e2e)"
    return None


_browser_runs = 0


def run_browser(platform: PlatformProcess, scenario: str, shots: Path, *,
                frontend: str = "frontend", display_name: str | None = None,
                timeout: float = 105.0) -> dict[str, Any]:
    """Runs node/browser_tutorial.mjs; returns its JSON result (whatever `ok` says)."""
    global _browser_runs
    _browser_runs += 1
    shots.mkdir(parents=True, exist_ok=True)
    cmd = ["node", str(BROWSER_SCRIPT), "--scenario", scenario, "--frontend", platform.url(frontend),
           "--user", platform.user, "--password", platform.password,
           "--screenshot-dir", str(shots), "--idp", platform.idp_url, "--ca-file", platform.ca_file]
    if display_name:
        cmd += ["--display-name", display_name]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(E2E),
                       env=platform.env())
    log = ARTIFACTS / f"browser-{_browser_runs}-{scenario}.log"
    printable = [a if a != platform.password else "<password>" for a in cmd]
    log.write_text(f"$ {' '.join(printable)}\n-> exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}\n")
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"browser_tutorial.mjs printed no JSON (exit {r.returncode}); see {log}\n"
                             f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["exit_code"] = r.returncode
    result["log"] = str(log)
    return result


def explain(result: dict[str, Any]) -> str:
    """A failed browser run, for assertion messages."""
    keys = ("ok", "step", "error", "url", "status", "reason", "advice", "steps", "navigations",
            "page_text", "screenshots", "log")
    return json.dumps({k: result.get(k) for k in keys if k in result}, indent=2)


# --------------------------------------------------------------------------------------------
# The requests-based browser


@dataclass
class PlatformUser:
    upn: str
    password: str


class AppBrowser(ProxyBrowser):
    """ProxyBrowser trusting the platform's CA."""

    def __init__(self, platform: PlatformProcess):
        super().__init__(platform.ca_file)
        self.platform = platform


def sign_in(platform: PlatformProcess, app: str, path: str = "/",
            browser: AppBrowser | None = None) -> tuple[AppBrowser, requests.Response]:
    """A browser signs the demo user in to `app` starting at `path` (through the IdP's sign-in and
    consent pages); returns the browser and the app's answer to `path` afterwards."""
    browser = browser or AppBrowser(platform)
    app_origin = urlsplit(platform.url(app)).netloc
    idp_origin = urlsplit(platform.idp_url).netloc
    resp = browser.get(platform.url(app, path))
    for _ in range(5):
        assert resp.status_code in REDIRECTS, \
            f"expected a redirect towards the sign-in:\n{describe(resp)}\n{browser.trace_text()}"
        loc = urljoin(resp.url, resp.headers["Location"])
        if urlsplit(loc).netloc == idp_origin:
            break
        assert urlsplit(loc).netloc == app_origin, f"redirect to an unexpected place: {loc}"
        resp = browser.get(loc)
    else:
        raise AssertionError(f"no redirect to the identity provider:\n{browser.trace_text()}")
    user = PlatformUser(platform.user, platform.password)
    cb = drive_provider(browser, browser.get(loc), platform.url(app, "/.auth/login/aad/callback"),
                        user=user)  # type: ignore[arg-type]
    assert cb.status_code in REDIRECTS, \
        f"the callback did not redirect:\n{describe(cb)}\n{browser.trace_text()}\n{platform.log_tail()}"
    final = urljoin(cb.url, cb.headers["Location"])
    assert urlsplit(final).netloc == app_origin, f"the callback left the app: {final}"
    page = browser.get(final)
    return browser, page


def json_of(resp: requests.Response, context: str = "") -> Any:
    assert resp.status_code == 200 and "json" in resp.headers.get("Content-Type", ""), \
        f"{context}: expected the app's JSON:\n{describe(resp)}"
    return resp.json()


__all__ = [
    "AAD", "BROWSER_UA", "EXPRESS_APP", "EXPRESS_SITE", "ROOT", "AppBrowser", "PlatformProcess", "aad", "ca_env",
    "chromium_unavailable_reason", "explain", "json_of", "run_browser", "sign_in",
    "up_unavailable_reason", "with_allowed_applications", "with_login_parameters",
]
