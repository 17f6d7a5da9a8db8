"""fleet/run against the Grid Engine testbed (docs/fleet.md), plus a broken node the test makes.

Skipped unless JOBMON_SGE_TESTBED names the converged testbed container (``jobmon-sge`` in CI, after the
grid_engine Molecule scenario). The broken node is a ``fleet-`` container from the testbed's image with no
Grid Engine running (its daemons would collide with the testbed's on the host network) and a client of
another version. A temporary inventory names both, the way inventories/local names the testbed.

    JOBMON_SGE_TESTBED=jobmon-sge .venv/bin/pytest -q tests/fleet
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CONTAINER = os.environ.get("JOBMON_SGE_TESTBED", "")
ROOT = Path(__file__).resolve().parents[2]
RUN = str(ROOT / "fleet" / "run")
DEPLOY_PYTHON = str(ROOT / ".venv-deploy" / "bin" / "python")
BROKEN = f"fleet-broken-{os.getpid()}"
ABSENT = f"fleet-absent-{os.getpid()}"
TEST_VERSION = "0.1.0+fleettest"
VENV = "/opt/jobmon/venv"

pytestmark = pytest.mark.skipif(not CONTAINER, reason="JOBMON_SGE_TESTBED (the testbed container) is not set")


def sh(*argv: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return sh(RUN, *args, check=False)


def client_version(container: str) -> str:
    return sh("docker", "exec", container, f"{VENV}/bin/python", "-c",
              "import importlib.metadata as m; print(m.version('jobmon'))").stdout.strip()


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fleet-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    """This checkout's wheel under another version: what an upgrade installs and the broken node runs."""
    src = work / "src"
    src.mkdir()
    for name in ("app", "pyproject.toml", "README.md"):
        sh("cp", "-r", str(ROOT / name), str(src / name))
    init = src / "app" / "jobmon" / "__init__.py"
    init.write_text("\n".join(f'__version__ = "{TEST_VERSION}"' if line.startswith("__version__") else line
                              for line in init.read_text().splitlines()) + "\n")
    sh(DEPLOY_PYTHON, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
       "--wheel-dir", str(work / "dist"), str(src))
    (built,) = (work / "dist").glob("jobmon-*.whl")
    return built


@pytest.fixture(scope="module")
def broken_node(work: Path, wheel: Path) -> Iterator[str]:
    image = sh("docker", "inspect", "-f", "{{.Config.Image}}", CONTAINER).stdout.strip()
    sh("docker", "run", "-d", "--name", BROKEN, "--network", "host", "--entrypoint", "sleep", image,
       "infinity")
    try:
        # The testbed's wheel set gives the broken node the client's dependencies without an index.
        sh("docker", "cp", f"{CONTAINER}:/opt/jobmon/wheels", str(work / "wheels"))
        sh("docker", "cp", str(work / "wheels"), f"{BROKEN}:/opt/")
        sh("docker", "cp", str(wheel), f"{BROKEN}:/opt/{wheel.name}")
        config = sh("docker", "exec", CONTAINER, "cat", "/etc/jobmon/jobmon.toml").stdout
        setup = f"""set -e
python3 -m venv {VENV}
{VENV}/bin/pip install --quiet --disable-pip-version-check --no-index \
    $(find /opt/wheels -name '*.whl' ! -name 'jobmon-*') /opt/{wheel.name}
ln -s {VENV}/bin/jobmon-worker /usr/local/bin/jobmon-worker
mkdir -p /etc/jobmon && cat >/etc/jobmon/jobmon.toml && : >/etc/jobmon/sge.toml
chmod 0644 /etc/jobmon/jobmon.toml /etc/jobmon/sge.toml
"""
        subprocess.run(["docker", "exec", "-i", BROKEN, "sh", "-c", setup], input=config, text=True,
                       check=True, capture_output=True, timeout=300)
        yield BROKEN
    finally:
        sh("docker", "rm", "-f", BROKEN, check=False)


@pytest.fixture(scope="module")
def inventory(work: Path, broken_node: str) -> Path:
    path = work / "hosts.yml"
    path.write_text(f"""grid_engine_nodes:
  hosts:
    {CONTAINER}: {{ansible_connection: community.docker.docker, ansible_host: {CONTAINER}}}
    {broken_node}: {{ansible_connection: community.docker.docker, ansible_host: {broken_node}}}
qmaster:
  hosts:
    fleet-admin: {{ansible_connection: community.docker.docker, ansible_host: {CONTAINER}}}
""")
    return path


def test_check_reports_the_broken_node_and_fails(inventory: Path) -> None:
    run = fleet("check", "-i", str(inventory))
    assert run.returncode == 1, run.stdout + run.stderr
    rows = {line.split()[0]: line for line in run.stdout.splitlines() if line.strip()}
    assert rows[CONTAINER].endswith("OK"), run.stdout
    assert rows[BROKEN].endswith("FAIL"), run.stdout
    assert f"client {TEST_VERSION} differs from the service's" in run.stdout


def test_check_of_the_testbed_alone_passes(inventory: Path) -> None:
    run = fleet("check", "-i", str(inventory), "--limit", CONTAINER)
    assert run.returncode == 0, run.stdout + run.stderr


def test_upgrade_then_rollback_leaves_the_version_as_it_was(inventory: Path, wheel: Path) -> None:
    before = client_version(CONTAINER)
    try:
        run = fleet("upgrade", "-i", str(inventory), "--limit", CONTAINER, "--wheel", str(wheel))
        assert run.returncode == 0, run.stdout + run.stderr
        assert client_version(CONTAINER) == TEST_VERSION
    finally:
        run = fleet("rollback", "-i", str(inventory), "--limit", CONTAINER)
    assert run.returncode == 0, run.stdout + run.stderr
    assert client_version(CONTAINER) == before
    assert fleet("check", "-i", str(inventory), "--limit", CONTAINER).returncode == 0
    # Leave the testbed as the role converged it (the rolled-back-from venv and the test wheel go).
    sh("docker", "exec", CONTAINER, "rm", "-rf", f"{VENV}.previous", "/opt/jobmon/wheels/fleet")


def test_upgrade_stops_at_the_first_failing_batch(work: Path, inventory: Path, wheel: Path) -> None:
    before = client_version(CONTAINER)
    first_absent = work / "absent-first.yml"
    first_absent.write_text(f"""grid_engine_nodes:
  hosts:
    {ABSENT}: {{ansible_connection: community.docker.docker}}
    {CONTAINER}: {{ansible_connection: community.docker.docker}}
""")
    run = fleet("upgrade", "-i", str(first_absent), "--wheel", str(wheel), "--batch-size", "1")
    assert run.returncode == 1
    assert "stopped: batch 1 failed" in run.stdout, run.stdout
    assert client_version(CONTAINER) == before


def queue_states(host: str) -> str:
    out = sh("docker", "exec", CONTAINER, "qstat", "-f", "-q", f"all.q@{host}").stdout
    (line,) = [line for line in out.splitlines() if line.startswith("all.q@")]
    fields = line.split()
    return fields[5] if len(fields) > 5 else ""


# On the node itself, or through an admin host for nodes that are not Grid Engine admin hosts.
@pytest.mark.parametrize("where", [["--queue", "all.q"], ["--admin-host", "fleet-admin"]],
                         ids=["on-the-node", "from-an-admin-host"])
def test_drain_then_undrain(inventory: Path, where: list[str]) -> None:
    host = sh("docker", "exec", CONTAINER, "hostname").stdout.strip()
    try:
        run = fleet("drain", "-i", str(inventory), "--limit", CONTAINER, *where)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "d" in queue_states(host)
    finally:
        run = fleet("undrain", "-i", str(inventory), "--limit", CONTAINER, *where)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "d" not in queue_states(host)
