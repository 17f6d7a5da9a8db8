"""Field types shared by the State Manager's request bodies (each route declares its own body next to it).

Ranges match the columns (32-bit INT, 64-bit ids, VARCHAR lengths) so a value the database would reject
or silently truncate is refused with a 400 instead. A TEXT column holds 65,535 bytes, which a type cannot
say in characters: the Structs holding such text check its bytes in ``__post_init__``.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from jobmon.server.validation import HEX_HASH, ID_MAX

INT_MAX = 2**31 - 1
# A report promise longer than this is a bug on the caller's side, not a real job.
MAX_INCREMENT_S = 30 * 86400
# TEXT holds 65,535 bytes; a UTF-8 character takes at most 4 of them.
TEXT_BYTES = 65_535

Id = Annotated[int, Meta(ge=1, le=ID_MAX)]
Count = Annotated[int, Meta(ge=0, le=INT_MAX)]
Positive = Annotated[int, Meta(ge=1, le=INT_MAX)]
Hash = Annotated[str, Meta(pattern=HEX_HASH, description="hex, compared case-insensitively")]
Name = Annotated[str, Meta(max_length=255)]
NonEmptyName = Annotated[str, Meta(min_length=1, max_length=255)]
Text = Annotated[str, Meta(max_length=TEXT_BYTES, description=f"at most {TEXT_BYTES} bytes of UTF-8")]
Increment = Annotated[float, Meta(
    gt=0, le=MAX_INCREMENT_S,
    description="seconds until the next report; the deadline is the database's now + this",
)]
# Stored as text: numbers and booleans are accepted and stored as Python prints them.
ArgValue = str | int | float | bool
ArgMap = dict[Annotated[str, Meta(min_length=1, max_length=255)], ArgValue]


def fits_text(value: str) -> bool:
    return len(value) <= TEXT_BYTES // 4 or len(value.encode()) <= TEXT_BYTES


def check_text(value: str, name: str) -> None:
    if not fits_text(value):
        raise ValueError(f"field '{name}' is longer than {TEXT_BYTES} bytes")


def store_as_text(values: dict[str, ArgValue], name: str) -> None:
    """A name -> value map made as it is stored, in place: each value text that fits a TEXT column."""
    for key, value in values.items():
        text = value if isinstance(value, str) else str(value)
        if not fits_text(text):
            raise ValueError(f"field '{name}.{key}' is longer than {TEXT_BYTES} bytes")
        if text is not value:
            values[key] = text


class Usage(Struct, kw_only=True):
    """What a worker measured of an attempt; only the fields given (and not null) are stored."""

    exit_code: Annotated[int, Meta(ge=-INT_MAX, le=INT_MAX)] | None = None
    wallclock: Annotated[float, Meta(ge=0, le=1e12, description="seconds")] | None = None
    cpu: Annotated[float, Meta(ge=0, le=1e12, description="CPU seconds")] | None = None
    maxrss: Annotated[int, Meta(ge=0, le=ID_MAX, description="bytes")] | None = None
    maxpss: Annotated[int, Meta(ge=0, le=ID_MAX, description="bytes")] | None = None

    def usage(self) -> dict[str, int | float]:
        values = {"exit_code": self.exit_code, "wallclock": self.wallclock, "cpu": self.cpu,
                  "maxrss": self.maxrss, "maxpss": self.maxpss}
        return {name: value for name, value in values.items() if value is not None}


class HeartbeatBody(Struct):
    """A run's client or an instance's worker is alive and promises to report again within the increment."""

    next_report_increment: Increment


class Empty(Struct):
    """No fields: ``{}`` or an empty body."""


class Ignorable(Struct, kw_only=True, omit_defaults=True):
    """An answer that may say a late or repeated report was ignored (``"ignored": true``; left out
    otherwise)."""

    ignored: bool = False
