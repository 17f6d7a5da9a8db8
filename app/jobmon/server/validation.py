"""Checks on request bodies and query strings. Each failure raises InvalidInput naming the field."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import request

from jobmon.server.errors import InvalidInput, NotFound

T = TypeVar("T")

# The largest id any table can hold (signed 64-bit): larger ones are unknown ids, not values to bind.
ID_MAX = 2**63 - 1

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
               dict: "an object", list: "a list"}


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying why it is not one."""
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidInput("request body is not valid JSON")
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


def check_type(value: Any, kind: type[T], where: str) -> T:
    # bool is an int in Python; JSON true is never an id or a count.
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value]
    if not ok:
        raise InvalidInput(f"{where} must be {_TYPE_NAMES.get(kind, kind.__name__)}")
    return value  # type: ignore[no-any-return]


def field(
    body: dict[str, Any],
    name: str,
    kind: type[T],
    *,
    default: Any = ...,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Collection[Any] | None = None,
    max_length: int | None = None,
) -> T:
    """One field of a body: present (unless a default is given), of the right type and range."""
    if name not in body or body[name] is None:
        if default is ...:
            raise InvalidInput(f"field '{name}' is required")
        return default  # type: ignore[no-any-return]
    value = check_type(body[name], kind, f"field '{name}'")
    if minimum is not None and value < minimum:  # type: ignore[operator]
        raise InvalidInput(f"field '{name}' must be at least {minimum}")
    if maximum is not None and value > maximum:  # type: ignore[operator]
        raise InvalidInput(f"field '{name}' must be at most {maximum}")
    if choices is not None and value not in choices:
        raise InvalidInput(f"field '{name}' must be one of {sorted(choices)}")
    if max_length is not None and len(value) > max_length:  # type: ignore[arg-type]
        raise InvalidInput(f"field '{name}' is longer than {max_length}")
    return value


def list_field(body: dict[str, Any], name: str, item: type[T], *, max_items: int = 100_000,
               default: Any = ...) -> list[T]:
    values = field(body, name, list, default=default)
    if len(values) > max_items:
        raise InvalidInput(f"field '{name}' has more than {max_items} items")
    return [check_type(v, item, f"field '{name}[{i}]'") for i, v in enumerate(values)]


def str_map(body: dict[str, Any], name: str, *, default: Any = ...) -> dict[str, str]:
    """A JSON object of name -> value; values are stored as text, so numbers are accepted and printed."""
    values = field(body, name, dict, default=default)
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, (dict, list)) or value is None:
            raise InvalidInput(f"field '{name}.{key}' must be a string or number")
        if len(key) > 255:
            raise InvalidInput(f"field '{name}' has a name longer than 255")
        out[key] = value if isinstance(value, str) else str(value)
    return out


def query_int(name: str, default: int | None = None, minimum: int | None = 0,
              maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter '{name}' must be an integer") from None
    if minimum is not None and value < minimum:
        raise InvalidInput(f"query parameter '{name}' must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"query parameter '{name}' must be at most {maximum}")
    return value


def iso(value: datetime | None) -> str | None:
    """Timestamps leave the service as ISO 8601, naive UTC."""
    return value.isoformat() if value is not None else None


def check_id(value: int, kind: str) -> int:
    if value > ID_MAX:
        raise NotFound(f"{kind} {value} not found")
    return value


def query_datetime(name: str) -> datetime | None:
    """An ISO 8601 query parameter as a naive UTC datetime (the form the database stores)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise InvalidInput(f"query parameter '{name}' must be an ISO 8601 timestamp") from None
    return value
