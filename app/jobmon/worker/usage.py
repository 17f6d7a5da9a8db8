"""Memory and CPU of a command's process tree, read from /proc and getrusage (Linux).

The command runs in its own session (``setsid``), so its processes are those whose session id is the
command's pid: that also catches grandchildren whose parent exited, which a parent/child walk would
lose. Processes that start a new session of their own escape the count; Grid Engine's accounting
(qacct) covers those on a cluster.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PROC = "/proc"


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces or ')': split after the last ')'.
    end = data.rfind(b")")
    if end < 0:
        return None
    return data[end + 2:].decode("ascii", "replace").split()


def session_pids(session_id: int) -> list[int]:
    """Pids of live (not zombie) processes in the session."""
    pids: list[int] = []
    try:
        entries = os.listdir(PROC)
    except OSError:
        return pids
    sid = str(session_id)
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        # fields: state, ppid, pgrp, session, ...
        if fields and len(fields) > 3 and fields[3] == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, 0 if it is gone."""
    try:
        with open(f"{PROC}/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def session_rss(session_id: int) -> tuple[int, list[int]]:
    """Summed RSS of the session's processes, and their pids."""
    pids = session_pids(session_id)
    return sum(rss_bytes(pid) for pid in pids), pids


@dataclass(frozen=True)
class ChildUsage:
    cpu_seconds: float
    maxrss_bytes: int


def children_usage() -> ChildUsage:
    """User+system CPU of all waited-for descendants, and the largest RSS any one of them reached
    (Linux reports ru_maxrss in KiB)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ChildUsage(ru.ru_utime + ru.ru_stime, int(ru.ru_maxrss) * 1024)
