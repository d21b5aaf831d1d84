"""Retention of rotated logs: which archives may go, and what each reader loses when one does.

Rotation calls :func:`prune` once ``archive/`` holds more than ``archive_keep`` logs,
after releasing the log lock (one pruner at a time, under ``archive/prune.lock``). The
newest ``archive_keep`` are always kept. An older one is deleted unless a *live* agent
has not read it yet: its cursor lies in that archive or before it (or it never read at
all). Live means registered, not marked ``gone``, and its recorded process still running
(same pid and start time), so a dead agent's cursor pins nothing. Archives kept for
unread mail stay only while ``archive/`` as a whole holds at most ``archive_max_bytes``;
past that the oldest go even if unread.

Nothing is deleted without a word: before an archive is unlinked, its line goes into the
ledger (:mod:`claudeswarm.storage.files.retention_ledger`), with how many messages to
each agent that had not read it were in it past that agent's cursor. Counting reads the
archive, so it
is done only when someone will need it: for a live agent (then the cap forced the
deletion) and, for a gone agent, once: for the archive holding its cursor. A gone agent's
later losses are not counted; its report then says "at least".

Cost on the append path: one registry read and one cursor read per registered agent per
rotation past ``archive_keep``; a read of the deleted archive only as said above. None of
it holds the log lock: only the sender whose append rotated waits for it.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claudeswarm.agents import registry
from claudeswarm.config import Settings
from claudeswarm.errors import SwarmError, UnavailableError
from claudeswarm.messages.record import MessageRecord, check_name
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files.log import archives
from claudeswarm.storage.files.retention_ledger import (
    Counted,
    Pruned,
    append_ledger,
    cursor,
    regular_file,
)
from claudeswarm.storage.files.tailer import BadLine, Cursor, LogTailer, max_line_bytes, parse_line
from claudeswarm.storage.paths import StatePaths

PRUNE_LOCK = "prune.lock"
_BEFORE_ALL = 0  # a reader position before every archive kept
_PASSED_ALL = math.inf  # a reader position in the live log: no archive is unread


# -- pruning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Archive:
    """An archive as listed under prune.lock. ``file`` (dev, inode) says where to open it
    while it exists (only a pruner deletes archives); it is never stored as its name."""

    seq: int
    path: Path
    file: tuple[int, int]
    size: int


@dataclass(frozen=True)
class _Reader:
    """A registered agent's position: the first archive it has not finished (``seq``,
    where its unread part starts at ``offset``)."""

    name: str
    live: bool
    cursor: Cursor | None
    seq: float
    offset: int


def _ignore(bad: BadLine) -> None:
    """Bad lines belong to the readers that quarantine them."""


def _stat(existing: Iterable[tuple[int, Path]]) -> list[_Archive]:
    """The archives that are regular files (anything else is neither read nor deleted)."""
    out = []
    for seq, path in existing:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append(_Archive(seq, path, (st.st_dev, st.st_ino), st.st_size))
    return out


def _is_live(agent: registry.AgentRecord) -> bool:
    return agent.state != "gone" and registry.process_alive(agent.pid, agent.start_time)


def _position(
    paths: StatePaths, cur: Cursor | None, files: list[_Archive], max_line: int
) -> tuple[float, int]:
    """(seq, offset) of the first unread byte for a reader at ``cur``."""
    if cur is None:
        return _BEFORE_ALL, 0  # never read: everything kept is unread
    with LogTailer(paths, cur, on_bad=_ignore, max_line=max_line) as tail:
        if tail.skipped:
            return _BEFORE_ALL, 0  # its file is gone: it will resume at the oldest kept
        seq = tail.file_seq
    if seq is None:
        return _PASSED_ALL, 0
    size = next((f.size for f in files if f.seq == seq), 0)
    return (seq + 1, 0) if cur.offset >= size else (seq, cur.offset)


def _readers(paths: StatePaths, files: list[_Archive], max_line: int) -> list[_Reader] | None:
    """Every registered agent's position, read once (``None``: no readable registry)."""
    registry_file = paths.file("agents.json")
    if not regular_file(registry_file):
        return [] if not registry_file.exists() else None
    try:
        agents = registry.load(paths)
    except (SwarmError, OSError):
        return None
    out = []
    for name, agent in sorted(agents.items()):
        try:
            check_name(name)
        except ValueError:
            continue  # no cursor file can carry this name
        cur = _read_cursor(paths.cursors / f"{name}.json")
        try:
            seq, offset = _position(paths, cur, files, max_line)
        except (OSError, SwarmError, TypeError, ValueError):
            cur, seq, offset = None, _BEFORE_ALL, 0
        out.append(_Reader(name, _is_live(agent), cur, seq, offset))
    return out


def _read_cursor(path: Path) -> Cursor | None:
    """A saved cursor; ``None`` if there is none or it is unusable (its inbox will then
    quarantine it and read everything kept: it stands before every archive)."""
    if not regular_file(path):
        return None
    try:
        return cursor(_atomic.read_json(path, None))
    except (SwarmError, OSError):
        return None


def prune(paths: StatePaths, settings: Settings) -> None:
    """Delete the archives retention lets go (called after a rotation, outside the log
    lock). One process prunes at a time (``archive/prune.lock``); one that finds another
    at it returns at once: that one, or the next rotation, does the work."""
    try:
        with _atomic.flocked(paths.archive / PRUNE_LOCK, timeout=0):
            _prune(paths, settings, archives(paths))
    except UnavailableError:
        return


def _prune(paths: StatePaths, settings: Settings, existing: Sequence[tuple[int, Path]]) -> None:
    files = _stat(existing)
    surplus = len(files) - settings.archive_keep
    if surplus <= 0:
        return
    max_line = max_line_bytes(settings.body_max_bytes)
    readers = _readers(paths, files, max_line)
    # an unreadable registry hides who is live: keep everything, up to the cap
    live = [r.seq for r in readers if r.live] if readers is not None else [_BEFORE_ALL]
    pin = min(live, default=_PASSED_ALL)
    total = sum(f.size for f in files)
    for f in files[:surplus]:
        if f.seq >= pin and total <= settings.archive_max_bytes:
            break  # this one and every newer one are unread by a live agent
        behind = [r for r in readers or () if r.seq <= f.seq and (r.live or r.seq == f.seq)]
        append_ledger(paths, _account(paths, f, behind, max_line))
        total -= f.size
        # another rotator may have removed it first: the outcome is the same
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f.path)


def _account(paths: StatePaths, f: _Archive, behind: list[_Reader], max_line: int) -> Pruned:
    """The ledger line for ``f``, counting what each reader in ``behind`` loses."""
    first_ts, last_ts, last_id = _span(f.path, f.size, max_line)
    lost: dict[str, Counted] = {}
    if behind:
        starts = {r.name: r.offset if r.seq == f.seq else 0 for r in behind}
        tally = _tally(paths, f, starts, max_line) or {}
        for r in behind:
            if r.name in tally:
                n, first, last = tally[r.name]
                lost[r.name] = Counted(n, first, last, r.cursor, starts[r.name] == 0)
    return Pruned(f.seq, last_id, f.size, first_ts, last_ts, lost)


def _tally(
    paths: StatePaths, f: _Archive, starts: dict[str, int], max_line: int
) -> dict[str, tuple[int, str | None, str | None]] | None:
    """Per agent: (messages to it past its start offset, oldest ts, newest ts), read with
    the tailer's own rules (a line a reader would quarantine counts for nobody).
    ``None`` if the file cannot be read (then nobody is counted: reports say "at least").
    """
    counts: dict[str, list[Any]] = {name: [0, None, None] for name in starts}
    start = Cursor(f.file[0], f.file[1], 0, None)
    with LogTailer(paths, start, on_bad=_ignore, max_line=max_line) as tail:
        if tail.skipped:
            return None
        for rec in tail:
            pos = tail.cursor
            if pos is None or (pos.dev, pos.ino) != f.file:
                break  # the tailer went on into the next file
            for name, at in starts.items():
                # a cursor sits between lines: a record ending past it lies wholly after
                if pos.offset > at and rec.addressed_to(name):
                    c = counts[name]
                    c[0] += 1
                    c[1] = rec.ts if c[1] is None else min(c[1], rec.ts)
                    c[2] = rec.ts if c[2] is None else max(c[2], rec.ts)
    return {name: (c[0], c[1], c[2]) for name, c in counts.items()}


def _span(path: Path, size: int, max_line: int) -> tuple[str | None, str | None, str | None]:
    """Time of the first and of the last record of a closed log, and the last record's
    id (two small reads)."""
    try:
        fd = _atomic.open_nofollow(path, os.O_RDONLY)
    except (FileNotFoundError, SwarmError):
        return None, None, None
    try:
        head = os.pread(fd, min(size, max_line + 2), 0).split(b"\n")[:-1]
        back = min(size, max_line + 2)
        tail = os.pread(fd, back, size - back).split(b"\n")[1:]
    finally:
        os.close(fd)
    first, last = _first_record(head), _first_record(reversed(tail))
    return (
        first.ts if first else None,
        last.ts if last else None,
        last.id if last else None,
    )


def _first_record(lines: Iterable[bytes]) -> MessageRecord | None:
    for line in lines:
        if line.strip():
            try:
                return parse_line(line)
            except ValueError:
                continue
    return None
