"""The schema layer: every record read back from state is checked here before use.

Parsing (:mod:`claudeswarm._json`) only proves a file is JSON; a record with the wrong
types (``"last_seen": 3``, a list where a number belongs, an offset past any file) would
otherwise travel into code that indexes, hashes or compares it and crash far from the
file. So a stored record is turned into its dataclass by :func:`build`, which checks each
field against the dataclass's own annotations, and other shapes go through
:func:`conform`. Either raises :class:`SchemaError` (a ``ValueError``) naming the field,
which a writer turns into a quarantine and a reader into one skipped record plus one
warning (:func:`skipped`).

Types understood: ``str``, ``int`` (not ``bool``; within 64 bits), ``float`` (an int or a
float, finite), ``bool``, ``None``, unions such as ``str | None``, ``list[X]``,
``tuple[X, ...]`` (a JSON list; returned as a tuple), ``dict[str, X]``, ``Any`` and
nested dataclasses. No third-party validator: this runs on per-call paths (``send``, the
hooks) where importing pydantic would cost more than the whole call.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Point:
...     x: int
...     label: str | None = None
>>> build(Point, {"x": 1})
Point(x=1, label=None)
>>> build(Point, {"x": "1"}, "point")
Traceback (most recent call last):
...
claudeswarm.schema.SchemaError: point: field 'x' is a str, expected int
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import warnings
from typing import Any, TypeVar, Union

from claudeswarm.errors import StateWarning

T = TypeVar("T")
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_hints: dict[type, dict[str, Any]] = {}


class SchemaError(ValueError):
    """A stored record does not have the shape its reader needs."""


def _name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _fields(cls: type) -> dict[str, Any]:
    hints = _hints.get(cls)
    if hints is None:  # evaluated once per class: annotations are strings here
        hints = _hints[cls] = typing.get_type_hints(cls)
    return hints


def conform(value: object, tp: Any, where: str = "record") -> Any:
    """``value`` (parsed JSON) checked against the type ``tp``; lists become tuples where
    ``tp`` says tuple and objects become dataclasses. :class:`SchemaError` otherwise.

    Examples
    --------
    >>> conform({"s|a": [1, 2.5]}, dict[str, list[float]])
    {'s|a': [1, 2.5]}
    >>> conform(["x"], tuple[str, ...])
    ('x',)
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _union(value, typing.get_args(tp), where)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, where)
    if origin in (list, tuple):
        return _sequence(value, tp, where)
    if origin is dict:
        return _mapping(value, typing.get_args(tp), where)
    return _scalar(value, tp, where)


def _union(value: object, options: tuple[Any, ...], where: str) -> Any:
    for option in options:
        if option is type(None) and value is None:
            return None
        try:
            return conform(value, option, where)
        except SchemaError:
            continue
    wanted = " or ".join(
        "null" if o is type(None) else getattr(o, "__name__", str(o)) for o in options
    )
    raise SchemaError(f"{where} is a {_name(value)}, expected {wanted}")


def _sequence(value: object, tp: Any, where: str) -> Any:
    if type(value) is not list:
        raise SchemaError(f"{where} is a {_name(value)}, expected a list")
    args = typing.get_args(tp)
    item = args[0] if args else Any
    out = [conform(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(out) if typing.get_origin(tp) is tuple else out


def _mapping(value: object, args: tuple[Any, ...], where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise SchemaError(f"{where} is a {_name(value)}, expected an object")
    item = args[1] if len(args) == 2 else Any
    return {k: conform(v, item, f"{where}[{k!r}]") for k, v in value.items()}


def _scalar(value: object, tp: Any, where: str) -> Any:
    if tp is type(None) or tp is None:
        if value is None:
            return None
    elif tp is bool:
        if type(value) is bool:
            return value
    elif tp is int:
        if type(value) is int:
            if not INT_MIN <= value <= INT_MAX:
                raise SchemaError(f"{where} is out of range: {value}")
            return value
    elif tp is float:
        if type(value) in (int, float):
            if not math.isfinite(value):  # type: ignore[arg-type]
                raise SchemaError(f"{where} is not a finite number")
            return value
    elif tp is str:
        if type(value) is str:
            return value
    else:  # pragma: no cover - a type this layer was never taught
        raise TypeError(f"schema: unsupported type {tp!r}")
    raise SchemaError(f"{where} is a {_name(value)}, expected {getattr(tp, '__name__', tp)}")


def build(cls: type[T], obj: object, where: str = "", *, strict: bool = False) -> T:
    """An instance of dataclass ``cls`` from the parsed object ``obj``, every field checked
    against its annotation (missing fields take their defaults). Unknown keys are ignored
    (records written by a newer version), or refused with ``strict``."""
    where = where or cls.__name__
    if type(obj) is not dict:
        raise SchemaError(f"{where} is a {_name(obj)}, expected an object")
    hints = _fields(cls)
    if strict and (extra := set(obj) - set(hints)):
        raise SchemaError(f"{where}: unknown field {sorted(extra)[0]!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in obj:
            values[f.name] = conform(obj[f.name], hints[f.name], f"{where}: field {f.name!r}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SchemaError(f"{where}: missing field {f.name!r}")
    return cls(**values)


def skipped(where: str, why: object) -> None:
    """Report one bad record a reader skipped: a :class:`StateWarning`, which the CLI
    turns into one line on stderr (readers never repair; a writer quarantines it)."""
    warnings.warn(StateWarning(f"{where}: skipped a bad record: {why}"), stacklevel=2)
