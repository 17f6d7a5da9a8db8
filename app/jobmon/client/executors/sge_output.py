"""What Grid Engine's commands print, parsed: ``qsub -terse``, ``qstat -xml``, ``qstat -j``, ``qacct -j``;
and how a finished job's accounting record becomes a task-instance error (Z resource, U unknown).

Written against Grid Engine 8.1.9 (Debian's gridengine packages, Son of Grid Engine); the fixtures in
tests/unit/fixtures/sge were captured from the testbed. Pure functions: nothing here runs a command.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from jobmon.core.states import TaskInstanceStatus as TI

MIB = 1024 * 1024
# qacct prints sizes with binary multiples and these suffixes ("1.824MB" is 1.824 * 1024**2 bytes).
_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": MIB, "MB": MIB, "G": 1024**3, "GB": 1024**3,
               "T": 1024**4, "TB": 1024**4}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([KMGT]?B?)\s*$", re.IGNORECASE)
# Signals a Grid Engine limit kills with: SIGKILL (h_vmem, h_rt, h_cpu), SIGXCPU (s_cpu, s_vmem),
# SIGUSR1 (s_rt, the default notify signal).
EXIT_SIGKILL = 137
EXIT_SIGXCPU = 152
EXIT_SIGUSR1 = 138
FAILED_LIMIT = 37          # "qmaster enforced h_rt, h_cpu, or h_vmem limit"
FAILED_AFTER_JOB = 100     # "assumedly after job": the job was ended by a signal from execd
# A measured peak this close to the limit counts as having reached it (execd samples, then kills).
LIMIT_SLACK = 0.95


class SgeOutputError(ValueError):
    """Output that does not look like what the command prints."""


# ---- qsub --------------------------------------------------------------------------------------------


def parse_qsub_terse(stdout: str) -> tuple[str, str | None]:
    """``qsub -terse`` prints the job id ("123"), or for an array job "123.1-10:1": (job id, task range)."""
    line = next((ln.strip() for ln in stdout.splitlines() if ln.strip()), "")
    match = re.fullmatch(r"(\d+)(?:\.(\S+))?", line)
    if not match:
        raise SgeOutputError(f"qsub -terse printed no job id: {stdout.strip()[:200]!r}")
    return match.group(1), match.group(2)


# ---- qstat -------------------------------------------------------------------------------------------


def executor_id(job_id: str, task_id: int | None) -> str:
    """Jobmon's executor id of a Grid Engine job, "<job>" or for an array task "<job>.<task>"."""
    return job_id if task_id is None else f"{job_id}.{task_id}"


@dataclass(frozen=True)
class QstatJob:
    """One job, or one task of an array job (``task_id`` set), as ``qstat -xml`` lists it."""

    job_id: str
    task_id: int | None
    state: str
    name: str
    owner: str
    queue: str

    @property
    def executor_id(self) -> str:
        return executor_id(self.job_id, self.task_id)

    @property
    def in_error(self) -> bool:
        """Eqw and friends: the job failed to start and waits for an operator (qmod -cj) forever."""
        return "E" in self.state

    @property
    def deleting(self) -> bool:
        return "d" in self.state


def expand_task_range(text: str, limit: int = 1_000_000) -> list[int]:
    """Array task ids as qstat prints pending ones: "1-10:1", "4,6,8-12:2", "7"."""
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not match:
            raise SgeOutputError(f"not an array task range: {text!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if step < 1 or last < first:
            raise SgeOutputError(f"not an array task range: {text!r}")
        if len(ids) + (last - first) // step + 1 > limit:
            raise SgeOutputError(f"array task range too large: {text!r}")
        ids.extend(range(first, last + 1, step))
    return ids


def parse_qstat_xml(text: str) -> list[QstatJob]:
    """Every job and array task in ``qstat -xml`` output (running ones under queue_info, pending ones
    under job_info; pending array tasks come as ranges and are expanded)."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise SgeOutputError(f"qstat -xml output is not XML: {exc}") from None
    if root.tag != "job_info":
        raise SgeOutputError(f"qstat -xml output has root <{root.tag}>, expected <job_info>")
    jobs: list[QstatJob] = []
    for item in root.iter("job_list"):
        job_id = (item.findtext("JB_job_number") or "").strip()
        if not job_id.isdigit():
            raise SgeOutputError(f"qstat -xml job without a job number: {ET.tostring(item)[:200]!r}")
        state = (item.findtext("state") or "").strip()
        name = (item.findtext("JB_name") or "").strip()
        owner = (item.findtext("JB_owner") or "").strip()
        queue = (item.findtext("queue_name") or "").strip()
        tasks = (item.findtext("tasks") or "").strip()
        if tasks:
            jobs.extend(QstatJob(job_id, task, state, name, owner, queue)
                        for task in expand_task_range(tasks))
        else:
            jobs.append(QstatJob(job_id, None, state, name, owner, queue))
    return jobs


def parse_qstat_j_errors(text: str) -> list[str]:
    """The "error reason" lines of ``qstat -j <id>`` (why a job is in Eqw)."""
    reasons = []
    for line in text.splitlines():
        match = re.match(r"\s*error reason\s+\d*:?\s*(.*)$", line)
        if match and match.group(1).strip():
            reasons.append(match.group(1).strip())
    return reasons


# ---- qacct -------------------------------------------------------------------------------------------


def parse_size(text: str) -> float:
    """A qacct size ("307.734KB", "1.824MB", "0.000B", "5.2G") in the multiple's base unit."""
    match = _SIZE.match(text)
    if not match:
        raise SgeOutputError(f"not a size: {text!r}")
    return float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def parse_seconds(text: str) -> float:
    """A qacct duration: "2s", "0.002s", "5"."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*s?\s*", text)
    if not match:
        raise SgeOutputError(f"not a duration: {text!r}")
    return float(match.group(1))


def parse_memory_request(text: str) -> int | None:
    """A memory request as written in -l ("768M", "1.5G", "1000000"): bytes (base 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)\s*", text)
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def parse_time_request(text: str) -> float | None:
    """A time request as written in -l: seconds ("3600") or "[[H:]M:]S" ("1:00:00")."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = text.split(":")
    if len(parts) in (2, 3) and all(re.fullmatch(r"\d+", p) for p in parts):
        total = 0.0
        for p in parts:
            total = total * 60 + int(p)
        return total
    return None


def parse_category(text: str) -> dict[str, str]:
    """Resource requests from qacct's category ("-l h_rt=60,h_vmem=500M -pe smp 2")."""
    requests: dict[str, str] = {}
    tokens = text.split()
    for i, token in enumerate(tokens):
        if token in ("-l", "-hard") and i + 1 < len(tokens):
            for item in tokens[i + 1].split(","):
                key, _, value = item.partition("=")
                if key and value:
                    requests[key] = value
    return requests


@dataclass(frozen=True)
class AccountingRecord:
    """One job (or array task) in Grid Engine's accounting, as ``qacct -j`` prints it. Sizes in bytes,
    times in seconds."""

    job_id: str
    task_id: int | None
    job_name: str
    hostname: str
    failed: int
    failed_reason: str
    exit_status: int
    wallclock: float
    cpu: float
    maxvmem: int
    maxrss: int
    slots: int
    category: str

    @property
    def executor_id(self) -> str:
        return executor_id(self.job_id, self.task_id)

    def requests(self) -> dict[str, str]:
        return parse_category(self.category)

    def usage(self) -> dict[str, Any]:
        """The fields the State Manager's usage reports take (docs/api.md), plus Grid Engine's own."""
        return {"exit_code": self.exit_status, "wallclock": self.wallclock, "cpu": self.cpu,
                "maxrss": self.maxrss, "maxvmem": self.maxvmem, "failed": self.failed,
                "failed_reason": self.failed_reason, "hostname": self.hostname}


def split_qacct(text: str) -> list[dict[str, str]]:
    """``qacct -j`` records: blocks separated by a line of '=', each line "key value"."""
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if re.fullmatch(r"\s*=+\s*", line):
            current = {}
            records.append(current)
            continue
        if current is None or not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        current[key] = value.strip()
    return [r for r in records if r]


def _int(value: str, default: int = 0) -> int:
    match = re.match(r"\s*(-?\d+)", value or "")
    return int(match.group(1)) if match else default


def parse_qacct(text: str) -> list[AccountingRecord]:
    records = []
    for raw in split_qacct(text):
        if "jobnumber" not in raw:
            raise SgeOutputError(f"qacct record without jobnumber: {sorted(raw)[:10]}")
        failed_text = raw.get("failed", "0")
        failed = _int(failed_text)
        _, _, reason = failed_text.partition(":")
        task = raw.get("taskid", "undefined").strip()
        # ru_maxrss is the kernel's figure in KiB, which qacct prints as if it were bytes.
        maxrss = int(parse_size(raw.get("ru_maxrss", "0")) * 1024)
        cpu_text = raw.get("cpu")
        if cpu_text is not None:
            cpu = parse_seconds(cpu_text)
        else:
            cpu = parse_seconds(raw.get("ru_utime", "0")) + parse_seconds(raw.get("ru_stime", "0"))
        records.append(AccountingRecord(
            job_id=raw["jobnumber"].strip(),
            task_id=int(task) if task.isdigit() else None,
            job_name=raw.get("jobname", "").strip(),
            hostname=raw.get("hostname", "").strip(),
            failed=failed,
            failed_reason=reason.strip(),
            exit_status=_int(raw.get("exit_status", "0")),
            wallclock=parse_seconds(raw.get("ru_wallclock", "0")),
            cpu=cpu,
            maxvmem=int(parse_size(raw.get("maxvmem", "0"))),
            maxrss=maxrss,
            slots=_int(raw.get("slots", "1"), 1),
            category=raw.get("category", "NONE").strip(),
        ))
    return records


# ---- what an accounting record means for the task instance --------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """``status`` Z (resource error: the server retries with more) or U (unknown error)."""

    status: TI
    description: str


def _mib(value: float) -> str:
    return f"{value / MIB:.0f} MiB"


def classify_accounting(record: AccountingRecord, *, memory_limit: int | None = None,
                        runtime_limit: float | None = None) -> Verdict:
    """Why a job ended without its worker reporting. ``memory_limit`` (bytes, the whole job's h_vmem)
    and ``runtime_limit`` (seconds, h_rt) are what the executor requested; when absent they are read from
    the record's category (h_vmem per slot times slots)."""
    requests = record.requests()
    if memory_limit is None and "h_vmem" in requests:
        per_slot = parse_memory_request(requests["h_vmem"])
        memory_limit = per_slot * max(1, record.slots) if per_slot else None
    if runtime_limit is None and "h_rt" in requests:
        runtime_limit = parse_time_request(requests["h_rt"])

    over_memory = bool(memory_limit) and record.maxvmem >= LIMIT_SLACK * float(memory_limit or 0)
    over_runtime = bool(runtime_limit) and record.wallclock >= math.floor(runtime_limit or 0)
    where = f"job {record.executor_id} on {record.hostname or 'an unknown host'}"
    measured = (f"maxvmem {_mib(record.maxvmem)}, max RSS {_mib(record.maxrss)}, "
                f"wallclock {record.wallclock:.0f} s, exit status {record.exit_status}, "
                f"failed {record.failed}{': ' + record.failed_reason if record.failed_reason else ''}")
    killed = record.exit_status in (EXIT_SIGKILL, EXIT_SIGXCPU, EXIT_SIGUSR1)

    if record.failed == FAILED_LIMIT or killed:
        if over_memory:
            return Verdict(TI.RESOURCE_ERROR, (
                f"Grid Engine killed {where}: over its memory limit (h_vmem {_mib(memory_limit or 0)}); "
                f"{measured}"))
        if over_runtime:
            return Verdict(TI.RESOURCE_ERROR, (
                f"Grid Engine killed {where}: over its runtime limit (h_rt {runtime_limit:.0f} s); "
                f"{measured}"))
        if record.failed == FAILED_LIMIT:
            return Verdict(TI.RESOURCE_ERROR,
                           f"Grid Engine killed {where} for a limit (h_rt, h_cpu or h_vmem); {measured}")
        signal_name = {EXIT_SIGKILL: "SIGKILL", EXIT_SIGXCPU: "SIGXCPU", EXIT_SIGUSR1: "SIGUSR1"}[
            record.exit_status]
        return Verdict(TI.RESOURCE_ERROR, (
            f"{where} was killed by {signal_name} before its worker reported: most likely a resource limit "
            f"(memory or runtime) or the kernel's OOM killer, possibly qdel; {measured}"))
    if record.failed not in (0, FAILED_AFTER_JOB):
        return Verdict(TI.UNKNOWN_ERROR, f"Grid Engine could not run {where} (failed {record.failed}: "
                                         f"{record.failed_reason or 'see qacct'}); {measured}")
    if record.exit_status == 0:
        return Verdict(TI.UNKNOWN_ERROR,
                       f"{where} ended (exit status 0) but its worker never reported an outcome; {measured}")
    return Verdict(TI.UNKNOWN_ERROR, f"{where} ended with exit status {record.exit_status} before its worker "
                                     f"reported an outcome; {measured}")


# ---- formatting requests -----------------------------------------------------------------------------


def format_memory_mb(mb: int) -> str:
    """A memory request for -l: MiB as "<n>M"."""
    return f"{max(1, int(mb))}M"


def format_runtime(seconds: float) -> str:
    """A time request for -l as H:MM:SS (rounded up to whole seconds)."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9_.+-]")


def job_name(name: str, limit: int = 200) -> str:
    """A name qsub -N accepts: no whitespace, '/', ':', '@', '\\', '*', '?' (replaced by '_'); not
    starting with a digit."""
    cleaned = _JOB_NAME_BAD.sub("_", name).strip("_.") or "jobmon"
    if cleaned[0].isdigit():
        cleaned = f"j{cleaned}"
    return cleaned[:limit]
