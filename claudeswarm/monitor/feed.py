"""The monitor's reading side, free of Textual: recent messages, the live tail, panel
reloads on change and unread counts, gathered into :class:`FeedUpdate` batches.

Start-up order matters so that nothing is lost or shown twice: the tailer is opened at
the end of the log *first*, then the newest records are read backwards from the end.
Anything appended between the two steps is read by both; the ids of the backward read
are remembered (at most ``ring_size`` of them) and the tail skips those once.

The owner calls :meth:`Feed.poll` repeatedly (the app does so from a worker thread); a
poll reads at most ``batch`` records, so a flood is taken in bounded bites, and only the
newest ``ring_size`` of a batch are handed on (older ones would be evicted at once).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from claudeswarm.errors import SwarmError
from claudeswarm.messages.record import MessageRecord, format_ts
from claudeswarm.monitor import data
from claudeswarm.monitor.unread import UnreadCounter
from claudeswarm.sanitize import inert
from claudeswarm.storage.files import retention_ledger
from claudeswarm.storage.files.tailer import BadLine, LogTailer, max_line_bytes, read_recent
from claudeswarm.swarm import Swarm

BATCH = 5_000


@dataclass
class FeedUpdate:
    """What changed since the last poll. ``None`` for a panel: unchanged."""

    records: list[MessageRecord] = field(default_factory=list)
    seen: int = 0  # records read by this poll (``records`` may hold only the newest)
    agents: data.Section | None = None
    locks: data.Section | None = None
    tasks: data.Section | None = None
    bad: int = 0
    gaps: list[retention_ledger.Loss] = field(default_factory=list)  # logs deleted before read
    problem: str | None = None  # why the log cannot be read now; "" once it can again

    def __bool__(self) -> bool:
        changed = self.seen or self.agents or self.locks or self.tasks or self.bad or self.gaps
        return bool(changed) or self.problem is not None

    def merge(self, newer: FeedUpdate, keep: int) -> FeedUpdate:
        """This update followed by ``newer``, keeping at most ``keep`` records."""
        records = (self.records + newer.records)[-keep:] if keep else []
        return FeedUpdate(
            records,
            self.seen + newer.seen,
            newer.agents or self.agents,
            newer.locks or self.locks,
            newer.tasks or self.tasks,
            self.bad + newer.bad,
            self.gaps + newer.gaps,
            newer.problem if newer.problem is not None else self.problem,
        )


class Feed:
    """Recent records, the live tail and panel reloads for one swarm (read-only).

    Examples
    --------
    >>> feed = Feed(swarm, ring_size=1000)      # doctest: +SKIP
    >>> first = feed.start()                     # newest records, oldest first
    >>> update = feed.poll()                     # what arrived or changed since
    """

    def __init__(self, swarm: Swarm, *, ring_size: int, batch: int = BATCH) -> None:
        self.swarm = swarm
        self.ring_size = ring_size
        self.batch = batch
        self.bad = 0
        self.unread = UnreadCounter(swarm)
        self._tail: LogTailer | None = None
        self._records: Iterator[MessageRecord] | None = None  # an iteration in progress
        self._skip: set[str] = set()
        self._watch = data.ChangeWatcher(data.watched(swarm))
        self._cursor_sigs: dict[str, data.Seen] = {}
        self._agents: list[str] = []
        self._agents_section: data.Section | None = None
        self._told = 0  # gaps of the tail already reported
        self.problem = ""  # why the log cannot be read (shown by the app), "" when it can

    def _on_bad(self, bad: BadLine) -> None:
        self.bad += 1  # the monitor only counts: quarantine belongs to readers that own it

    def start(self) -> list[MessageRecord]:
        """Open the tail at the end, then return the newest ``ring_size`` records.

        Raises :class:`~claudeswarm.errors.StateError` when the log cannot be read (a FIFO
        or a symlink in its place), and remembers why in :attr:`problem`; :meth:`poll`
        keeps trying and reports when it can read again."""
        try:
            return self._start()
        except (SwarmError, OSError) as exc:
            self.problem = inert(f"cannot read the log: {exc}")
            raise

    def _start(self) -> list[MessageRecord]:
        self._tail = LogTailer(
            self.swarm.paths,
            None,
            start="end",
            on_bad=self._on_bad,
            max_line=max_line_bytes(self.swarm.settings.body_max_bytes),
        )
        recent = read_recent(
            self.swarm.paths,
            self.ring_size,
            lambda r: True,
            max_line=max_line_bytes(self.swarm.settings.body_max_bytes),
        )
        self._skip = {r.id for r in recent}
        return recent

    def close(self) -> None:
        """Release the open log file."""
        if self._tail is not None:
            self._tail.close()

    def panels(self) -> FeedUpdate:
        """Reload the panels whose files changed (all of them on the first call)."""
        changed = self._watch.changed()
        upd = FeedUpdate()
        if "locks" in changed:
            upd.locks = data.load_locks(self.swarm)
        if "tasks" in changed:
            upd.tasks = data.load_tasks(self.swarm)
        if "agents" in changed:
            upd.agents = data.load_agents(self.swarm, self.unread.shown(), self.unread.lost_shown())
            self._agents_section = upd.agents
            self._agents = [r.name for r in upd.agents.rows]
            self.unread.forget(self._agents)
        return upd

    def _read(self) -> tuple[list[MessageRecord], int, bool]:
        """Up to ``batch`` new records: (newest ``ring_size`` of them, count, drained)."""
        if self._tail is None:
            self.start()
        assert self._tail is not None
        ring: deque[MessageRecord] = deque(maxlen=self.ring_size)
        seen = 0
        # A stopped iteration is resumed, never restarted: the tailer has already
        # buffered the rest of its read, and a fresh ``records()`` would skip it.
        records = self._records or self._tail.records()
        for rec in records:
            if self._skip and rec.id in self._skip:
                self._skip.discard(rec.id)
                continue
            seen += 1
            ring.append(rec)
            self.unread.add((rec,))
            if seen >= self.batch:
                self._records = records
                return list(ring), seen, False
        self._records = None
        return list(ring), seen, True

    def _recount(self) -> bool:
        """Recount agents whose cursor file changed (or that are new), every agent when
        retention deleted an archive. True if any was recounted."""
        assert self._tail is not None
        stale = []
        for name in self._agents:
            sig = data.look(functools.partial(self._watched, name))
            changed, self._cursor_sigs[name] = data.changed_since(self._cursor_sigs.get(name), sig)
            if changed or name not in self.unread.counts:
                stale.append(name)
        if stale:
            self.unread.recount(stale, self._tail.cursor)
        return bool(stale)

    def _watched(self, name: str) -> list[Path]:
        # the retention ledger grows when archives go: counts and losses change for all
        paths = self.swarm.paths
        return [
            paths.file("cursors", f"{name}.json"),
            paths.file("archive", retention_ledger.LEDGER),
        ]

    def poll(self) -> FeedUpdate:
        """New records and changed panels since the last poll (never blocks)."""
        bad_before = self.bad
        upd = self.panels()
        try:
            records, seen, drained = self._read()
            problem = ""
        except (SwarmError, OSError) as exc:  # a planted FIFO, a symlink: say so, go on
            self._records = None
            records, seen, drained, problem = [], 0, False, inert(f"cannot read the log: {exc}")
        if problem != self.problem:
            upd.problem = self.problem = problem
        upd.records, upd.seen = records, seen
        upd.gaps = self._gaps()
        # recount only at the end of the log, where the tail position is exact
        recounted = drained and self._recount()
        if self._agents_section is not None and (recounted or (seen and self._agents)):
            # no re-read of agents.json: only the counts in the cached rows change
            self._agents_section = _with_unread(
                self._agents_section, self.unread.shown(), self.unread.lost_shown()
            )
            upd.agents = self._agents_section
        upd.bad = self.bad - bad_before
        return upd

    def _gaps(self) -> list[retention_ledger.Loss]:
        """Rotated logs the tail jumped since the last poll (deleted before it read them)."""
        assert self._tail is not None
        new = self._tail.skipped[self._told :]
        self._told = len(self._tail.skipped)
        lost = retention_ledger.loss(self.swarm.paths, new) if new else None
        return [lost] if lost is not None else []


def _with_unread(
    section: data.Section, unread: dict[str, str], lost: dict[str, str]
) -> data.Section:
    if not section.available:
        return section
    rows = tuple(
        replace(r, unread=unread.get(r.name, r.unread), lost=lost.get(r.name, ""))
        for r in section.rows
    )
    return replace(section, rows=rows)


@dataclass(frozen=True)
class Snapshot:
    """Every panel at one moment (what ``claudeswarm monitor --once`` prints)."""

    taken_at: str
    agents: data.Section
    locks: data.Section
    tasks: data.Section
    messages: tuple[MessageRecord, ...]


def snapshot(swarm: Swarm, *, messages: int) -> Snapshot:
    """Read every panel once, with the newest ``messages`` records (read-only)."""
    feed = Feed(swarm, ring_size=max(messages, 1))
    try:
        recent = feed.start()
        upd = feed.poll()
    finally:
        feed.close()
    newest = (recent + upd.records)[-messages:] if messages else []
    return Snapshot(
        taken_at=format_ts(swarm.clock()),
        agents=upd.agents or data.load_agents(swarm, feed.unread.shown(), feed.unread.lost_shown()),
        locks=upd.locks or data.load_locks(swarm),
        tasks=upd.tasks or data.load_tasks(swarm),
        messages=tuple(newest),
    )
