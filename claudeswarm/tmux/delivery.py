"""Nudges and honest delivery status (the light half; :mod:`claudeswarm.tmux.nudger` types).

The log is the truth; a pane only gets a nudge: one sanitised line naming the sender and
type with a short preview and ``claudeswarm inbox``, then Enter. ``send`` must stay fast,
so after the record is logged it only decides whether anyone could be nudged and, if so,
starts a detached nudger process (``python -m claudeswarm.tmux.nudger``) that does the tmux
work; ``send`` never waits for tmux and never imports it.

Every nudge outcome is appended to ``nudges.jsonl`` (append protocol) and every read to
``receipts.jsonl``; :func:`status` joins them per recipient: logged, nudged, read. A nudge
is never reported as "delivered": tmux accepting keys says nothing about who saw them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from claudeswarm.agents import registry
from claudeswarm.agents.registry import AgentRecord
from claudeswarm.errors import UsageError
from claudeswarm.messages.record import BROADCAST, MessageRecord, format_ts
from claudeswarm.sanitize import preview
from claudeswarm.storage import json as _json
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.swarm import Swarm

MODES = ("always", "idle", "never")
HEURISTICS = ("screen", "none")
HINT = "read it: claudeswarm inbox"
NUDGER = (sys.executable, "-m", "claudeswarm.tmux.nudger")
OUTCOMES = ("nudged", "pending", "skipped", "failed")
T = TypeVar("T")


def mode(swarm: Swarm) -> str:
    """The ``nudge`` setting, checked."""
    value = swarm.settings.nudge
    if value not in MODES:
        raise UsageError(f"setting nudge is {value!r}; use one of {', '.join(MODES)}")
    if swarm.settings.idle_heuristic not in HEURISTICS:
        raise UsageError(
            f"setting idle_heuristic is {swarm.settings.idle_heuristic!r}; "
            f"use one of {', '.join(HEURISTICS)}"
        )
    _check_regexes("busy_screen_patterns", swarm.settings.busy_screen_patterns)
    _check_regexes("agent_patterns", [p.partition("=")[2] for p in swarm.settings.agent_patterns])
    return value


def _check_regexes(setting: str, patterns: Iterable[str]) -> None:
    import re

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"setting {setting}: bad regex {pattern!r}: {exc}") from None


def nudge_line(rec: MessageRecord, limit: int, waiting: int = 1) -> str:
    """The one line typed into a recipient's pane.

    Only printable characters: :func:`~claudeswarm.sanitize.preview` turns controls, ESC
    and newlines into spaces. The line ends with the fixed hint, never with a ``;`` from
    the body. The preview sits in single quotes with any quote removed, so even typed
    into a shell by mistake nothing from the message is expanded or run (the line starts
    with the unknown command ``claudeswarm:``, not with a glob or a prompt prefix such as
    ``#``, ``/`` or ``!`` that agent prompts treat specially).

    Examples
    --------
    >>> from claudeswarm.messages.record import MessageRecord
    >>> r = MessageRecord("01J", "2026-01-01T00:00:00.000Z", "bob", ("ann",), "info", "hi\x1b[2J;")
    >>> nudge_line(r, 40)
    "claudeswarm: info from bob: 'hi [2J;' - read it: claudeswarm inbox"
    """
    more = f" +{waiting - 1} more" if waiting > 1 else ""
    text = preview(rec.body.replace("'", " "), limit)
    line = f"claudeswarm: {rec.type} from {rec.sender}{more}: '{text}' - {HINT}"
    return "".join(ch for ch in line if ch.isprintable())


def recipients(swarm: Swarm, rec: MessageRecord) -> list[AgentRecord]:
    """Registered, not-gone agents with a pane that ``rec`` is addressed to."""
    return registry.reachable(registry.load(swarm.paths), rec.to, rec.sender)


def after_send(swarm: Swarm, rec: MessageRecord) -> bool:
    """Queue a nudge for each recipient with a pane; start one detached nudger for the
    queues this send opened (fast: no tmux). True if a nudger was started.

    A recipient whose queue is already open (a nudger is starting or waiting) just gets
    the id added to it: a burst of messages costs one nudger and one typed line.
    """
    from claudeswarm.tmux import queue as nudge_queue

    if mode(swarm) == "never":
        return False
    owned = [
        a.name for a in recipients(swarm, rec) if nudge_queue.enqueue(swarm.paths, a.name, rec.id)
    ]
    if not owned:
        return False
    try:
        pid = spawn(swarm, "message", rec.id, "--agents", ",".join(owned))
    except OSError as exc:  # the message is logged: record the failed nudge, do not fail
        agents = registry.load(swarm.paths)
        failed = [record(swarm, rec.id, agents[n], "failed", f"nudger: {exc}") for n in owned]
        append_nudges(swarm, failed)
        for name in owned:
            nudge_queue.take(swarm.paths, name)
        return False
    for name in owned:
        nudge_queue.set_owner(swarm.paths, name, pid)
    return True


def spawn(swarm: Swarm, *args: str) -> int:
    """Start ``python -m claudeswarm.tmux.nudger`` detached (own session, stdio on /dev/null,
    never waited for) and return its pid.

    ``os.posix_spawn`` costs ~2 ms where ``subprocess.Popen`` costs ~25 ms with its
    import, which matters inside ``send``'s 100 ms budget. Our own file descriptors are
    close-on-exec, so the nudger inherits none of them.
    """
    argv = [*NUDGER, "--state-dir", str(swarm.paths.state), *args]
    null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    return os.posix_spawn(sys.executable, argv, os.environ, file_actions=null, setsid=True)


# -- the nudge record ----------------------------------------------------------------------


@dataclass(frozen=True)
class NudgeEntry:
    """One line of ``nudges.jsonl``: what happened when we tried to nudge one agent."""

    id: str
    agent: str
    pane: str
    outcome: str  # nudged | pending | skipped | failed
    reason: str
    ts: str


def append_nudges(swarm: Swarm, entries: Iterable[NudgeEntry]) -> None:
    """Append entries with the append protocol (one ``os.write`` under ``nudges.lock``)."""
    paths = swarm.paths
    records = [e.__dict__ for e in entries]
    _atomic.append_records(paths.file("nudges.jsonl"), paths.file("nudges.lock"), records)


@dataclass(frozen=True)
class Receipt:
    """One line of ``receipts.jsonl``: ``agent``'s inbox showed ``ids`` at ``ts``."""

    agent: str
    ts: str
    ids: tuple[str, ...]


#: longest line of ``nudges.jsonl`` / ``receipts.jsonl`` worth parsing (a receipt lists
#: at most one inbox worth of ids); longer ones are skipped unread
SIDE_LINE_MAX = 1 << 20


def _jsonl(swarm: Swarm, name: str, cls: type[T]) -> Iterator[T]:
    """The valid records of a side log, oldest first, read with bounded memory. A line
    that does not parse is a writer's torn fragment (skipped); one that parses but has
    the wrong shape is skipped and reported."""
    from claudeswarm.errors import SchemaError
    from claudeswarm.schema import build, skipped

    for line in _atomic.read_lines(swarm.paths.file(name), SIDE_LINE_MAX):
        if not line.strip():
            continue
        try:
            obj = _json.loads(line)
        except ValueError:
            continue
        try:
            yield build(cls, obj, name)
        except SchemaError as exc:
            skipped(name, exc)


def nudges(swarm: Swarm) -> list[NudgeEntry]:
    """Every recorded nudge outcome, oldest first."""
    return list(_jsonl(swarm, "nudges.jsonl", NudgeEntry))


def reads(swarm: Swarm) -> dict[tuple[str, str], str]:
    """``(message id, agent) -> first read time`` from ``receipts.jsonl``."""
    out: dict[tuple[str, str], str] = {}
    for receipt in _jsonl(swarm, "receipts.jsonl", Receipt):
        for mid in receipt.ids:
            out.setdefault((mid, receipt.agent), receipt.ts)
    return out


def pending_for(swarm: Swarm, agent: str) -> list[str]:
    """Ids of messages whose nudge to ``agent`` waits (agent was busy), not read since."""
    read = reads(swarm)
    waiting: dict[str, bool] = {}
    for e in nudges(swarm):
        if e.agent == agent:
            waiting[e.id] = e.outcome == "pending"
    return [mid for mid, w in waiting.items() if w and (mid, agent) not in read]


def turned_idle(swarm: Swarm, agent: str) -> bool:
    """Called when ``agent`` reports idle: nudge it for what waited (detached). True if
    a nudger was started."""
    if mode(swarm) == "never" or not pending_for(swarm, agent):
        return False
    spawn(swarm, "pending", agent)
    return True


def record(
    swarm: Swarm, mid: str, agent: AgentRecord, outcome: str, reason: str = ""
) -> NudgeEntry:
    """A :class:`NudgeEntry` stamped now (not yet written)."""
    return NudgeEntry(mid, agent.name, agent.pane or "", outcome, reason, format_ts(swarm.clock()))


# -- status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient of one message: logged, nudged (tmux accepted the keys), read."""

    agent: str
    logged: str
    nudged: str | None
    read: str | None
    nudge: str  # last nudge outcome and reason, or "" if none was tried

    @property
    def summary(self) -> str:
        """``read``, ``nudged (not read yet)``, the nudge outcome, or ``logged``."""
        if self.read:
            return "read"
        if self.nudged:
            return "nudged, not read yet"
        return self.nudge or "logged, not nudged"


@dataclass(frozen=True)
class DeliveryStatus:
    """Per-recipient delivery of one message."""

    id: str
    sender: str
    type: str
    ts: str
    to: tuple[str, ...]
    recipients: list[RecipientStatus]


def find(swarm: Swarm, mid: str) -> MessageRecord:
    """The logged message with id ``mid`` (:class:`UsageError` if none)."""
    from claudeswarm.messages.service import recent

    found = recent(swarm, 1, lambda r: r.id == mid)
    if not found:
        raise UsageError(f"no message with id {mid!r} in the log or its archives")
    return found[0]


def status(swarm: Swarm, mid: str) -> DeliveryStatus:
    """Join the log, ``nudges.jsonl`` and ``receipts.jsonl`` for message ``mid``."""
    rec = find(swarm, mid)
    read = {agent: ts for (m, agent), ts in reads(swarm).items() if m == mid}
    mine = [e for e in nudges(swarm) if e.id == mid]
    if BROADCAST in rec.to:
        names = sorted(
            {n for n in registry.load(swarm.paths) if n != rec.sender}
            | {e.agent for e in mine}
            | set(read)
        )
    else:
        names = list(rec.to)
    rows = []
    for name in names:
        tried = [e for e in mine if e.agent == name]
        nudged = next((e.ts for e in tried if e.outcome == "nudged"), None)
        last = f"{tried[-1].outcome}: {tried[-1].reason}".rstrip(": ") if tried else ""
        rows.append(RecipientStatus(name, rec.ts, nudged, read.get(name), last))
    return DeliveryStatus(rec.id, rec.sender, rec.type, rec.ts, rec.to, rows)
