"""Controller-side wheel sets of the Jobmon roles (runs with the controller's Python; stdlib only).

    wheelhouse.py digest SRC
        print a sha256 of the package source: pyproject.toml and app/jobmon, caches left out
    wheelhouse.py build SRC CACHE --python X.Y [--arch ARCH] [--extra NAME]... [--requirement REQ]...
                        [-- PIP_ARG...]
        make CACHE/<set>: the jobmon wheel, built from a clean copy of SRC (so a stale build/ never leaks
        into it), and the wheels of its runtime dependencies for that Python and platform; then print
        {"changed": ..., "wheelset": {"name", "path", "digest", "wheel", "version"}} as JSON.

A set is named after everything it is made from (source digest, Python, architecture, extras and
requirements), so an existing set is reused as it is ("changed": false). It is built in a scratch
directory and renamed into place when complete: an interrupted build leaves no half set behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
TOP_FILES = ("pyproject.toml", "README.md", "MANIFEST.in", "setup.cfg", "setup.py")
MARKER = ".wheelset.json"
PIP = (sys.executable, "-m", "pip")
PIP_QUIET = ("--quiet", "--disable-pip-version-check")
# manylinux_2_17 (= manylinux2014) up to glibc 2.39: every tag a dependency's Linux wheel may carry.
GLIBC_MINORS = range(17, 40)


def digest(root: Path) -> str:
    h = hashlib.sha256()
    files = [root / "pyproject.toml", *sorted(
        p for p in (root / "app" / "jobmon").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )]
    for path in files:
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def set_name(source_digest: str, python: str, arch: str, extras: list[str], requirements: list[str]) -> str:
    wanted = hashlib.sha256(json.dumps([sorted(extras), requirements]).encode()).hexdigest()
    return f"{source_digest[:16]}-py{python}-{arch}-{wanted[:8]}"


def pip(*args: str) -> None:
    # pip's own output goes to stderr: stdout carries only the JSON answer.
    subprocess.run([*PIP, *args], check=True, stdout=sys.stderr)


def build_own_wheel(root: Path, dest: Path, pip_args: list[str]) -> Path:
    with tempfile.TemporaryDirectory(prefix="jobmon-wheel-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for name in TOP_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, copy / name)
        for path in root.glob("LICEN[CS]E*"):
            shutil.copy2(path, copy / path.name)
        shutil.copytree(root / "app", copy / "app", ignore=IGNORED)
        pip("wheel", *PIP_QUIET, "--no-deps", "--wheel-dir", str(dest), *pip_args, str(copy))
    wheels = sorted(dest.glob("jobmon-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"wheelhouse: expected one jobmon wheel in {dest}, found {len(wheels)}")
    return wheels[0]


def download_dependencies(wheel: Path, dest: Path, python: str, arch: str, extras: list[str],
                          requirements: list[str], pip_args: list[str]) -> None:
    platforms = [f"manylinux2014_{arch}"] + [f"manylinux_2_{minor}_{arch}" for minor in GLIBC_MINORS]
    package = f"jobmon[{','.join(extras)}]" if extras else "jobmon"
    pip("download", *PIP_QUIET, "--dest", str(dest), "--only-binary=:all:",
        "--python-version", python, "--implementation", "cp",
        "--abi", "cp" + python.replace(".", ""), "--abi", "abi3", "--abi", "none",
        *(f"--platform={platform}" for platform in platforms),
        *pip_args, f"{package} @ {wheel.as_uri()}", *requirements)


def build(root: Path, cache: Path, python: str, arch: str, extras: list[str], requirements: list[str],
          pip_args: list[str]) -> dict[str, Any]:
    source_digest = digest(root)
    name = set_name(source_digest, python, arch, extras, requirements)
    final = cache / name
    if (final / MARKER).is_file():
        return {"changed": False, "wheelset": json.loads((final / MARKER).read_text())}
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        wheel = build_own_wheel(root, work, pip_args)
        download_dependencies(wheel, work, python, arch, extras, requirements, pip_args)
        wheelset = {"name": name, "path": str(final), "digest": source_digest, "wheel": wheel.name,
                    "version": wheel.name.split("-")[1]}
        (work / MARKER).write_text(json.dumps(wheelset) + "\n")
        work.chmod(0o755)
        # A directory without its marker is what a crashed build of an older helper left.
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"changed": True, "wheelset": wheelset}


def main(argv: list[str]) -> int:
    pip_args: list[str] = []
    if "--" in argv:
        argv, pip_args = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("digest").add_argument("source", type=Path)
    build_args = commands.add_parser("build")
    build_args.add_argument("source", type=Path)
    build_args.add_argument("cache", type=Path)
    build_args.add_argument("--python", required=True, help="the target's Python, e.g. 3.11")
    build_args.add_argument("--arch", default="x86_64", help="the target's machine architecture")
    build_args.add_argument("--extra", action="append", default=[], help="an extra of the jobmon package")
    build_args.add_argument("--requirement", action="append", default=[], help="a further requirement")
    args = parser.parse_args(argv)
    if args.command == "digest":
        print(digest(args.source))
    else:
        print(json.dumps(build(args.source, args.cache, args.python, args.arch, args.extra, args.requirement,
                               pip_args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
