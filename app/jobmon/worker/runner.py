"""Run one command under watch: its own session, a memory and runtime limit, peak RSS, the stderr tail.

The memory limit is the local stand-in for Grid Engine's h_vmem: when the summed RSS of the command's
processes exceeds it, the whole session is SIGKILLed and the outcome says so, so the server can retry
the task with more memory. Nothing here talks HTTP; ``jobmon.worker.cli`` does the reporting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import IO, BinaryIO

from jobmon.core.states import TaskInstanceStatus as TI
from jobmon.worker.usage import children_usage, session_rss

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# After forwarding SIGTERM to the command, wait this long before SIGKILL.
TERMINATE_GRACE = 5.0


@dataclass(frozen=True)
class Outcome:
    returncode: int
    wallclock: float
    cpu: float
    maxrss: int
    memory_exceeded: bool = False
    runtime_exceeded: bool = False
    killed_on_request: bool = False
    signal_received: int | None = None
    stderr_tail: str = ""
    start_error: str | None = None

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + signal number for a command killed by a signal."""
        return self.returncode if self.returncode >= 0 else 128 - self.returncode


@dataclass(frozen=True)
class Report:
    """What the worker tells the server: ``status`` D (done), E (error), Z (resource error), or None
    when there is nothing to report (the server already told the instance to kill itself)."""

    status: TI | None
    description: str


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# What a process prints when an allocation fails: Python, C/C++ runtimes, R, Java.
_ALLOCATION_FAILURES = ("MemoryError", "Cannot allocate memory", "std::bad_alloc",
                        "cannot allocate vector", "java.lang.OutOfMemoryError")


def _with_tail(text: str, tail: str) -> str:
    tail = tail.strip()
    return f"{text}; stderr tail:\n{tail}" if tail else f"{text} (no stderr)"


def classify(outcome: Outcome, memory_limit_mb: int | None = None,
             runtime_limit_s: float | None = None) -> Report:
    """Turn an outcome into the report the server needs; resource errors (Z) let it retry with more."""
    if outcome.start_error is not None:
        return Report(TI.ERROR, f"cannot start the command: {outcome.start_error}")
    if outcome.killed_on_request:
        return Report(None, "killed: the server told this instance to kill itself")
    if outcome.memory_exceeded:
        return Report(TI.RESOURCE_ERROR, (
            f"memory limit exceeded: peak RSS {outcome.maxrss / MIB:.0f} MiB > limit "
            f"{memory_limit_mb} MiB; the command was killed with SIGKILL"))
    if outcome.runtime_exceeded:
        return Report(TI.RESOURCE_ERROR, (
            f"runtime limit exceeded: ran {outcome.wallclock:.0f} s > limit {runtime_limit_s:g} s; "
            "the command was killed with SIGKILL"))
    if outcome.signal_received is not None:
        return Report(TI.ERROR, _with_tail(
            f"the worker received {_signal_name(outcome.signal_received)} and killed the command",
            outcome.stderr_tail))
    rc = outcome.returncode
    if rc == 0:
        return Report(TI.DONE, "")
    if rc in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return Report(TI.RESOURCE_ERROR, _with_tail(
            f"killed by SIGKILL (exit {outcome.exit_code}): most likely out of memory (the kernel's OOM "
            f"killer or the scheduler's memory limit); peak RSS {outcome.maxrss / MIB:.0f} MiB",
            outcome.stderr_tail))
    if rc < 0:
        return Report(TI.ERROR, _with_tail(f"killed by {_signal_name(-rc)} (exit {outcome.exit_code})",
                                           outcome.stderr_tail))
    # Grid Engine enforces h_vmem as each process's address-space limit too: a process that reaches it
    # is not killed but fails to allocate, and says so on stderr. That is a resource error as well.
    last_lines = outcome.stderr_tail.strip().splitlines()[-5:]
    if any(marker in line for line in last_lines for marker in _ALLOCATION_FAILURES):
        return Report(TI.RESOURCE_ERROR, _with_tail(
            f"exit code {rc} after a failed memory allocation (the memory limit, e.g. h_vmem, was "
            f"reached); peak RSS {outcome.maxrss / MIB:.0f} MiB", outcome.stderr_tail))
    return Report(TI.ERROR, _with_tail(f"exit code {rc}", outcome.stderr_tail))


class _TailTee(threading.Thread):
    """Copies the command's stderr to ours as it comes, keeping the last ``limit`` bytes."""

    def __init__(self, source: IO[bytes], sink: BinaryIO | None, limit: int) -> None:
        super().__init__(name="jobmon-stderr", daemon=True)
        self.source = source
        self.sink = sink
        self.limit = max(0, limit)
        self.tail = bytearray()

    def run(self) -> None:
        fd = self.source.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if self.sink is not None:
                try:
                    self.sink.write(chunk)
                    self.sink.flush()
                except (OSError, ValueError):
                    self.sink = None  # our stderr is gone; keep collecting the tail
            self.tail += chunk
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    def text(self) -> str:
        return self.tail.decode("utf-8", "replace")


# eq=False: a runner is one running command, compared by identity.
@dataclass(eq=False)
class CommandRunner:
    """``run()`` starts ``bash -c command`` in a new session and waits for it, sampling memory every
    ``sample_interval`` seconds. ``request_kill()`` (from the heartbeat thread) and ``forward_signal()``
    (from a signal handler) stop it early."""

    command: str
    _: KW_ONLY
    memory_limit_mb: int | None = None
    runtime_limit_s: float | None = None
    sample_interval: float = 0.2
    stderr_tail_bytes: int = 10_000
    stderr_sink: BinaryIO | None = None
    on_sample: Callable[[int], None] | None = None
    pid: int | None = field(default=None, init=False)
    _kill: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _signal: int | None = field(default=None, init=False, repr=False)

    def request_kill(self) -> None:
        self._kill.set()

    def forward_signal(self, signum: int) -> None:
        self._signal = signum

    def _kill_session(self, pids: list[int]) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        # Processes that moved to another group of the session are not reached by killpg.
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def run(self) -> Outcome:
        start = time.monotonic()
        before = children_usage()
        try:
            proc = subprocess.Popen(["bash", "-c", self.command], stdin=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            return Outcome(127, 0.0, 0.0, 0, start_error=str(exc))
        self.pid = proc.pid
        assert proc.stderr is not None
        tee = _TailTee(proc.stderr, self.stderr_sink, self.stderr_tail_bytes)
        tee.start()

        limit = self.memory_limit_mb * MIB if self.memory_limit_mb else None
        peak = 0
        memory_exceeded = runtime_exceeded = killed = False
        signal_at: float | None = None
        signal_received: int | None = None
        while True:
            rss, pids = session_rss(proc.pid)
            peak = max(peak, rss)
            if self.on_sample is not None:
                self.on_sample(rss)
            stopping = memory_exceeded or runtime_exceeded or killed
            if not stopping:
                if limit is not None and rss > limit:
                    memory_exceeded = True
                    log.warning("RSS %.0f MiB exceeds the limit of %d MiB; killing the command",
                                rss / MIB, self.memory_limit_mb)
                    self._kill_session(pids)
                elif self.runtime_limit_s and time.monotonic() - start > self.runtime_limit_s:
                    runtime_exceeded = True
                    log.warning("runtime limit of %g s exceeded; killing the command",
                                self.runtime_limit_s)
                    self._kill_session(pids)
                elif self._kill.is_set():
                    killed = True
                    log.warning("the server told this instance to kill itself; killing the command")
                    self._kill_session(pids)
            if self._signal is not None and signal_received is None:
                signal_received = self._signal
                signal_at = time.monotonic()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            if signal_at is not None and time.monotonic() - signal_at > TERMINATE_GRACE:
                self._kill_session(pids)
                signal_at = None
            try:
                proc.wait(timeout=self.sample_interval)
                break
            except subprocess.TimeoutExpired:
                continue
        # Leftover background processes would hold stderr open and outlive the task: the job is over.
        _, leftovers = session_rss(proc.pid)
        if leftovers:
            self._kill_session(leftovers)
        tee.join(timeout=5)
        proc.stderr.close()
        wallclock = time.monotonic() - start
        after = children_usage()
        return Outcome(
            returncode=proc.returncode,
            wallclock=wallclock,
            cpu=max(0.0, after.cpu_seconds - before.cpu_seconds),
            maxrss=max(peak, after.maxrss_bytes),
            memory_exceeded=memory_exceeded,
            runtime_exceeded=runtime_exceeded,
            killed_on_request=killed,
            signal_received=signal_received,
            stderr_tail=tee.text(),
        )
