"""What every command shares: options, one-line failures and warnings, the output formatter.

Commands stay thin: parse options, call the library, hand the result to :func:`emit`;
their errors go up to the one boundary, :func:`claudeswarm.cli._app.run`. Library modules
are imported inside command bodies so a call pays only for what it uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from claudeswarm.errors import SwarmError, UsageError

if TYPE_CHECKING:
    from datetime import datetime

R = TypeVar("R")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Act as this agent (env CLAUDESWARM_AGENT); refused under another agent's process.",
    ),
]

#: longest error line printed (longer ones lose their middle)
ERROR_MAX = 400

_state: dict[str, Any] = {"state_dir": None}


def set_state_dir(value: str | None) -> None:
    """Remember the global ``--state-dir`` for this invocation."""
    _state["state_dir"] = value


def swarm() -> Any:
    """Open the swarm for this invocation (imports the messaging layer on demand)."""
    from claudeswarm.swarm import open_swarm

    return open_swarm(_state["state_dir"])


def fail(message: str, code: int) -> typer.Exit:
    """Print ``claudeswarm: message`` on stderr; return the Exit to raise.

    The line is made inert (it may echo input) and a huge one loses its middle: an
    error quoting a 100 KB argument still fits a terminal line and keeps its advice.
    """
    from claudeswarm.sanitize import inert

    text = inert(message)
    if len(text) > ERROR_MAX:
        head, tail = ERROR_MAX // 2, ERROR_MAX // 3
        cut = len(text) - head - tail
        text = f"{text[:head]}...({cut} characters cut)...{text[-tail:]}"
    with contextlib.suppress(BrokenPipeError):  # nobody reads it: the exit code still says
        print(f"claudeswarm: {text}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def warn(line: str) -> None:
    """Print ``claudeswarm: warning: line`` on stderr (made inert); the exit code stays."""
    from claudeswarm.sanitize import inert

    with contextlib.suppress(BrokenPipeError):  # nobody reads it: nothing to report to
        print(f"claudeswarm: warning: {inert(line)}", file=sys.stderr, flush=True)


def after_commit(done: str, step: Callable[[], R]) -> R | None:
    """Run a best-effort ``step`` once the command's effect is committed.

    Its failure is one warning line naming what was done, never the exit code: a
    command reports failure only when its effect was not committed, or a retry would
    repeat it (a second message, a second task).
    """
    try:
        return step()
    except (SwarmError, OSError) as exc:
        warn(f"{done}, but {exc}")
        return None


def parsed(name: str, parse: Callable[[str], R]) -> Callable[[Any], R]:
    """A typer ``parser=`` from one of :mod:`claudeswarm.timeutil`'s parsers: its
    :class:`UsageError` becomes click's ``BadParameter``, which names the option.
    ``name`` is what ``--help`` shows as the value (``DURATION``, ``COUNT``, ``WHEN``)."""

    def convert(value: Any) -> R:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]  # a default, already converted
        try:
            return parse(value)
        except UsageError as exc:
            raise typer.BadParameter(str(exc)) from None

    convert.__name__ = name
    return convert


def count(low: int = 0, high: int | None = None) -> Callable[[Any], int]:
    """Parser for a whole number within ``low``..``high`` (default ``MAX_COUNT``)."""

    def parse(text: str) -> int:
        from claudeswarm import timeutil

        return timeutil.parse_count(
            text, low=low, high=timeutil.MAX_COUNT if high is None else high
        )

    return parsed("count", parse)


def _duration(text: str) -> float:
    from claudeswarm.timeutil import parse_duration

    return parse_duration(text)


def _when(text: str) -> datetime:
    from claudeswarm.timeutil import parse_when

    return parse_when(text)


def duration_from(low: float) -> Callable[[Any], float]:
    """Parser for a duration of at least ``low`` seconds."""

    def parse(text: str) -> float:
        from claudeswarm.timeutil import parse_duration

        return parse_duration(text, low=low)

    return parsed("duration", parse)


#: parser for a duration (``90s``, ``10m``, ``1.5``, ``500ms``) in seconds
duration = parsed("duration", _duration)
#: parser for a moment: ``10m`` (ago) or an ISO-8601 time, as an aware UTC datetime
when = parsed("when", _when)


def to_plain(obj: Any) -> Any:
    """Dataclasses, tuples and sets to JSON-ready values."""
    if hasattr(obj, "to_json"):
        return to_plain(obj.to_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_plain(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not f.name.startswith("_")
        }
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_plain(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """One JSON document on stdout; DEL and C1 controls escaped so it is terminal-safe."""
    from claudeswarm.sanitize import json_safe

    print(json_safe(json.dumps(to_plain(obj), ensure_ascii=False, indent=None)))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table (cells made inert)."""
    from claudeswarm.sanitize import inert

    cells = [[inert(str(c)) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def emit(data: Any, as_json: bool, text: Callable[[], str]) -> None:
    """Print ``data`` as JSON, or ``text()`` for people, made inert: it may echo input
    (a title, a reason, a pattern), which must never reach the terminal raw."""
    if as_json:
        print_json(data)
    else:
        out = text()
        if out:
            from claudeswarm.sanitize import inert

            print(inert(out, keep_newlines=True))
