"""``jobmon-worker --task-instance-id N``: what an executor launches for each task instance.

1. report running (if the server says kill_self, exit 0: this instance is no longer wanted);
2. run the command the running answer carries with ``bash -c`` in its own session, heartbeating meanwhile
   and killing it when a heartbeat answers kill_self, or when it exceeds its memory or runtime limit;
3. report done, or error with the cause (Z for a resource error, E otherwise) and the stderr tail, plus
   wallclock, CPU and peak RSS.

The exit code is the command's (128 + signal when it was killed). When the outcome could not be
reported, the exit code is non-zero, so the executor reports the instance lost.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

import jobmon
from jobmon.core import routes
from jobmon.core.cli_support import fail, positive_int, positive_seconds, setup_logging
from jobmon.core.config import ConfigError, JobmonConfig
from jobmon.core.requester import JobmonRequestError, Requester
from jobmon.core.states import TaskInstanceStatus as TI
from jobmon.worker.runner import CommandRunner, Outcome, classify

log = logging.getLogger("jobmon.worker")

PROG = "jobmon-worker"

EXIT_USAGE = 2
# The worker itself failed (no service, unknown instance, unreportable outcome of a successful command).
EXIT_WORKER_FAILED = 1
# The worker's version differs from the service's: it refuses to run the task.
EXIT_VERSION_MISMATCH = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run one Jobmon task instance's command and report its outcome to the service.",
    )
    parser.add_argument("--task-instance-id", type=positive_int, required=True)
    parser.add_argument("--service-url", help="Jobmon service base URL (default: client config)")
    parser.add_argument("--memory-limit-mb", type=positive_int,
                        help="SIGKILL the command when its processes' RSS exceeds this (MiB)")
    parser.add_argument("--runtime-limit-s", type=positive_seconds,
                        help="SIGKILL the command after this many seconds")
    parser.add_argument("--heartbeat-interval", type=positive_seconds,
                        help="seconds between heartbeats (default: worker config)")
    return parser


def version_mismatch(requester: Requester) -> str | None:
    """Why this worker must not run against the service (its version differs), or None."""
    server = str(requester.get(routes.VERSION).get("version", ""))
    if server == jobmon.__version__:
        return None
    return (f"jobmon-worker {jobmon.__version__} differs from the Jobmon service's version {server or '?'} "
            f"at {requester.base_url}: install jobmon {server} on this node")


def _executor_id() -> str:
    # A batch system's job id when there is one, else our pid (what the local executors record).
    for name in ("JOB_ID", "SLURM_JOB_ID"):
        value = os.environ.get(name)
        if value:
            task = os.environ.get("SGE_TASK_ID")
            return f"{value}.{task}" if name == "JOB_ID" and task and task != "undefined" else value
    return str(os.getpid())


class _Heartbeat(threading.Thread):
    def __init__(self, requester: Requester, ti: int, interval: float, increment: float,
                 runner: CommandRunner) -> None:
        super().__init__(name="jobmon-worker-heartbeat", daemon=True)
        self.requester = requester
        self.ti = ti
        self.interval = interval
        self.increment = increment
        self.runner = runner
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                answer = self.requester.post(routes.task_instance_report(self.ti, "heartbeat"),
                                             {"next_report_increment": self.increment})
            except JobmonRequestError as exc:
                log.error("heartbeat failed: %s", exc)
                continue
            if answer.get("kill_self"):
                self.runner.request_kill()
                return

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=self.requester.timeout + 5)


def command_of(ti: int, running: dict[str, Any]) -> str:
    """The task's command, as the State Manager answers ``running`` (docs/api.md)."""
    command = running.get("command")
    if not isinstance(command, str) or not command:
        raise JobmonRequestError("POST", routes.task_instance_report(ti, "running"), None,
                                 "the answer carries no command (is the server older than this worker?)")
    return command


def _report(requester: Requester, ti: int, outcome: Outcome, memory_limit_mb: int | None,
            runtime_limit_s: float | None) -> None:
    report = classify(outcome, memory_limit_mb, runtime_limit_s)
    if report.status is None:
        log.info("task instance %d: %s", ti, report.description)
        return
    usage = {"exit_code": outcome.exit_code, "wallclock": round(outcome.wallclock, 3),
             "cpu": round(outcome.cpu, 3), "maxrss": outcome.maxrss}
    if report.status == TI.DONE:
        answer = requester.post(routes.task_instance_report(ti, "done"), usage)
    else:
        answer = requester.post(routes.task_instance_report(ti, "error"),
                                {"status": report.status, "description": report.description, **usage})
    if answer.get("ignored"):
        log.info("task instance %d: the server kept status %s", ti, answer.get("status"))


def run_instance(args: argparse.Namespace, config: JobmonConfig) -> int:
    ti = args.task_instance_id
    interval = args.heartbeat_interval or config.worker.heartbeat_interval
    increment = interval * config.worker.report_by_factor
    service_url = args.service_url or config.client.service_url
    requester = Requester(service_url, timeout=config.client.request_timeout,
                          retries=config.client.request_retries)

    running = requester.post(routes.task_instance_report(ti, "running"), {
        "node_name": socket.gethostname()[:255], "process_group_id": os.getpgrp(),
        "next_report_increment": increment, "executor_id": _executor_id(),
    })
    if running.get("kill_self"):
        log.info("task instance %d is %s: not running it", ti, running.get("status"))
        return 0
    refusal = version_mismatch(requester)
    if refusal:
        with contextlib.suppress(JobmonRequestError):
            requester.post(routes.task_instance_report(ti, "error"),
                           {"status": TI.UNKNOWN_ERROR, "description": refusal})
        return fail(PROG, f"error: {refusal}; not running task instance {ti}", EXIT_VERSION_MISMATCH)
    command = command_of(ti, running)

    runner = CommandRunner(
        command, memory_limit_mb=args.memory_limit_mb, runtime_limit_s=args.runtime_limit_s,
        sample_interval=config.worker.sample_interval,
        stderr_tail_bytes=config.worker.stderr_tail_bytes, stderr_sink=sys.stderr.buffer,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.forward_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, on_signal)

    heartbeat = _Heartbeat(requester.clone(), ti, interval, increment, runner)
    heartbeat.start()
    try:
        outcome = runner.run()
    finally:
        heartbeat.stop()
        heartbeat.requester.close()
    try:
        _report(requester, ti, outcome, args.memory_limit_mb, args.runtime_limit_s)
    except JobmonRequestError as exc:
        return fail(PROG, f"error: cannot report the outcome of task instance {ti}: {exc}",
                    outcome.exit_code or EXIT_WORKER_FAILED)
    finally:
        requester.close()
    return outcome.exit_code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = JobmonConfig.load()
    except ConfigError as exc:
        return fail(PROG, f"error: {exc}", EXIT_USAGE)
    setup_logging(PROG)
    try:
        return run_instance(args, config)
    except JobmonRequestError as exc:
        return fail(PROG, f"error: {exc}", EXIT_WORKER_FAILED)
    except ValueError as exc:
        return fail(PROG, f"error: {exc}", EXIT_USAGE)
    except KeyboardInterrupt:
        return fail(PROG, "interrupted", 128 + signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
