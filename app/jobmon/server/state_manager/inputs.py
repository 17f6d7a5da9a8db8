"""Request-body checks particular to the State Manager, built on jobmon.server.validation.

Ranges match the columns (32-bit INT, 64-bit ids, VARCHAR lengths) so a value the database would reject
or silently truncate is refused here with a 400 instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobmon.server.errors import InvalidInput
from jobmon.server.validation import ID_MAX, check_type, field, str_map

INT_MAX = 2**31 - 1
# A report promise longer than this is a bug on the caller's side, not a real job.
MAX_INCREMENT_S = 30 * 86400
# TEXT holds 65,535 bytes; a UTF-8 character takes at most 4 of them.
TEXT_BYTES = 65_535
_HEX = re.compile(r"[0-9a-f]{1,64}")

HASH_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-fA-F]{1,64}$"}
STR_MAP_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": {"type": ["string", "number"]}
}


@contextmanager
def item(where: str) -> Iterator[None]:
    """Prefix errors found inside one list item with its position, e.g. ``tasks[17]: ...``."""
    try:
        yield
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.reason}") from None


def id_field(body: dict[str, Any], name: str, *, default: Any = ...) -> int:
    return field(body, name, int, minimum=1, maximum=ID_MAX, default=default)


def int_field(body: dict[str, Any], name: str, *, minimum: int = 0, default: Any = ...) -> int:
    return field(body, name, int, minimum=minimum, maximum=INT_MAX, default=default)


def id_list(body: dict[str, Any], name: str, *, max_items: int) -> list[int]:
    values = field(body, name, list)
    if len(values) > max_items:
        raise InvalidInput(f"field '{name}' has more than {max_items} items")
    out: list[int] = []
    for i, value in enumerate(values):
        v = check_type(value, int, f"field '{name}[{i}]'")
        if not 1 <= v <= ID_MAX:
            raise InvalidInput(f"field '{name}[{i}]' is not a valid id")
        out.append(v)
    return out


def text_field(
    body: dict[str, Any], name: str, *, max_length: int = 255, default: Any = ..., nonempty: bool = False
) -> str:
    value = field(body, name, str, max_length=max_length, default=default)
    if nonempty and not value:
        raise InvalidInput(f"field '{name}' must not be empty")
    return value


def hash_field(body: dict[str, Any], name: str) -> str:
    return text_field(body, name, max_length=64, nonempty=True)


def bool_field(body: dict[str, Any], name: str, default: bool) -> bool:
    return field(body, name, bool, default=default)


def increment(body: dict[str, Any]) -> float:
    """``next_report_increment``: seconds within which the caller promises to report again."""
    value = field(body, "next_report_increment", float, maximum=MAX_INCREMENT_S)
    if not value > 0:  # written so that NaN (which Python's JSON parser accepts) fails too
        raise InvalidInput("field 'next_report_increment' must be greater than 0")
    return value


def executor_id(body: dict[str, Any], *, required: bool) -> str | None:
    """Grid Engine job ids are numbers, local ones are strings: both are stored as text."""
    value = body.get("executor_id")
    if value is None:
        if required:
            raise InvalidInput("field 'executor_id' is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InvalidInput("field 'executor_id' must be a non-empty string or an integer")
    if len(value) > 64:
        raise InvalidInput("field 'executor_id' is longer than 64")
    return value


def usage(body: dict[str, Any]) -> dict[str, Any]:
    """The usage a worker reports at the end of an attempt; only the fields present are stored."""
    out: dict[str, Any] = {}
    if body.get("exit_code") is not None:
        out["exit_code"] = field(body, "exit_code", int, minimum=-INT_MAX, maximum=INT_MAX)
    for name in ("wallclock", "cpu"):
        if body.get(name) is not None:
            value = field(body, name, float, minimum=0, maximum=1e12)
            if math.isnan(value):
                raise InvalidInput(f"field '{name}' must be a number")
            out[name] = value
    for name in ("maxrss", "maxpss"):
        if body.get(name) is not None:
            out[name] = field(body, name, int, minimum=0, maximum=ID_MAX)
    return out


USAGE_SCHEMA: dict[str, Any] = {
    "exit_code": {"type": ["integer", "null"]},
    "wallclock": {"type": ["number", "null"], "minimum": 0, "description": "seconds"},
    "cpu": {"type": ["number", "null"], "minimum": 0, "description": "CPU seconds"},
    "maxrss": {"type": ["integer", "null"], "minimum": 0, "description": "bytes"},
    "maxpss": {"type": ["integer", "null"], "minimum": 0, "description": "bytes"},
}


def hex_hash(body: dict[str, Any], name: str) -> str:
    """Hashes are hex strings compared case-insensitively (MariaDB's collation would anyway)."""
    value = field(body, name, str).lower()
    if not _HEX.fullmatch(value):
        raise InvalidInput(f"field '{name}' must be a hex string of 1 to 64 digits")
    return value


def fits_text(value: str) -> bool:
    return len(value) <= TEXT_BYTES // 4 or len(value.encode()) <= TEXT_BYTES


def text_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """A name -> value object whose values fit a TEXT column."""
    values = str_map(body, name, default={})
    for key, value in values.items():
        if not key:
            raise InvalidInput(f"field '{name}' has an empty name")
        if not fits_text(value):
            raise InvalidInput(f"field '{name}.{key}' is longer than {TEXT_BYTES} bytes")
    return values
