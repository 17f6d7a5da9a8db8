"""Request bodies and query strings. Each failure raises InvalidInput naming the field.

A JSON route declares its request body and its answer once, as msgspec Structs, with ``@accepts``: the
Struct both validates the request (decoded straight from the bytes, in C) and describes the route in the
OpenAPI document (``jobmon.server.openapi``), so the two cannot disagree. msgspec decodes strictly: a
boolean is never an integer and a number is never a string, unless a field's type says so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgspec
import msgspec.inspect
from flask import Response, request

from jobmon.server.errors import InvalidInput, NotFound

B = TypeVar("B", bound=msgspec.Struct)
A = TypeVar("A", bound=msgspec.Struct)
P = ParamSpec("P")

# The largest id any table can hold (signed 64-bit): larger ones are unknown ids, not values to bind.
ID_MAX = 2**63 - 1


@dataclass(frozen=True)
class Declared:
    """What a view accepts and answers; ``openapi.build_document`` reads it from the view."""

    body: type[msgspec.Struct]
    answer: type[msgspec.Struct]


def accepts(
    body: type[B], *, answers: type[A]
) -> Callable[[Callable[Concatenate[B, P], A]], Callable[P, Response]]:
    """The view receives the request body decoded into ``body`` (an empty request body counts as ``{}``)
    and returns an ``answers`` Struct, sent as JSON."""
    decoder = msgspec.json.Decoder(body)
    encoder = msgspec.json.Encoder()

    def wrap(view: Callable[Concatenate[B, P], A]) -> Callable[P, Response]:
        @functools.wraps(view)
        def handler(*args: P.args, **kwargs: P.kwargs) -> Response:
            decoded = decode(decoder, request.get_data() or b"{}")
            return Response(encoder.encode(view(decoded, *args, **kwargs)), mimetype="application/json")

        handler.declared = Declared(body, answers)  # type: ignore[attr-defined]
        return handler

    return wrap


def declared(view: Callable[..., Any]) -> Declared | None:
    found = getattr(view, "declared", None)
    return found if isinstance(found, Declared) else None


def decode(decoder: msgspec.json.Decoder[B], data: bytes) -> B:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidInput(explain(str(exc), decoder.type)) from None
    except msgspec.DecodeError as exc:
        detail = str(exc).removeprefix("JSON is malformed: ")
        raise InvalidInput(f"request body is not valid JSON ({detail})") from None


# -- msgspec's messages, in the service's words ---------------------------------------------------------

_WHERE = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`(?: in `(?P<container>[^`]*)`)?)?$", re.S)
_TOKEN = re.compile(r"\.(\w+)|\[(\d+|\.\.\.)\]")
_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
               "object": "an object", "array": "a list", "null": "null"}
_BOUNDS = {">=": "must be at least", "<=": "must be at most", ">": "must be greater than",
           "<": "must be less than"}
# Hashes (jobmon.core.hashing makes them) are hex, compared case-insensitively.
HEX_HASH = "^[0-9a-fA-F]{1,64}$"
# Patterns with a better name than themselves.
_PATTERN_NAMES = {HEX_HASH: "must be a hex string of 1 to 64 digits"}


def explain(message: str, body: Any) -> str:
    """``Expected `int` >= 1 - at `$.tasks[3].node_id``` -> ``tasks[3]: field 'node_id' must be at
    least 1``: the item of a list that failed, then the field within it, as the hand-written checks
    before msgspec said it (and tests and clients rely on)."""
    parts = _WHERE.match(message)
    assert parts is not None  # the pattern matches any text
    msg, path, container = parts["msg"], parts["path"], parts["container"]
    tokens = _tokens(container if container else path)
    missing = re.fullmatch(r"Object missing required field `(\w+)`", msg)
    if missing:
        tokens.append(missing[1])
    item, field = _split(tokens)
    where = f"{item}: " if item else ""
    if missing:
        return f"{where}field '{field}' is required"
    predicate = _predicate(msg, body, tokens)
    if predicate is None:  # a check of our own (a Struct's __post_init__) names its field itself
        return f"{where}{field + ': ' if field else ''}{msg}"
    if not field:
        return f"request body {predicate.replace('an object', 'a JSON object')}"
    if container:
        return f"{where}field '{field}' has a name that {predicate}"
    if field.endswith("[...]"):
        return f"{where}field '{field[:-5]}' has a value that {predicate}"
    return f"{where}field '{field}' {predicate}"


def _tokens(path: str | None) -> list[str]:
    return [name or f"[{index}]" for name, index in _TOKEN.findall(path or "")]


def _split(tokens: list[str]) -> tuple[str, str]:
    """(the list item, the field within it): ``tasks[3]`` and ``resources.memory_mb``."""
    last_item = max((i for i, t in enumerate(tokens[:-1]) if t[0] == "[" and tokens[i + 1][0] != "["),
                    default=-1)

    def join(part: list[str]) -> str:
        return "".join(t if t[0] == "[" else f".{t}" for t in part).lstrip(".")

    return join(tokens[:last_item + 1]), join(tokens[last_item + 1:])


def _predicate(msg: str, body: Any, tokens: list[str]) -> str | None:
    if m := re.fullmatch(r"Expected `([^`]+)`, got `(\w+)`", msg):
        wanted = [_TYPE_NAMES.get(t, t) for t in m[1].split(" | ")]
        kinds = ", ".join(wanted[:-1]) + " or " + wanted[-1] if len(wanted) > 1 else wanted[0]
        return f"must be {kinds}" + (", not null" if m[2] == "null" else "")
    if m := re.fullmatch(r"Expected `\w+` (>=|<=|>|<) (\S+)", msg):
        return f"{_BOUNDS[m[1]]} {m[2].removesuffix('.0')}"
    if m := re.fullmatch(r"Expected `(\w+)` of length (>= |<= )?(\d+)", msg):
        kind, op, n = m[1], (m[2] or "").strip(), m[3]
        if kind == "str":
            return {"<=": f"is longer than {n}", ">=": "must not be empty" if n == "1"
                    else f"is shorter than {n}"}.get(op, f"must be {n} characters long")
        unit = "items" if kind == "array" else "entries"
        return {"<=": f"has more than {n} {unit}", ">=": f"has fewer than {n} {unit}"}.get(
            op, f"must have exactly {n} {unit}")
    if m := re.fullmatch(r"Expected `str` matching regex '(.*)'", msg, re.S):
        return _PATTERN_NAMES.get(m[1], f"must match {m[1]}")
    if m := re.fullmatch(r"Invalid enum value (.*)", msg):
        choices = _choices(body, tokens)
        return f"must be one of {choices}" if choices else f"has an unknown value {m[1]}"
    if msg == "Number out of range":
        return "is out of range"
    return None


def _choices(body: Any, tokens: list[str]) -> list[Any] | None:
    """The values a Literal or Enum field at ``tokens`` allows, found by walking the declared types."""
    info: Any = msgspec.inspect.type_info(body)
    for token in tokens:
        while isinstance(info, msgspec.inspect.UnionType):
            info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
        if isinstance(info, msgspec.inspect.StructType) and token[0] != "[":
            info = next((f.type for f in info.fields if f.encode_name == token), None)
        elif isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.DictType)) and token[0] == "[":
            info = info.item_type if isinstance(info, msgspec.inspect.ListType) else info.value_type
        else:
            return None
    if isinstance(info, msgspec.inspect.LiteralType):
        return sorted(info.values)
    if isinstance(info, msgspec.inspect.EnumType):
        return sorted(member.value for member in info.cls)
    return None


# -- query strings and answers ------------------------------------------------------------------------

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
