"""Durations (``90s``, ``10m``, ``2h``, ``1d``) and moments (``10m`` ago or ISO-8601)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from claudeswarm.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit (ms, s, m, h, d; default s).

    Examples
    --------
    >>> parse_duration("10m"), parse_duration("1.5"), parse_duration("250ms")
    (600.0, 1.5, 0.25)
    """
    m = _DURATION_RE.fullmatch(text.strip().lower())
    if not m:
        raise UsageError(f"invalid duration {text!r}: use e.g. 30s, 10m, 2h, 1d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from a duration ago (``10m``) or an ISO-8601 time.

    A time without a zone is taken as local time.
    """
    now = now or datetime.now(UTC)
    if _DURATION_RE.fullmatch(text.strip().lower()):
        return now - timedelta(seconds=parse_duration(text))
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"invalid time {text!r}: use 10m (ago) or 2026-11-22T10:00") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return moment.astimezone(UTC)


def age(seconds: float) -> str:
    """Short human age: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
