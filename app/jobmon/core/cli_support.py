"""What every Jobmon entry point shares: argument types, the one log format, and tables for people.

The entry points are ``jobmon``, ``jobmon-server``, ``jobmon-worker``, ``jobmon-reaper``, ``jobmon-qpid`` and
``jobmon-qpid-collector``; the daemons' loop is in ``jobmon.core.daemon``. Standard library only: this runs
on cluster nodes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

# Every process logs in this shape; the program and pid tell a worker's lines from its command's in a
# job's stderr file, and one daemon's lines from another's in a shared log.
LOG_FORMAT = "%(asctime)s {prog}[%(process)d] %(levelname)s %(name)s: %(message)s"

CONFIG_HELP = "TOML file (default: $JOBMON_CONFIG, else /etc/jobmon/jobmon.toml if it exists)"


def setup_logging(prog: str, level: int | str = logging.INFO) -> None:
    """Log to stderr in LOG_FORMAT, unless the process already configured logging (as uWSGI or a test
    runner may have)."""
    logging.basicConfig(level=level, format=LOG_FORMAT.format(prog=prog))


def fail(prog: str, message: object, code: int) -> int:
    """Print ``prog: message`` as one line on stderr and answer ``code``: ``return fail(...)`` in a main()."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


# ---- argument types ------------------------------------------------------------------------------


def int_argument(minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``minimum`` (to ``maximum``), with a message naming the bound."""
    if minimum == 1:
        wanted = "a positive integer"
    elif minimum == 0:
        wanted = "a non-negative integer"
    else:
        wanted = f"an integer of at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {wanted}, got {text!r} (expected an integer)") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {text!r}")
        return value

    return parse


positive_int = int_argument(1)
non_negative_int = int_argument(0)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


# ---- tables --------------------------------------------------------------------------------------


def clean_cell(value: Any, width: int | None = None) -> str:
    """A table cell: "-" for None, no control characters (a name must not break the table or the
    terminal), truncated to ``width`` with an ellipsis."""
    text = "-" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def print_json(answer: Any, out: TextIO) -> None:
    """A service's answer for scripts (``--json``)."""
    out.write(json.dumps(answer, indent=2) + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int],
                out: TextIO) -> None:
    """Columns aligned on the widest cell; the columns numbered in ``numeric`` right-aligned."""
    cells = [[clean_cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if i in numeric else v.ljust(w)
                 for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "  ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
