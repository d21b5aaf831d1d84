"""Strict JSON: the one place records are parsed.

Rejects what ``json.loads`` would accept silently and what it would crash on: duplicate
keys (last-wins hides tampering), NaN and Infinity, invalid UTF-8 and nesting deep enough
to raise ``RecursionError``. Every rejection is a :class:`ValueError` with a short reason.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_MAX_DEPTH = 64


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


_decoder = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_no_constants)


def _too_deep(text: str) -> bool:
    # Cheap pre-check: only texts with many openers can be deep; count the real depth.
    if text.count("[") + text.count("{") <= _MAX_DEPTH:
        return False
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def loads(data: bytes | str) -> Any:
    """Parse one JSON document strictly; raise ``ValueError`` with a reason on refusal.

    Examples
    --------
    >>> loads(b'{"a": 1}')
    {'a': 1}
    >>> loads(b'{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    ValueError: duplicate key
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 at byte {exc.start}") from None
    if _too_deep(text):
        raise ValueError(f"nesting deeper than {_MAX_DEPTH}")
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise ValueError("nesting too deep") from None


def loads_record(data: bytes) -> Any:
    """Parse one log line: orjson when the line is in the canonical form our writers
    produce, else the strict stdlib path above.

    orjson is strict (no NaN, valid UTF-8 only, bounded nesting) but keeps the last of
    duplicate keys. A line that re-serialises to exactly its own bytes cannot hold a
    duplicate key (dropping one would shorten it), so only non-canonical lines, which our
    writers never produce, pay for the strict parser and its duplicate check.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return loads(data)  # raises ValueError with the precise reason
    if orjson.dumps(obj) != data:
        return loads(data)
    return obj


def dumps_record(obj: Any) -> bytes:
    """Canonical compact UTF-8 JSON for a log record (what :func:`loads_record` expects)."""
    return orjson.dumps(obj)


def dumps(obj: Any) -> str:
    """Compact, UTF-8-preserving, NaN-refusing JSON text."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
