"""The Grid Engine executor against the real testbed (roles/grid_engine_testbed).

Skipped unless JOBMON_SGE_TESTBED names the testbed container (e.g. ``jobmon-sge``); CI runs the same
ground through ``molecule test -s grid_engine``. Run on the docker host, after the grid_engine playbook:

    JOBMON_SGE_TESTBED=jobmon-sge .venv/bin/pytest -q tests/gridengine

This checkout's ``app/`` is copied into the container and put first on PYTHONPATH, so the code under
test is this checkout's even when the node's installed wheel is older. Commands run in the container as
the unprivileged user (JOBMON_SGE_USER, default ``jobmon``). The workflow test also needs the appliance's
service (JOBMON_SGE_SERVICE_URL, default http://127.0.0.1:8070).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from jobmon.client.executors.sge_output import parse_qacct, parse_qstat_xml

CONTAINER = os.environ.get("JOBMON_SGE_TESTBED", "")
USER = os.environ.get("JOBMON_SGE_USER", "jobmon")
SERVICE = os.environ.get("JOBMON_SGE_SERVICE_URL", "http://127.0.0.1:8070")
PYTHON = "/opt/jobmon/venv/bin/python"
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SRC = "/tmp/jobmon-checkout"

pytestmark = pytest.mark.skipif(not CONTAINER, reason="JOBMON_SGE_TESTBED (the testbed container) is not set")


def sh(command: str, *, stdin: str | None = None, user: str = USER, timeout: float = 300,
       check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["docker", "exec", "-i", "-u", user, "-w", f"/home/{USER}", "-e", f"PYTHONPATH={SRC}",
         CONTAINER, "bash", "-lc", command],
        input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{command} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def py(code: str, **kwargs) -> dict:
    """Run Python in the container (the checkout's jobmon first on the path); its last stdout line is JSON."""
    proc = sh(f"{PYTHON} -", stdin=textwrap.dedent(code), **kwargs)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", autouse=True)
def checkout_in_container() -> None:
    subprocess.run(["docker", "exec", CONTAINER, "rm", "-rf", SRC], check=True)
    subprocess.run(["docker", "cp", str(ROOT / "app"), f"{CONTAINER}:{SRC}"], check=True)
    subprocess.run(["docker", "exec", CONTAINER, "chmod", "-R", "a+rX", SRC], check=True)
    # The scripts run from /home/USER, so `import waiting` (the tests' wait_until) works there too.
    for script in (HERE / "sge_workflow.py", HERE.parent / "waiting.py"):
        subprocess.run(["docker", "cp", str(script), f"{CONTAINER}:/home/{USER}/{script.name}"], check=True)


EXECUTOR = """
import json, logging, subprocess, time
from jobmon.client.executors import TaskInstanceSpec
from jobmon.client.executors.sge import SGEExecutor
from jobmon.client.executors.sge_output import parse_qstat_xml
from waiting import wait_until
logging.basicConfig(level=logging.WARNING)

def spec(ti, memory=100, runtime=300, name="t"):
    return TaskInstanceSpec(task_instance_id=ti, task_id=ti, name=f"{{name}}_{{ti}}", command="",
                            queue="all.q", num_cores=1, memory_mb=memory, runtime_s=runtime)

def until_lost(ex, n, timeout=120):
    lost, deadline = [], time.monotonic() + timeout
    while len(lost) < n and time.monotonic() < deadline:
        lost += ex.reconcile()
        time.sleep(1)
    return lost

def qstat_states(user):  # {{executor id: state}} of the user's jobs that qstat lists
    xml = subprocess.run(["qstat", "-xml", "-u", user], capture_output=True, text=True, check=True).stdout
    return {{job.executor_id: job.state for job in parse_qstat_xml(xml)}}

ex = SGEExecutor(worker_executable="{worker}", reconcile_interval=0, accounting_grace=30,
                 log_dir="/tmp/sge-tests", {extra})
ex.configure("http://127.0.0.1:9")
ex._server_status = lambda ti: None   # no service here: every vanished job is looked up in qacct
ex.start()
"""


def fake_worker(body: str) -> str:
    """A stand-in for jobmon-worker in the container (takes the worker's arguments, ignores them)."""
    path = f"/home/{USER}/fake-worker-{abs(hash(body))}.sh"
    sh(f"cat > {path} && chmod +x {path}", stdin=f"#!/bin/sh\n{body}\n")
    return path


def test_live_qstat_and_qacct_output_parses(tmp_path):
    out = tmp_path / "fixtures"
    subprocess.run([sys.executable, str(HERE / "capture_fixtures.py"), "--container", CONTAINER,
                    "--user", USER, "--out", str(out)], check=True, timeout=300, capture_output=True)
    jobs = parse_qstat_xml((out / "qstat.xml").read_text())
    assert {job.name for job in jobs} >= {"busy", "held", "eqw"}
    for name in ("ok", "exit1", "h_vmem", "memoryerror", "h_rt", "qdel", "array"):
        assert parse_qacct((out / f"qacct_{name}.txt").read_text()), name


def test_job_over_h_vmem_is_a_resource_error():
    hog = ("exec python3 -c 'import os, time\n"
           "for _ in range(2):\n"
           "    if os.fork() == 0:\n"
           "        b = bytearray(300 << 20)\n"
           "        b[::4096] = bytes(len(b) // 4096 * [1])\n"
           "        time.sleep(20)\n"
           "        os._exit(0)\n"
           "[os.wait() for _ in range(2)]'")
    result = py(EXECUTOR.format(worker=fake_worker(hog), extra="worker_memory_mb=0") + """
job = ex.submit(spec(1, memory=400))
lost = until_lost(ex, 1)
print(json.dumps({"job": job, "lost": [[l.task_instance_id, l.status, l.description] for l in lost]}))
""")
    (lost,) = result["lost"]
    assert lost[0] == 1
    assert lost[1] == "Z", lost
    assert "over its memory limit (h_vmem 400 MiB)" in lost[2]


def test_job_over_h_rt_is_a_resource_error():
    result = py(EXECUTOR.format(worker=fake_worker("exec sleep 60"), extra="") + """
job = ex.submit(spec(2, runtime=3))
lost = until_lost(ex, 1)
print(json.dumps({"lost": [[l.status, l.description] for l in lost]}))
""")
    ((status, description),) = result["lost"]
    assert status == "Z"
    assert "over its runtime limit (h_rt 3 s)" in description


def test_a_job_in_eqw_is_deleted_and_unknown():
    result = py(EXECUTOR.format(worker=fake_worker("true"), extra="working_dir='/nonexistent'") + """
job = ex.submit(spec(3))
lost = until_lost(ex, 1)
wait_until(lambda: job not in qstat_states("{user}"), 60, f"qstat to stop listing the deleted job {job}",
           interval=0.5)
listed = subprocess.run(["qstat", "-u", "{user}"], capture_output=True, text=True).stdout
print(json.dumps({"job": job, "lost": [[l.status, l.description] for l in lost], "listed": listed}))
""".replace("{user}", USER))
    ((status, description),) = result["lost"]
    assert status == "U"
    assert "error state (Eqw)" in description
    assert "can't chdir to /nonexistent" in description
    assert f" {result['job']} " not in result["listed"]


def test_array_submission_and_a_worker_that_never_reported():
    result = py(EXECUTOR.format(worker=fake_worker('echo "worker $*" >&2; exit 0'), extra="") + """
specs = [spec(10 + i, name="arr") for i in range(3)] + [spec(20, memory=300, name="single")]
ex.prepare_submit(specs)
ids = [ex.submit(s) for s in specs]
lost = until_lost(ex, 4)
print(json.dumps({"ids": ids, "lost": sorted([l.task_instance_id, l.status, l.description] for l in lost)}))
""")
    ids = result["ids"]
    job = ids[0].split(".")[0]
    assert ids[:3] == [f"{job}.1", f"{job}.2", f"{job}.3"]
    assert "." not in ids[3]
    assert [row[:2] for row in result["lost"]] == [[10, "U"], [11, "U"], [12, "U"], [20, "U"]]
    assert "never reported" in result["lost"][0][2]
    # The job's stderr (the worker's arguments) is in the description: task 2 ran instance 11.
    assert "worker --task-instance-id 11 --service-url http://127.0.0.1:9" in result["lost"][1][2]


def test_terminate_deletes_queued_and_running_jobs():
    result = py(EXECUTOR.format(worker=fake_worker("exec sleep 120"), extra="") + """
ids = [ex.submit(spec(30 + i)) for i in range(2)]
# Deleting a running job is the harder case (qdel only marks it dr until execd has killed it).
wait_until(lambda: any("r" in qstat_states("{user}").get(i, "") for i in ids), 60,
           "one of the jobs to be running", interval=0.5)
ex.terminate(ids)
wait_until(lambda: not set(ids) & set(qstat_states("{user}")), 60, "qstat to stop listing the deleted jobs",
           interval=0.5)
listed = subprocess.run(["qstat", "-xml", "-u", "{user}"], capture_output=True, text=True).stdout
print(json.dumps({"ids": ids, "listed": listed, "active": ex.active_executor_ids()}))
""".replace("{user}", USER))
    listed = {job.executor_id for job in parse_qstat_xml(result["listed"])}
    assert not listed & set(result["ids"])
    assert result["active"] == []


def test_workflow_through_qsub():
    try:
        requests.get(f"{SERVICE}/api/query/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.skip(f"the Jobmon service at {SERVICE} is not up: {exc}")
    proc = sh(f"JOBMON_CLIENT_SERVICE_URL={SERVICE} {PYTHON} sge_workflow.py --json "
              f"--name 'pytest {os.getpid()}'", timeout=1200, check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["num_tasks"] >= 50
    assert result["task_counts"] == {"D": result["num_tasks"] - 1, "F": 1}, proc.stderr[-3000:]
    hog = requests.get(f"{SERVICE}/api/viz/task/{result['hog_task_id']}", timeout=30).json()
    assert [i["status"] for i in hog["instances"]] == ["Z", "D"]
    assert "h_vmem" in hog["instances"][0]["errors"][0]["description"]
