"""Controller-side helper of the grid_engine_client role (runs with the controller's Python; stdlib only).

    client_wheelhouse.py digest SRC             print a sha256 of the package source (pyproject.toml, app/jobmon)
    client_wheelhouse.py wheel SRC DEST [ARG]   build the jobmon wheel into DEST from a clean copy of SRC
                                                (ARGs go to pip), so a stale build/ never leaks into it
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
TOP_FILES = ("pyproject.toml", "README.md", "MANIFEST.in", "setup.cfg", "setup.py")


def digest(root: Path) -> str:
    h = hashlib.sha256()
    files = [root / "pyproject.toml"] + sorted(
        p for p in (root / "app" / "jobmon").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    for path in files:
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def wheel(root: Path, dest: Path, pip_args: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobmon-client-wheel-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for name in TOP_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, copy / name)
        for path in root.glob("LICEN[CS]E*"):
            shutil.copy2(path, copy / path.name)
        shutil.copytree(root / "app", copy / "app", ignore=IGNORED)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
             "--wheel-dir", str(dest), *pip_args, str(copy)],
            check=True,
        )


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "digest":
        print(digest(Path(argv[1])))
        return 0
    if len(argv) >= 3 and argv[0] == "wheel":
        wheel(Path(argv[1]), Path(argv[2]), argv[3:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
