"""`cargo xtask bench --only deploy`: the tutorial's Azure CLI commands against a bare
`easyauth up`, each timed end to end, and Kudu's zip deploy timed from the zip's arrival to
`RuntimeSuccessful` with a warm package cache.

Run by xtask with the e2e virtual environment's python (it reuses tests/e2e/az_e2e.py); prints one
JSON object on stdout. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from az_e2e import GROUP, AzPlatform, Directory, copy_app  # noqa: E402

FRONT = "bench-front"
BACK = "bench-back"


def env_of(platform: AzPlatform) -> dict[str, str]:
    """The environment `eval "$(easyauth env)"` gives a shell, parsed once (so the timings below
    are az's own, without bash or the easyauth env step)."""
    out = subprocess.run([platform.binary, "env", "--data-dir", str(platform.data_dir)], check=True,
                         capture_output=True, text=True, env=platform.az_env()).stdout
    env = platform.az_env()
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def timed(env: dict[str, str], args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    r = subprocess.run(args, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` exited {r.returncode}\n{r.stderr[-3000:]}")
    return took


def zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and rel.parts[0] not in ("node_modules", ".azure"):
                z.write(path, rel.as_posix())
    return buf.getvalue()


def zip_deploy(scm: str, auth: tuple[str, str], body: bytes, ca: str) -> dict:
    """POST the zip, poll /api/deployments/latest every 20 ms; wall time to a final state."""
    import requests

    s = requests.Session()
    s.verify = ca
    s.auth = auth
    start = time.perf_counter()
    r = s.post(f"{scm}/api/zipdeploy?isAsync=true", data=body, timeout=60)
    if r.status_code not in (200, 202):
        raise SystemExit(f"zipdeploy answered {r.status_code}: {r.text[:500]}")
    while True:
        d = s.get(f"{scm}/api/deployments/latest", timeout=30).json()
        if d.get("complete"):
            took = time.perf_counter() - start
            break
        if time.perf_counter() - start > 300:
            raise SystemExit(f"deployment did not finish: {d}")
        time.sleep(0.02)
    if d.get("status") != 4:
        raise SystemExit(f"deployment failed: {d}")
    return {"wall_s": took}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--deploys", type=int, default=5)
    args = ap.parse_args()
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(k, None)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    directory = Directory.generate()
    platform = AzPlatform(args.binary, Path(tempfile.mkdtemp(dir=work)), "bench-deploy", directory)
    platform.start()
    try:
        apps = work / "apps"
        front = copy_app("frontend", apps)
        back = copy_app("backend", apps)
        env = env_of(platform)
        startup = [timed(env, [platform.az_path, "account", "show", "--output", "none"], work) for _ in range(3)]
        commands: list[tuple[str, float]] = []

        def run(label: str, argv: list[str], cwd: Path = work) -> None:
            commands.append((label, timed(env, [platform.az_path, *argv], cwd)))

        up = ["webapp", "up", "--resource-group", GROUP, "--plan", "myPlan", "--sku", "FREE",
              "--location", "West Europe", "--output", "none"]
        run("az webapp up (front end, Linux, NODE:20-lts; first app: creates group and plan)",
            up + ["--name", FRONT, "--os-type", "Linux", "--runtime", "NODE:20-lts"], front)
        run("az webapp up (back end, same plan)",
            up + ["--name", BACK, "--os-type", "Linux", "--runtime", "NODE:20-lts"], back)
        info = platform.reread()
        run("az webapp config appsettings set --settings BACKEND_URL=...",
            ["webapp", "config", "appsettings", "set", "-g", GROUP, "-n", FRONT, "--settings",
             f"BACKEND_URL={info['apps'][BACK]['url']}", "--output", "none"])
        run("az extension add --name authV2", ["extension", "add", "--name", "authV2"])
        run("az webapp auth show", ["webapp", "auth", "show", "-g", GROUP, "-n", FRONT, "--output", "none"])
        body = {"platform": {"enabled": True},
                "globalValidation": {"requireAuthentication": True,
                                     "unauthenticatedClientAction": "RedirectToLoginPage"},
                "identityProviders": {"azureActiveDirectory": {"enabled": True, "registration": {
                    "clientId": directory.frontend.app_id, "openIdIssuer": info["issuer"]}}}}
        run("az webapp auth set --body ...",
            ["webapp", "auth", "set", "-g", GROUP, "-n", FRONT, "--body", json.dumps(body), "--output", "none"])
        run("az webapp show", ["webapp", "show", "-g", GROUP, "-n", FRONT, "--output", "none"])
        run("az webapp restart", ["webapp", "restart", "-g", GROUP, "-n", FRONT])

        creds = json.loads(subprocess.run(
            [platform.az_path, "webapp", "deployment", "list-publishing-credentials", "-g", GROUP, "-n", FRONT,
             "--output", "json"], env=env, check=True, capture_output=True, text=True).stdout)
        auth = (creds["publishingUserName"], creds["publishingPassword"])
        scm = platform.reread()["apps"][FRONT]["scm_url"]
        body_zip = zip_folder(front)
        deploys = [zip_deploy(scm, auth, body_zip, platform.ca_file)["wall_s"] for _ in range(args.deploys)]
        print(json.dumps({
            "az_startup_s": startup,
            "commands": [{"label": label, "s": s} for label, s in commands],
            "zip_bytes": len(body_zip),
            "deploys_s": deploys,
            "deploy_median_s": statistics.median(deploys),
        }))
    finally:
        platform.stop(check=False)


if __name__ == "__main__":
    main()
