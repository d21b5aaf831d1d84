"""Retention of rotated logs: which archives may go, and what a reader lost when one did.

Rotation calls :func:`prune` once ``archive/`` holds more than ``archive_keep`` logs,
after releasing the log lock (one pruner at a time, under ``archive/prune.lock``). The
newest ``archive_keep`` are always kept. An older one is deleted unless a *live* agent
has not read it yet: its cursor lies in that archive or before it (or it never read at
all). Live means registered, not marked ``gone``, and its recorded process still running
(same pid and start time), so a dead agent's cursor pins nothing. Archives kept for
unread mail stay only while ``archive/`` as a whole holds at most ``archive_max_bytes``;
past that the oldest go even if unread.

Nothing is deleted without a word. Before an archive is unlinked, one line is appended to
the ledger ``archive/pruned.jsonl``: its seq, last record id, size, the time span of its
records and, for each agent that had not read it, how many messages addressed to that
agent it held past the agent's cursor (and that cursor). Counting reads the archive, so
it is done only when someone will need it: for a live agent (then the cap forced the
deletion) and, for a gone agent, once: for the archive holding its cursor. A gone agent's
later losses are not counted; its report then says "at least".

Readers turn the gaps their tailer jumped (:attr:`LogTailer.skipped
<claudeswarm.tailer.LogTailer.skipped>`) into a :class:`Loss` with :func:`loss`. Cost on
the append path: one registry read and one cursor read per registered agent per rotation
past ``archive_keep``; a read of the deleted archive only as said above. None of it holds
the log lock: only the sender whose append rotated waits for it.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from claudeswarm import _atomic, _json, registry
from claudeswarm.config import Settings
from claudeswarm.errors import StateError, SwarmError, UnavailableError
from claudeswarm.message_log import archives
from claudeswarm.models import MessageRecord, check_name
from claudeswarm.paths import StatePaths
from claudeswarm.tailer import BadLine, Cursor, Gap, LogTailer, max_line_bytes, parse_line

LEDGER = "pruned.jsonl"
PRUNE_LOCK = "prune.lock"
LEDGER_MAX_BYTES = 256 * 1024  # then the oldest half is dropped (a ~1,000-deletion memory)
_BEFORE_ALL = 0  # a reader position before every archive kept
_PASSED_ALL = math.inf  # a reader position in the live log: no archive is unread


@dataclass(frozen=True)
class Loss:
    """Messages a reader never got because retention deleted them first.

    ``count`` is exact when ``exact``, else a lower bound. ``first_ts`` and ``last_ts``
    span the lost messages (when the count is exact) or the deleted files. ``files`` is
    how many rotated logs were deleted in the gaps.
    """

    count: int
    exact: bool
    first_ts: str | None
    last_ts: str | None
    files: int

    def sentence(self, agent: str | None = None) -> str:
        """One line for people, e.g. ``3 messages to bob were deleted by retention ...``.

        Examples
        --------
        >>> Loss(3, True, "10:00", "10:05", 2).sentence("bob")  # doctest: +ELLIPSIS
        'claudeswarm: 3 messages to bob were deleted by retention before they were read (sent...'
        """
        from claudeswarm.sanitize import inert

        # times come from log records: made inert, a forged one cannot reach a terminal
        first, last = self.first_ts, self.last_ts or "?"
        span = f" (sent {inert(first)} to {inert(last)})" if first else ""
        hint = "; archive_max_bytes caps what is kept for unread mail"
        if agent is None and not self.exact and self.files == 0:
            return "claudeswarm: skipped an unknown part of the log: deleted before read"
        if agent is None:
            n = f"{'' if self.exact else 'at least '}{self.files}"
            logs = f"{n} rotated log{'s' if self.files != 1 else ''}"
            return f"claudeswarm: skipped {logs}{span}: deleted by retention before read"
        if not self.exact and self.count == 0:
            return (
                f"claudeswarm: an unknown number of messages to {agent} may have been deleted "
                f"by retention before they were read{span}{hint}"
            )
        n = f"{'' if self.exact else 'at least '}{self.count}"
        one = self.count == 1 and self.exact
        what = "message" if one else "messages"
        verb = "was" if one else "were"
        read = "it was" if one else "they were"
        return (
            f"claudeswarm: {n} {what} to {agent} {verb} deleted by retention before {read} "
            f"read{span}{hint}"
        )

    @property
    def short(self) -> str:
        """The count as the monitor shows it: ``"3"``, ``"3+"`` or ``"?"``."""
        if not self.exact and self.count == 0:
            return "?"
        return f"{self.count}{'' if self.exact else '+'}"


# -- the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """Messages to one agent in a deleted archive: all of it (``whole``), or only what
    followed ``since``, its cursor then, which lay inside it."""

    n: int
    first_ts: str | None
    last_ts: str | None
    since: Cursor | None
    whole: bool = True


@dataclass(frozen=True)
class Pruned:
    """One ledger line: an archive deleted by retention. It is known by its seq and by
    ``last_id``, its last record (ids never recur; inode numbers do)."""

    seq: int
    last_id: str | None
    size: int
    first_ts: str | None
    last_ts: str | None
    lost: Mapping[str, Counted]

    def to_json(self) -> dict[str, Any]:
        """The ledger line."""
        return {
            "seq": self.seq,
            "last_id": self.last_id,
            "size": self.size,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "lost": {
                name: {**asdict(c), "since": None if c.since is None else asdict(c.since)}
                for name, c in self.lost.items()
            },
        }

    @classmethod
    def from_json(cls, obj: Any) -> Pruned:
        """Parse a ledger line; ``ValueError``/``TypeError``/``KeyError`` if malformed."""
        lost = {
            str(name): Counted(
                _int(c["n"]),
                _ts(c.get("first_ts")),
                _ts(c.get("last_ts")),
                cursor(c["since"]),
                c.get("whole") is not False,
            )
            for name, c in obj["lost"].items()
        }
        return cls(
            _int(obj["seq"]),
            _ts(obj.get("last_id")),
            _int(obj["size"]),
            _ts(obj.get("first_ts")),
            _ts(obj.get("last_ts")),
            lost,
        )


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def _ts(value: Any) -> str | None:
    if value is not None and type(value) is not str:
        raise ValueError(f"not a time: {value!r}")
    return value


def cursor(raw: Any) -> Cursor | None:
    """A cursor from its stored dict; ``None`` for null or anything malformed."""
    if not isinstance(raw, dict) or not {"dev", "ino", "offset", "last_id"} <= set(raw):
        return None
    if not all(type(raw[k]) is int and raw[k] >= 0 for k in ("dev", "ino", "offset")):
        return None
    if raw["last_id"] is not None and type(raw["last_id"]) is not str:
        return None
    try:
        return Cursor(**{f.name: raw[f.name] for f in fields(Cursor) if f.name in raw})
    except TypeError:
        return None  # a field this version requires is missing


def read_ledger(paths: StatePaths) -> dict[int, Pruned]:
    """Every deletion remembered, by seq (unreadable lines are skipped: their archives
    count as unaccounted, so a report over them says "at least")."""
    path = paths.archive / LEDGER
    if not _regular(path):
        return {}
    try:
        raw = _atomic.read_bytes(path) or b""
    except (OSError, SwarmError):
        return {}
    out: dict[int, Pruned] = {}
    for line in raw.split(b"\n"):
        if line.strip():
            try:
                entry = Pruned.from_json(_json.loads(line))
            except (AttributeError, KeyError, TypeError, ValueError):
                continue
            out[entry.seq] = entry
    return out


def last_seq(paths: StatePaths) -> int:
    """The highest archive seq ever deleted (0 if none): a new archive never reuses one."""
    return max(read_ledger(paths), default=0)


def _append_ledger(paths: StatePaths, entry: Pruned) -> None:
    # Under prune.lock: the only writer. One os.write per line (the append protocol),
    # so a reader without a lock sees whole lines. Not fsynced: a ledger line lost in a
    # power cut turns an exact report into "at least", never into silence.
    path = paths.archive / LEDGER
    if path.exists() and not _regular(path):
        raise StateError(f"refusing {path}: not a regular file")
    data = b"\n" + _json.dumps(entry.to_json()).encode() + b"\n"
    fd = _atomic.open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, data)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > LEDGER_MAX_BYTES:
        lines = [ln for ln in (_atomic.read_bytes(path) or b"").split(b"\n") if ln.strip()]
        kept = b"".join(b"\n" + ln + b"\n" for ln in lines[len(lines) // 2 :])
        _atomic.write_bytes(path, kept, durable=False)


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


def _regular(path: Path) -> bool:
    """True if ``path`` is a regular file: a FIFO or device planted in the state directory
    would block a read, and rotation holds the log lock every sender waits on."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


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
    if not _regular(registry_file):
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
    if not _regular(path):
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
        _append_ledger(paths, _account(paths, f, behind, max_line))
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


# -- what a reader lost -------------------------------------------------------------------


def loss(paths: StatePaths, gaps: Sequence[Gap], agent: str | None = None) -> Loss | None:
    """What the ``gaps`` a tailer jumped cost ``agent``: messages addressed to it. With
    ``agent=None`` (a reader of everything) only the deleted files are counted. ``None``
    if nothing was lost.

    A gap with no ``after``, ``last_id`` or ``cursor`` stands for a reader that never read
    (no cursor): it lost what the ledger counted for it while it had no cursor.
    """
    if not gaps:
        return None
    book = read_ledger(paths)
    parts = [_gap_loss(book, g, agent) for g in gaps]
    exact = all(p.exact for p in parts)
    count, files = sum(p.count for p in parts), sum(p.files for p in parts)
    if exact and (count if agent is not None else files) == 0:
        return None
    firsts = [p.first_ts for p in parts if p.first_ts]
    lasts = [p.last_ts for p in parts if p.last_ts]
    return Loss(count, exact, min(firsts, default=None), max(lasts, default=None), files)


def _gap_loss(book: Mapping[int, Pruned], gap: Gap, agent: str | None) -> Loss:
    """One gap: the ledger lines from its first deleted seq up to ``gap.before``."""
    low = _first_seq(book, gap, agent)
    if low is None:
        return Loss(0, False, None, None, 0)  # the ledger cannot say where it began
    if low == 0:
        return Loss(0, True, None, None, 0)  # nothing to account
    high = gap.before if gap.before is not None else max(book, default=0) + 1
    count, exact, files = 0, True, 0
    spans: list[tuple[str | None, str | None]] = []
    for seq in range(low, high):
        entry = book.get(seq)
        if entry is None:
            exact = False  # forgotten (the ledger was trimmed) or never written
            continue
        files += 1
        got = entry.lost.get(agent) if agent is not None else None
        if got is None or (not got.whole and got.since != gap.cursor):
            exact = exact and agent is None  # not counted for it, or from another place
            spans.append((entry.first_ts, entry.last_ts))
            continue
        count += got.n
        spans.append((got.first_ts, got.last_ts))
    firsts = [a for a, _ in spans if a]
    lasts = [b for _, b in spans if b]
    return Loss(count, exact, min(firsts, default=None), max(lasts, default=None), files)


def _first_seq(book: Mapping[int, Pruned], gap: Gap, agent: str | None) -> int | None:
    """The first deleted seq a gap covers; 0: none; ``None``: the ledger cannot tell."""
    if gap.after is not None:
        return gap.after + 1
    if gap.last_id is not None:  # a drained file whose archive was deleted
        found = [s for s, e in book.items() if e.last_id == gap.last_id]
        return max(found) + 1 if found else None
    mine = [
        s
        for s, e in book.items()
        if agent is not None and agent in e.lost and e.lost[agent].since == gap.cursor
    ]
    if mine:
        return min(mine)  # counted from this very cursor (or from "never read")
    # never read and never counted: nothing lost; else the cursor was not the one counted
    # from (it moved inside an archive deleted under it): the ledger cannot say
    return 0 if gap.cursor is None else None
