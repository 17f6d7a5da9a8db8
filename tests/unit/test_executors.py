"""Local executors with a stand-in worker program (a small script), so no server is needed."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from jobmon.client.executors import (
    Executor,
    ExecutorError,
    MultiprocessExecutor,
    SequentialExecutor,
    TaskInstanceSpec,
    find_worker_executable,
    get_executor,
)
from waiting import wait_until

FAKE_WORKER = """#!{python}
import os, signal, sys, time
args = sys.argv[1:]
ti = int(args[args.index("--task-instance-id") + 1])
with open(os.path.join({log_dir!r}, f"{{ti}}.args"), "w") as fh:
    fh.write(" ".join(args))
if ti == 1:
    sys.exit(0)
if ti == 2:
    sys.exit(3)
def handlers_installed():
    # Tells the test that a SIGTERM from now on meets this worker's handler.
    open(os.path.join({log_dir!r}, f"{{ti}}.ready"), "w").close()
if ti == 3:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    handlers_installed()
    time.sleep(30)
if ti == 4:
    os.kill(os.getpid(), signal.SIGKILL)
if ti == 5:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    handlers_installed()
    time.sleep(30)
"""


@pytest.fixture
def fake_worker(tmp_path: Path) -> Path:
    path = tmp_path / "fake-worker"
    path.write_text(FAKE_WORKER.format(python=sys.executable, log_dir=str(tmp_path)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def spec(ti: int, memory_mb: int = 256) -> TaskInstanceSpec:
    return TaskInstanceSpec(task_instance_id=ti, task_id=100 + ti, name=f"task {ti}/x", command="true",
                            queue="all.q", num_cores=1, memory_mb=memory_mb, runtime_s=60)


def started(executor: Executor) -> Executor:
    executor.configure("http://127.0.0.1:1", worker_heartbeat_interval=1.5)
    executor.start()
    return executor


def wait_reaped(executor: MultiprocessExecutor, timeout: float = 10) -> None:
    wait_until(lambda: executor.capacity() == executor.parallelism, timeout, "every worker to be reaped")


def test_worker_command_carries_instance_url_and_limits(fake_worker, tmp_path):
    executor = started(MultiprocessExecutor(2, worker_executable=str(fake_worker)))
    assert executor.worker_command(spec(7, memory_mb=300)) == [
        str(fake_worker), "--task-instance-id", "7", "--service-url", "http://127.0.0.1:1",
        "--memory-limit-mb", "300", "--runtime-limit-s", "60", "--heartbeat-interval", "1.5",
    ]
    executor.stop()


def test_multiprocess_runs_in_parallel_and_reports_abnormal_exits(fake_worker, tmp_path):
    executor = started(MultiprocessExecutor(4, worker_executable=str(fake_worker),
                                            log_dir=tmp_path / "logs"))
    ids = {ti: executor.submit(spec(ti)) for ti in (1, 2, 4)}
    assert all(ids.values())
    assert ids[1] != ids[2]
    wait_reaped(executor)
    lost = sorted(executor.reconcile(), key=lambda x: x.task_instance_id)
    # Exit 0 reported done itself; the others may not have reported, so the client posts U.
    assert [(x.task_instance_id, x.status) for x in lost] == [(2, "U"), (4, "U")]
    assert "exited with code 3" in lost[0].description
    assert "killed by SIGKILL" in lost[1].description
    assert executor.reconcile() == []
    assert (tmp_path / "logs" / "task_1_x.o1").exists()
    assert (tmp_path / "1.args").read_text().startswith("--task-instance-id 1 ")
    executor.stop()


def test_multiprocess_capacity_counts_running_workers(fake_worker):
    executor = started(MultiprocessExecutor(2, worker_executable=str(fake_worker)))
    assert executor.capacity() == 2
    executor.submit(spec(3))
    assert executor.capacity() == 1
    assert executor.task_instance_ids() == {3}
    executor.submit(spec(1))
    wait_until(lambda: executor.capacity() == 1, 10, "the worker that exits at once to be reaped")
    executor.stop()
    assert executor.capacity() == 2
    assert executor.active_executor_ids() == []


def test_terminate_sigterms_then_sigkills_and_reports_nothing(fake_worker, tmp_path):
    executor = started(MultiprocessExecutor(2, worker_executable=str(fake_worker), terminate_grace=1.0))
    polite = executor.submit(spec(3))
    stubborn = executor.submit(spec(5))
    wait_until(lambda: (tmp_path / "3.ready").exists() and (tmp_path / "5.ready").exists(), 10,
               "both workers to install their SIGTERM handlers")
    start = time.monotonic()
    executor.terminate([polite, stubborn])
    assert time.monotonic() - start < 5
    assert executor.active_executor_ids() == []
    # Terminated on purpose: the client already marked them, nothing is lost.
    assert executor.reconcile() == []
    for pid in (polite, stubborn):
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def test_sequential_waits_for_each_instance(fake_worker):
    executor = started(SequentialExecutor(worker_executable=str(fake_worker)))
    assert executor.submit_blocks
    assert executor.capacity() == 1
    assert executor.submit(spec(1)) is not None
    assert executor.submit(spec(2)) is not None
    assert executor.active_executor_ids() == []
    lost = executor.reconcile()
    assert [(x.task_instance_id, x.status) for x in lost] == [(2, "U")]
    executor.stop()


def test_missing_worker_program_gives_no_executor_id(tmp_path):
    executor = started(MultiprocessExecutor(1, worker_executable=str(tmp_path / "missing")))
    assert executor.submit(spec(1)) is None
    executor.stop()


def test_find_worker_executable_prefers_the_venv():
    found = find_worker_executable()
    assert found == str(Path(sys.executable).parent / "jobmon-worker")


def test_find_worker_executable_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExecutorError, match="jobmon-worker not found"):
        find_worker_executable()


def test_get_executor_by_name_or_instance():
    assert isinstance(get_executor("multiprocess"), MultiprocessExecutor)
    assert isinstance(get_executor("sequential"), SequentialExecutor)
    executor = MultiprocessExecutor(3)
    assert get_executor(executor) is executor
    with pytest.raises(ValueError, match="unknown executor 'slurm'"):
        get_executor("slurm")


def test_unconfigured_executor_refuses_to_build_a_command(fake_worker):
    executor = MultiprocessExecutor(1, worker_executable=str(fake_worker))
    with pytest.raises(ExecutorError, match="not configured with a service URL"):
        executor.worker_command(spec(1))
