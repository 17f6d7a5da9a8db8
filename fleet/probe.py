"""The script ``check`` runs on each node with the node's python3 (3.11+: tomllib); prints one JSON object.

It only reads: the client's version from the venv, the config files' modes, the service's version
through the service URL the node's config names, and whether the worker entry point starts.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any


def probe(venv: str, config_path: str, sge_config_path: str) -> dict[str, Any]:
    result: dict[str, Any] = {"hostname": os.uname().nodename}
    try:
        version = subprocess.run(
            [f"{venv}/bin/python", "-c", "import importlib.metadata as m; print(m.version('jobmon'))"],
            capture_output=True, text=True, check=False)
        result["client_version"] = version.stdout.strip() if version.returncode == 0 else None
        result["client_error"] = version.stderr.strip()[-300:]
    except OSError as exc:
        result["client_version"] = None
        result["client_error"] = str(exc)

    modes: dict[str, Any] = {}
    for path in (str(Path(config_path).parent), config_path, sge_config_path):
        try:
            st = os.stat(path)
        except OSError as exc:
            modes[path] = str(exc)
            continue
        modes[path] = [f"{stat.S_IMODE(st.st_mode):04o}", st.st_uid, st.st_gid]
    result["modes"] = modes

    service_url = ""
    try:
        with open(config_path, "rb") as fh:
            service_url = str(tomllib.load(fh).get("client", {}).get("service_url", ""))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        result["service_error"] = f"config: {exc}"
    result["service_url"] = service_url
    if service_url:
        try:
            url = service_url.rstrip("/") + "/api/query/version"
            with urllib.request.urlopen(url, timeout=10) as answer:
                result["server_version"] = json.loads(answer.read())["version"]
        except Exception as exc:
            result["service_error"] = f"{type(exc).__name__}: {exc}"

    # The entry point Grid Engine jobs run: the PATH link, else the venv's script.
    worker = shutil.which("jobmon-worker") or f"{venv}/bin/jobmon-worker"
    result["worker_path"] = os.path.realpath(worker)
    try:
        run = subprocess.run([worker, "--help"], capture_output=True, text=True, timeout=30, check=False)
        result["worker_rc"] = run.returncode
        result["worker_error"] = run.stderr.strip()[-300:]
    except OSError as exc:
        result["worker_rc"] = None
        result["worker_error"] = str(exc)
    return result


if __name__ == "__main__":
    print(json.dumps(probe(*sys.argv[1:4])))
