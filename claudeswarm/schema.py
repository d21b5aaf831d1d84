"""The schema layer: every record read back from state is checked here before use.

Parsing (:mod:`claudeswarm.storage.json`) only proves a file is JSON; a record with the wrong
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
nested dataclasses. Each type is compiled once into a small checking function, so a
check costs about what the ``isinstance`` calls written by hand would. No third-party
validator: this runs on per-call paths (``send``, the hooks) where importing one would
cost more than the whole call.

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
claudeswarm.errors.SchemaError: point: field 'x' is a str, expected an int
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, Union

from claudeswarm.errors import SchemaError, StateWarning

T = TypeVar("T")
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
Check = Callable[[Any], Any]  #: a compiled check: the value back, or SchemaError
_checks: dict[Any, Check] = {}
_plans: dict[type, tuple[tuple[str, Check, bool], ...]] = {}


def _a(name: str) -> str:
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _name(value: object) -> str:
    return "null" if value is None else _a(type(value).__name__)


def _wrong(value: object, expected: str) -> SchemaError:
    return SchemaError(f"is {_name(value)}, expected {expected}")


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
    try:
        return _check(tp)(value)
    except SchemaError as exc:
        raise SchemaError(f"{where} {exc}") from None


def checker(tp: Any, *, strict: bool = False) -> Check:
    """The compiled check for ``tp`` (what :func:`conform` runs): ``check(value)`` returns
    the value or raises :class:`SchemaError` whose text says what is wrong relative to
    the value (``"is a str, expected an int"``), for the caller to say where. For hot
    paths that check many values of one type; ``strict`` refuses unknown fields of a
    dataclass ``tp``.
    """
    if strict and dataclasses.is_dataclass(tp) and isinstance(tp, type):
        cls: type = tp
        return lambda value: _build(cls, value, True)
    return _check(tp)


def build(cls: type[T], obj: object, where: str = "", *, strict: bool = False) -> T:
    """An instance of dataclass ``cls`` from the parsed object ``obj``, every field checked
    against its annotation (missing fields take their defaults). Unknown keys are ignored
    (records written by a newer version), or refused with ``strict``."""
    try:
        return _build(cls, obj, strict)
    except SchemaError as exc:
        raise SchemaError(f"{where or cls.__name__}: {exc}") from None


def skipped(where: str, why: object) -> None:
    """Report one bad record a reader skipped: a :class:`StateWarning`, which the CLI
    turns into one line on stderr (readers never repair; a writer quarantines it)."""
    warnings.warn(StateWarning(f"{where}: skipped a bad record: {why}"), stacklevel=2)


# -- compiling types into checks -----------------------------------------------------------


def _check(tp: Any) -> Check:
    check = _checks.get(tp)
    if check is None:
        check = _checks[tp] = _compile(tp)
    return check


def _compile(tp: Any) -> Check:
    origin = typing.get_origin(tp)
    if tp is Any:
        return lambda value: value
    if origin in (Union, types.UnionType):
        return _union(typing.get_args(tp))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        cls: type = tp
        return lambda value: _build(cls, value, False)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return _sequence(_check(args[0] if args else Any), origin is tuple)
    if origin is dict:
        args = typing.get_args(tp)
        return _mapping(_check(args[1] if len(args) == 2 else Any))
    return _scalar(tp)


def _union(options: tuple[Any, ...]) -> Check:
    nullable = type(None) in options
    checks = [_check(o) for o in options if o is not type(None)]
    names = [getattr(o, "__name__", str(o)) for o in options if o is not type(None)]
    expected = " or ".join([_a(n) for n in names] + (["null"] if nullable else []))

    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        for one in checks:
            try:
                return one(value)
            except SchemaError:
                continue
        raise _wrong(value, expected)

    return check


def _sequence(item: Check, as_tuple: bool) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not list:
            raise _wrong(value, "a list")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except SchemaError as exc:
                raise SchemaError(f"[{i}] {exc}") from None
        return tuple(out) if as_tuple else out

    return check


def _mapping(item: Check) -> Check:
    def check(value: Any) -> Any:
        if type(value) is not dict:
            raise _wrong(value, "an object")
        out = {}
        for k, v in value.items():
            try:
                out[k] = item(v)
            except SchemaError as exc:
                raise SchemaError(f"[{k!r}] {exc}") from None
        return out

    return check


def _int(value: Any) -> Any:
    if type(value) is not int:
        raise _wrong(value, "an int")
    if not INT_MIN <= value <= INT_MAX:
        raise SchemaError(f"is out of range: {value}")
    return value


def _float(value: Any) -> Any:
    if type(value) is not float and type(value) is not int:
        raise _wrong(value, "a number")
    if not math.isfinite(value):
        raise SchemaError("is not a finite number")
    return value


def _exactly(kind: type) -> Check:
    expected = _a(kind.__name__)

    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise _wrong(value, expected)
        return value

    return check


def _scalar(tp: Any) -> Check:
    if tp is int:
        return _int
    if tp is float:
        return _float
    if tp in (str, bool):
        return _exactly(tp)
    if tp is type(None) or tp is None:
        return _exactly(type(None))
    raise TypeError(f"schema: unsupported type {tp!r}")  # a type this layer was never taught


def _plan(cls: type) -> tuple[tuple[str, Check, bool], ...]:
    """Per field of ``cls``: its name, its compiled check, whether it is required."""
    plan = _plans.get(cls)
    if plan is None:  # once per class: annotations are strings until evaluated here
        hints = typing.get_type_hints(cls)
        plan = _plans[cls] = tuple(
            (
                f.name,
                _check(hints[f.name]),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        )
    return plan


def _build(cls: type[T], obj: Any, strict: bool) -> T:
    if type(obj) is not dict:
        raise _wrong(obj, "an object")
    plan = _plan(cls)
    if strict and (extra := obj.keys() - {name for name, _, _ in plan}):
        raise SchemaError(f"unknown field {sorted(extra)[0]!r}")
    values = {}
    for name, check, required in plan:
        if name in obj:
            try:
                values[name] = check(obj[name])
            except SchemaError as exc:
                raise SchemaError(f"field {name!r} {exc}") from None
        elif required:
            raise SchemaError(f"missing field {name!r}")
    return cls(**values)
