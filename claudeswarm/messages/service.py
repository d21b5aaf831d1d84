"""Send, broadcast, read: the message API every other part stands on.

The library returns records; the CLI formats them. Validation happens before anything is
written, the rate limiter is checked next (a refused send logs nothing), and only then
is the record appended to the log, which is the truth.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from claudeswarm.agents import caller, registry
from claudeswarm.config import Settings
from claudeswarm.errors import CorruptRecordError, InvalidArgumentError, SwarmError, UsageError
from claudeswarm.messages.record import (
    BROADCAST,
    MESSAGE_TYPES,
    MessageRecord,
    check_name,
    format_ts,
    new_id,
)
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.paths import ensure_state
from claudeswarm.swarm import Swarm

if TYPE_CHECKING:  # the tailer is imported only by readers: senders do not pay for it
    from claudeswarm.storage.files.retention_ledger import Loss
    from claudeswarm.storage.files.tailer import Cursor, Gap, LineQuarantine, LogTailer

Clock = Callable[[], float]
SYSTEM_SENDER = "claudeswarm"
_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


# -- composing ----------------------------------------------------------------------------


def check_body(body: str, settings: Settings) -> str:
    """Return ``body`` if sendable, else raise :class:`UsageError` saying why."""
    if not body.strip():
        raise UsageError("message body is empty")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("message body is not valid UTF-8") from None
    if size > settings.body_max_bytes:
        raise UsageError(
            f"message body is {size} bytes; the limit is {settings.body_max_bytes} "
            "(setting body_max_bytes)"
        )
    return body


def check_type(mtype: str) -> str:
    """Return ``mtype`` if it is one of :data:`MESSAGE_TYPES`."""
    if mtype not in MESSAGE_TYPES:
        raise UsageError(f"unknown message type {mtype!r}; use one of {', '.join(MESSAGE_TYPES)}")
    return mtype


def check_sender(name: str) -> str:
    """Return ``name`` if it may send (valid, not the reserved system name)."""
    try:
        check_name(name, "sender name")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if name == SYSTEM_SENDER:
        raise UsageError(f"{SYSTEM_SENDER!r} is reserved for messages from claudeswarm itself")
    return name


def check_recipients(swarm: Swarm, sender: str, to: Sequence[str]) -> tuple[str, ...]:
    """Deduplicate and validate recipients against the registry."""
    if not to:
        raise UsageError("no recipient given")
    names = tuple(dict.fromkeys(to))
    known = registry.load(swarm.paths)
    for name in names:
        if name == BROADCAST:
            raise UsageError("to reach everyone use 'claudeswarm broadcast'")
        try:
            check_name(name, "recipient")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if name == sender:
            raise UsageError("cannot send a message to yourself")
        if name not in known:
            hint = ", ".join(sorted(known)[:8]) or "none yet (agents register with 'join')"
            raise UsageError(f"unknown recipient {name!r}; known agents: {hint}")
    return names


def _check_reply_to(reply_to: str | None) -> str | None:
    if reply_to is not None and not _ID_RE.fullmatch(reply_to):
        raise InvalidArgumentError("reply_to", f"{reply_to!r} is not a message id")
    return reply_to


def _record(
    swarm: Swarm, sender: str, to: tuple[str, ...], body: str, mtype: str, reply_to: str | None
) -> MessageRecord:
    now = swarm.clock()
    return MessageRecord(new_id(now), format_ts(now), sender, to, mtype, body, reply_to)


# -- sending ------------------------------------------------------------------------------


def send(
    swarm: Swarm,
    sender: str,
    to: Sequence[str],
    body: str,
    *,
    type: str = "info",
    reply_to: str | None = None,
) -> MessageRecord:
    """Validate, rate-limit, then append one message. Returns the logged record.

    Raises :class:`UsageError` for bad input and :class:`RateLimitedError` when refused;
    in both cases nothing is logged.
    """
    from claudeswarm.messages.ratelimit import RateLimiter

    check_sender(sender)
    check_type(type)
    check_body(body, swarm.settings)
    names = check_recipients(swarm, sender, to)
    _check_reply_to(reply_to)
    RateLimiter(swarm.paths, swarm.settings, swarm.clock).acquire(sender, names, body)
    rec = _record(swarm, sender, names, body, type, reply_to)
    swarm.log.append(rec)
    return rec


def broadcast(
    swarm: Swarm, sender: str, body: str, *, type: str = "info", reply_to: str | None = None
) -> MessageRecord:
    """Send one message to every agent (``to = ["all"]``)."""
    from claudeswarm.messages.ratelimit import RateLimiter

    check_sender(sender)
    check_type(type)
    check_body(body, swarm.settings)
    _check_reply_to(reply_to)
    RateLimiter(swarm.paths, swarm.settings, swarm.clock).acquire(sender, (BROADCAST,), body)
    rec = _record(swarm, sender, (BROADCAST,), body, type, reply_to)
    swarm.log.append(rec)
    return rec


def announce(
    swarm: Swarm, body: str, *, type: str = "system", to: Sequence[str] = (BROADCAST,)
) -> MessageRecord:
    """A message from claudeswarm itself (task events, broken leases). Not rate limited:
    it reports something that already happened."""
    check_type(type)
    rec = _record(
        swarm, SYSTEM_SENDER, tuple(to), body[: swarm.settings.body_max_bytes], type, None
    )
    swarm.log.append(rec)
    return rec


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxResult:
    """What ``inbox`` showed, and how many unread messages it left for next time.

    ``lost``: messages to this agent that retention deleted before it read them (reported
    by the inbox that moves past them, so once; a peek reports without moving).
    """

    agent: str
    messages: list[MessageRecord]
    more: int = 0
    quarantined: int = 0
    #: what failed after the messages were marked read (they are shown all the same)
    warnings: tuple[str, ...] = ()
    lost: Loss | None = None


def _cursor_path(swarm: Swarm, agent: str) -> tuple[Path, Path]:
    swarm.paths.dir("cursors", create=True)
    return swarm.paths.file("cursors", f"{agent}.json"), swarm.paths.file(
        "cursors", f"{agent}.lock"
    )


def load_cursor(swarm: Swarm, agent: str) -> Cursor | None:
    """The agent's saved read position, or ``None`` (corrupt cursors are quarantined:
    reading starts again from the oldest retained message, never skips one)."""
    from claudeswarm.storage.files.tailer import Cursor

    path, _ = _cursor_path(swarm, agent)
    try:
        raw = _atomic.read_json(path, None)
        return None if raw is None else Cursor.from_json(raw, f"cursor of {agent}")
    except (ValueError, CorruptRecordError) as exc:
        why = exc.reason if isinstance(exc, CorruptRecordError) else str(exc)
        _atomic.quarantine_file(path, swarm.paths, f"unreadable cursor: {why}")
        return None


def _save_cursor(swarm: Swarm, agent: str, cursor: Cursor) -> None:
    path, _ = _cursor_path(swarm, agent)
    # not fsynced: after a power cut the worst case re-shows read messages, never hides any
    _atomic.write_json(path, cursor.__dict__, durable=False)


def _tailer(swarm: Swarm, cursor: Cursor | None, quarantine: LineQuarantine) -> LogTailer:
    from claudeswarm.storage.files.tailer import LogTailer, max_line_bytes

    return LogTailer(
        swarm.paths,
        cursor,
        on_bad=quarantine,
        max_line=max_line_bytes(swarm.settings.body_max_bytes),
    )


def inbox(swarm: Swarm, agent: str, *, limit: int | None = None, peek: bool = False) -> InboxResult:
    """Unread messages for ``agent``, oldest first.

    The cursor moves only past what was shown: with ``limit=N`` the oldest N unread are
    returned and the rest stay unread (``more`` counts them). ``peek`` moves nothing.
    """
    if limit is not None and limit < 1:
        raise InvalidArgumentError("limit", f"must be at least 1, not {limit}")
    from claudeswarm.storage.files.tailer import LineQuarantine

    ensure_state(swarm.paths)
    _, lock = _cursor_path(swarm, agent)
    quarantine = LineQuarantine(swarm.paths)
    with _atomic.flocked(lock):
        start = load_cursor(swarm, agent)
        shown: list[MessageRecord] = []
        more = 0
        stop_at: Cursor | None = None
        with _tailer(swarm, start, quarantine) as tail:
            gaps = _never_read(tail, start)
            for rec in tail:
                if not rec.addressed_to(agent):
                    continue
                if limit is not None and len(shown) >= limit:
                    more += 1
                    continue
                shown.append(rec)
                stop_at = tail.cursor
            end = stop_at if more else tail.cursor
            gaps += tail.skipped
        lost = _lost(swarm, agent, gaps)
        if not peek and end is not None and end != start:
            _save_cursor(swarm, agent, end)
    warnings: tuple[str, ...] = ()
    if shown and not peek:
        try:
            record_reads(swarm, agent, [r.id for r in shown])
        except (OSError, SwarmError) as exc:  # marked read: they must be shown now
            warnings = (f"{len(shown)} message(s) read, but no read receipt written: {exc}",)
    return InboxResult(agent, shown, more, quarantine.count, warnings, lost)


def _never_read(tail: LogTailer, start: Cursor | None) -> list[Gap]:
    """An agent without a cursor starts at the oldest archive kept: what retention
    deleted before it (counted while it had no cursor) is a gap too."""
    from claudeswarm.storage.files.tailer import Gap

    return [Gap.never_read(tail)] if start is None else []


def _lost(swarm: Swarm, agent: str, gaps: list[Gap]) -> Loss | None:
    """What the gaps cost ``agent`` (the retention ledger is read only if there are any)."""
    if not gaps:
        return None
    from claudeswarm.storage.files import retention_ledger

    return retention_ledger.loss(swarm.paths, gaps, agent)


def record_reads(swarm: Swarm, agent: str, ids: Iterable[str]) -> None:
    """Append a read receipt (what ``status`` reports as "read") with the append protocol."""
    entry = {"agent": agent, "ts": format_ts(swarm.clock()), "ids": list(ids)}
    paths = swarm.paths
    _atomic.append_records(paths.file("receipts.jsonl"), paths.file("receipts.lock"), [entry])


def history(swarm: Swarm, agent: str, *, limit: int | None = None) -> list[MessageRecord]:
    """Every retained message addressed to ``agent``, read or not (moves no cursor)."""
    from claudeswarm.storage.files.tailer import max_line_bytes, read_recent

    return read_recent(
        swarm.paths,
        limit or 10**9,
        lambda r: r.addressed_to(agent),
        max_line=max_line_bytes(swarm.settings.body_max_bytes),
    )


def recent(
    swarm: Swarm, limit: int, keep: Callable[[MessageRecord], bool] = lambda r: True
) -> list[MessageRecord]:
    """The newest ``limit`` records passing ``keep``, oldest first."""
    from claudeswarm.storage.files.tailer import max_line_bytes, read_recent

    return read_recent(
        swarm.paths, limit, keep, max_line=max_line_bytes(swarm.settings.body_max_bytes)
    )


def end_cursor(swarm: Swarm) -> Cursor | None:
    """The current end of the log: where a follower that starts now begins."""
    from claudeswarm.storage.files.tailer import LogTailer

    with LogTailer(swarm.paths, None, start="end") as tail:
        return tail.cursor


def follow(
    swarm: Swarm,
    keep: Callable[[MessageRecord], bool],
    *,
    poll: float = 0.2,
    cursor: Cursor | None = None,
    skip: frozenset[str] = frozenset(),
    stop: Callable[[], bool] = lambda: False,
    on_gap: Callable[[Loss], None] = lambda lost: None,
) -> Iterator[MessageRecord]:
    """Yield records passing ``keep`` appended after ``cursor`` (default: from now on),
    except ids in ``skip`` (already shown), until ``stop()``.

    Rotated logs that retention deleted before this follower read them are passed to
    ``on_gap`` (before the first record after them), never skipped silently.
    """
    from claudeswarm.storage.files.tailer import LineQuarantine, LogTailer, max_line_bytes

    quarantine = LineQuarantine(swarm.paths)
    with LogTailer(
        swarm.paths,
        cursor,
        start="end",
        on_bad=quarantine,
        max_line=max_line_bytes(swarm.settings.body_max_bytes),
    ) as tail:
        told = 0
        while not stop():
            got = False
            for rec in tail:
                got = True
                told = _tell_gaps(swarm, tail, told, on_gap)
                if keep(rec) and rec.id not in skip:
                    yield rec
            told = _tell_gaps(swarm, tail, told, on_gap)
            if not got:
                time.sleep(poll)


def _tell_gaps(swarm: Swarm, tail: LogTailer, told: int, on_gap: Callable[[Loss], None]) -> int:
    """Pass gaps the tailer jumped since the first ``told`` to ``on_gap``; the new count."""
    if len(tail.skipped) == told:
        return told
    from claudeswarm.storage.files import retention_ledger

    lost = retention_ledger.loss(swarm.paths, tail.skipped[told:])
    if lost is not None:
        on_gap(lost)
    return len(tail.skipped)


def resolve_sender(swarm: Swarm, as_name: str | None) -> str:
    """Who is calling: the registered agent among this process's ancestors; outside
    every agent, ``--as``, else ``CLAUDESWARM_AGENT``, else this pane's agent.

    Naming another agent from under an agent's process (or from a registered pane) is
    refused: see :mod:`claudeswarm.agents.caller`.
    """
    claimed = as_name or os.environ.get("CLAUDESWARM_AGENT") or None
    agents = registry.load(swarm.paths)
    return check_sender(caller.resolve(agents, claimed, registry.current_pane()))
