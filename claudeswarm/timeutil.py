"""Parsing what people type: durations (``90s``, ``10m``, ``2h``, ``1d``), moments (``10m``
ago or ISO-8601) and counts, each within a range.

Every duration, time and count the CLI takes goes through these three functions, so a
value out of range is one :class:`UsageError` naming the accepted range, never an
``OverflowError`` from the arithmetic done with it later.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from claudeswarm.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_COUNT_RE = re.compile(r"[-+]?\d+")

#: the longest duration accepted anywhere (~31 years): leases, waits, "10m ago"
MAX_SECONDS = 1e9
#: the largest count accepted anywhere (message counts, ring sizes)
MAX_COUNT = 10**9
#: times are accepted within these bounds (UTC)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def parse_duration(
    text: str, *, low: float = 0.0, high: float = MAX_SECONDS, what: str = "duration"
) -> float:
    """Seconds in ``text``: a number with an optional unit (ms, s, m, h, d; default s),
    within ``low``..``high`` seconds.

    Examples
    --------
    >>> parse_duration("10m"), parse_duration("1.5"), parse_duration("250ms")
    (600.0, 1.5, 0.25)
    >>> parse_duration("99999999999d")
    Traceback (most recent call last):
    claudeswarm.errors.UsageError: duration '99999999999d' is out of range: use 0s to 11574d
    """
    m = _DURATION_RE.fullmatch(text.strip().lower())
    if not m:
        raise UsageError(f"invalid {what} {text!r}: use e.g. 30s, 10m, 2h, 1d")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not low <= seconds <= high:
        raise UsageError(f"{what} {text!r} is out of range: use {_span(low)} to {_span(high)}")
    return seconds


def parse_count(text: str, *, low: int = 0, high: int = MAX_COUNT, what: str = "count") -> int:
    """The whole number in ``text``, within ``low``..``high``.

    Examples
    --------
    >>> parse_count("20")
    20
    >>> parse_count("-1", what="-n")
    Traceback (most recent call last):
    claudeswarm.errors.UsageError: -n '-1' is out of range: use 0 to 1000000000
    """
    digits = text.strip()
    if not _COUNT_RE.fullmatch(digits):
        raise UsageError(f"invalid {what} {text!r}: use a whole number from {low} to {high}")
    value = int(digits) if len(digits) <= 20 else None  # int() refuses 4,300 digits
    if value is None or not low <= value <= high:
        raise UsageError(f"{what} {text!r} is out of range: use {low} to {high}")
    return value


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from a duration ago (``10m``) or an ISO-8601 time, between
    :data:`EARLIEST` and :data:`LATEST`. A time without a zone is taken as local time.

    Examples
    --------
    >>> parse_when("2026-11-22T10:00Z").isoformat()
    '2026-11-22T10:00:00+00:00'
    >>> parse_when("0001-01-01")
    Traceback (most recent call last):
    claudeswarm.errors.UsageError: time '0001-01-01' is out of range: use 1970-01-01 to 9998-12-31
    """
    now = now or datetime.now(UTC)
    if _DURATION_RE.fullmatch(text.strip().lower()):
        moment: datetime | None = now - timedelta(seconds=parse_duration(text, what="time ago"))
    else:
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"invalid time {text!r}: use 10m (ago) or 2026-11-22T10:00") from None
        moment = _utc(parsed)
    if moment is None or not EARLIEST <= moment < LATEST:
        raise UsageError(f"time {text!r} is out of range: use 1970-01-01 to 9998-12-31")
    return moment


def _utc(moment: datetime) -> datetime | None:
    """``moment`` in UTC (without a zone: local time), or ``None`` if that conversion
    leaves the years datetime can hold (near year 1 or 9999)."""
    try:
        return (moment if moment.tzinfo else moment.astimezone()).astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _span(seconds: float) -> str:
    """A range bound: :func:`age`, or milliseconds below a second (``200ms``)."""
    return f"{seconds * 1000:g}ms" if 0 < seconds < 1 else age(seconds)


def age(seconds: float) -> str:
    """Short human age: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
