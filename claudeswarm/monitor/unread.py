"""Unread counts per agent, kept without re-reading the log.

An agent's unread messages are those addressed to it after its saved cursor
(``cursors/<agent>.json``). The counter reads each cursor once (and again only when its
file changes), counts forward from it to where the monitor's own tailer stands, then adds
each live record as it arrives. A count that would need more than ``scan_limit`` records
is shown as a lower bound (``"20000+"``) so an agent that never read cannot stall the
monitor on a long history. Read-only: cursors are read with no lock and never repaired.

The same pass finds what the agent's next inbox will report as lost: messages to it that
retention deleted before it read them (:func:`claudeswarm.storage.files.retention_ledger.loss`).
"""

from __future__ import annotations

from collections.abc import Iterable

from claudeswarm.errors import SwarmError
from claudeswarm.messages.record import MessageRecord
from claudeswarm.schema import skipped
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files import retention_ledger
from claudeswarm.storage.files.tailer import BadLine, Cursor, Gap, LogTailer, max_line_bytes
from claudeswarm.swarm import Swarm

SCAN_LIMIT = 20_000


def _ignore(bad: BadLine) -> None:
    """Corrupt lines are left to the readers that own quarantine: the monitor only looks."""


def read_cursor(swarm: Swarm, agent: str) -> Cursor | None:
    """The agent's saved position, or ``None`` (none saved, or unreadable: count all, and
    say so once; the agent's own inbox quarantines a bad cursor, the monitor only looks)."""
    try:
        raw = _atomic.read_json(swarm.paths.file("cursors", f"{agent}.json"), None)
        return None if raw is None else Cursor.from_json(raw, f"cursor of {agent}")
    except (SwarmError, OSError, ValueError) as exc:
        skipped(f"cursors/{agent}.json", exc)
        return None


class UnreadCounter:
    """Unread counts for a set of agents, relative to a tailer position ``upto``."""

    def __init__(self, swarm: Swarm, *, scan_limit: int = SCAN_LIMIT) -> None:
        self.swarm = swarm
        self.scan_limit = scan_limit
        self.counts: dict[str, int] = {}
        self.capped: set[str] = set()
        self.lost: dict[str, retention_ledger.Loss] = {}

    def recount(self, agents: Iterable[str], upto: Cursor | None) -> None:
        """Count each agent's unread records from its cursor up to ``upto`` (the monitor's
        own position; ``None``: no log yet). Agents at the same cursor (say, none saved)
        share one scan."""
        groups: dict[Cursor | None, list[str]] = {}
        for agent in agents:
            groups.setdefault(read_cursor(self.swarm, agent), []).append(agent)
        for cursor, names in groups.items():
            for name in names:
                self.counts[name] = 0
                self.capped.discard(name)
                self.lost.pop(name, None)
            if upto is not None:
                self._scan(cursor, names, upto)

    def _scan(self, cursor: Cursor | None, names: list[str], upto: Cursor) -> None:
        scanned = 0
        with LogTailer(
            self.swarm.paths,
            cursor,
            on_bad=_ignore,
            max_line=max_line_bytes(self.swarm.settings.body_max_bytes),
        ) as tail:
            self._losses(tail, cursor, names)
            for rec in tail:
                pos = tail.cursor
                assert pos is not None
                # both files are held open (ours and the monitor's tail), and no two
                # open files share an inode number: equal numbers are the same file
                same_file = (pos.dev, pos.ino) == (upto.dev, upto.ino)
                if same_file and pos.offset > upto.offset:
                    return  # appended after the monitor's position: the live feed counts it
                for name in names:
                    self.counts[name] += rec.addressed_to(name)
                scanned += 1
                if same_file and pos.offset == upto.offset:
                    return
                if scanned >= self.scan_limit:
                    self.capped.update(names)
                    return

    def _losses(self, tail: LogTailer, cursor: Cursor | None, names: list[str]) -> None:
        """What the next inbox of each of ``names`` (all at ``cursor``) will report lost."""
        gaps = list(tail.skipped) if cursor is not None else [Gap.never_read(tail)]
        if not gaps:
            return
        for name in names:
            lost = retention_ledger.loss(self.swarm.paths, gaps, name)
            if lost is not None:
                self.lost[name] = lost

    def forget(self, keep: Iterable[str]) -> None:
        """Drop agents no longer registered."""
        names = set(keep)
        for gone in set(self.counts) - names:
            del self.counts[gone]
            self.capped.discard(gone)
            self.lost.pop(gone, None)

    def add(self, records: Iterable[MessageRecord]) -> None:
        """Count live records for every known agent."""
        names = list(self.counts)
        for rec in records:
            for name in names:
                if rec.addressed_to(name):
                    self.counts[name] += 1

    def shown(self) -> dict[str, str]:
        """Counts as text: ``"3"``, or ``"20000+"`` for a lower bound."""
        return {n: f"{c}+" if n in self.capped else str(c) for n, c in self.counts.items()}

    def lost_shown(self) -> dict[str, str]:
        """Messages lost to retention, as text (``"37"``, ``"8+"``, ``"?"``), for the
        agents that lost any."""
        return {n: lost.short for n, lost in self.lost.items()}
