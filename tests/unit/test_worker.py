"""The worker's command runner (real processes, no server) and how outcomes become reports."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time

import pytest

from jobmon.worker import cli
from jobmon.worker.runner import MIB, CommandRunner, Outcome, classify
from jobmon.worker.usage import session_rss

PY = sys.executable


def hog(mib: int, hold: float = 3.0) -> str:
    # bytes multiplication writes every page, so the memory is resident, not just reserved.
    return f"{PY} -c \"import time; x = b'x' * ({mib} << 20); time.sleep({hold})\""


def test_command_over_its_memory_limit_is_killed_and_reported_as_resource_error():
    runner = CommandRunner(hog(200), memory_limit_mb=60, sample_interval=0.05)
    start = time.monotonic()
    outcome = runner.run()
    assert time.monotonic() - start < 2.5, "the command should be killed long before it finished"
    assert outcome.memory_exceeded
    assert outcome.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
    assert outcome.exit_code == 137
    assert outcome.maxrss > 60 * MIB
    report = classify(outcome, memory_limit_mb=60)
    assert report.status == "Z"
    assert "memory limit exceeded" in report.description
    assert "limit 60 MiB" in report.description


def test_command_within_its_memory_limit_succeeds_and_peak_rss_is_measured():
    outcome = CommandRunner(hog(50, hold=0.5), memory_limit_mb=500, sample_interval=0.05).run()
    assert outcome.returncode == 0
    assert not outcome.memory_exceeded
    assert 50 * MIB <= outcome.maxrss < 500 * MIB
    assert outcome.cpu > 0
    assert classify(outcome, 500).status == "D"


def test_memory_of_the_whole_process_tree_counts():
    # Two children of 40 MiB each: neither alone exceeds 60 MiB, together they do.
    command = f"{hog(40)} & {hog(40)} & wait"
    outcome = CommandRunner(command, memory_limit_mb=60, sample_interval=0.05).run()
    assert outcome.memory_exceeded
    assert classify(outcome, 60).status == "Z"


def test_failure_keeps_the_stderr_tail_and_streams_stderr():
    sink = io.BytesIO()
    command = "for i in $(seq 1 500); do echo line-$i >&2; done; exit 4"
    outcome = CommandRunner(command, stderr_tail_bytes=100, stderr_sink=sink).run()
    assert outcome.returncode == 4
    assert len(outcome.stderr_tail) <= 100
    assert outcome.stderr_tail.rstrip().endswith("line-500")
    assert b"line-1\n" in sink.getvalue()
    assert b"line-500\n" in sink.getvalue()
    report = classify(outcome)
    assert report.status == "E"
    assert report.description.startswith("exit code 4; stderr tail:")
    assert "line-500" in report.description


def test_runtime_limit_kills_the_command():
    outcome = CommandRunner("sleep 30", runtime_limit_s=0.5, sample_interval=0.05).run()
    assert outcome.runtime_exceeded
    assert outcome.wallclock < 5
    report = classify(outcome, runtime_limit_s=0.5)
    assert report.status == "Z"
    assert "runtime limit exceeded" in report.description


def test_kill_request_kills_the_whole_session_and_reports_nothing():
    runner = CommandRunner("sleep 30 & sleep 30 & wait", sample_interval=0.05)
    threading.Timer(0.5, runner.request_kill).start()
    outcome = runner.run()
    assert outcome.killed_on_request
    assert outcome.wallclock < 5
    assert runner.pid is not None
    assert session_rss(runner.pid)[1] == []
    assert classify(outcome).status is None


def test_forwarded_signal_terminates_the_command():
    runner = CommandRunner("sleep 30", sample_interval=0.05)
    threading.Timer(0.5, runner.forward_signal, args=(signal.SIGTERM,)).start()
    outcome = runner.run()
    assert outcome.signal_received == signal.SIGTERM
    report = classify(outcome)
    assert report.status == "E"
    assert "received SIGTERM" in report.description


def test_background_leftovers_are_killed_when_the_command_exits():
    runner = CommandRunner("sleep 60 & echo started", sample_interval=0.05)
    start = time.monotonic()
    outcome = runner.run()
    assert outcome.returncode == 0
    assert time.monotonic() - start < 10
    assert runner.pid is not None
    assert session_rss(runner.pid)[1] == []


@pytest.mark.parametrize(
    ("returncode", "status", "words"),
    [
        (0, "D", ""),
        (1, "E", "exit code 1"),
        (137, "Z", "killed by SIGKILL (exit 137)"),
        (-9, "Z", "most likely out of memory"),
        (-15, "E", "killed by SIGTERM (exit 143)"),
        (-11, "E", "killed by SIGSEGV"),
    ],
)
def test_exit_codes_map_to_reports(returncode, status, words):
    report = classify(Outcome(returncode, 1.0, 0.5, 10 * MIB, stderr_tail="boom"))
    assert report.status == status
    assert words in report.description


def test_unstartable_command_is_an_error():
    report = classify(Outcome(127, 0.0, 0.0, 0, start_error="No such file or directory: 'bash'"))
    assert report.status == "E"
    assert "cannot start the command" in report.description


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "jobmon.worker.cli", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "JOBMON_CLIENT_REQUEST_RETRIES": "0"})


def test_cli_requires_a_task_instance_id():
    done = run_cli()
    assert done.returncode == 2
    assert "--task-instance-id" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_rejects_a_bad_memory_limit():
    done = run_cli("--task-instance-id", "1", "--memory-limit-mb", "lots")
    assert done.returncode == 2
    assert "expected an integer" in done.stderr


def test_cli_with_unreachable_service_fails_in_one_line():
    done = run_cli("--task-instance-id", "5", "--service-url", "http://127.0.0.1:9")
    assert done.returncode == cli.EXIT_WORKER_FAILED
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("jobmon-worker: error: POST http://127.0.0.1:9/api/state/task_instance/5/running")


def test_cli_with_a_bad_service_url_fails_in_one_line():
    done = run_cli("--task-instance-id", "5", "--service-url", "localhost:8070")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "jobmon-worker: error: service URL must start with http:// or https://, got 'localhost:8070'")


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        ("Traceback (most recent call last):\n  ...\nMemoryError", "Z"),
        ("sort: memory exhausted\nbash: fork: Cannot allocate memory", "Z"),
        ("terminate called after throwing an instance of 'std::bad_alloc'", "Z"),
        ("ValueError: MemoryError is not what this says\n" + "line\n" * 10 + "ValueError: bad input", "E"),
    ],
)
def test_failed_allocation_under_an_address_space_limit_is_a_resource_error(tail, status):
    # Grid Engine's h_vmem is also each process's RLIMIT_AS: the process fails to allocate, not killed.
    report = classify(Outcome(1, 1.0, 0.5, 10 * MIB, stderr_tail=tail))
    assert report.status == status
