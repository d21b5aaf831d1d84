"""The retention ledger, ``archive/pruned.jsonl``, and what a reader lost.

Retention (:mod:`claudeswarm.storage.files.retention`) appends one line per archive
before it deletes it: the archive's seq, its last record id, its size, the time span of
its records and,
for each agent that had not read it, how many messages to that agent it held past the
agent's cursor (and that cursor). Readers never delete anything: inbox, followers and the
monitor turn the gaps their tailer jumped (:attr:`LogTailer.skipped
<claudeswarm.storage.files.tailer.LogTailer.skipped>`) into a :class:`Loss` with :func:`loss`. This
module needs neither the registry nor the settings, so readers pay only for it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from claudeswarm.errors import StateError, SwarmError
from claudeswarm.storage import json as _json
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files.tailer import Cursor, Gap
from claudeswarm.storage.paths import StatePaths

LEDGER = "pruned.jsonl"
LEDGER_MAX_BYTES = 256 * 1024  # then the oldest half is dropped (a ~1,000-deletion memory)


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
    if not regular_file(path):
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


def append_ledger(paths: StatePaths, entry: Pruned) -> None:
    """Append ``entry`` (called by retention, under ``archive/prune.lock``)."""
    # Under prune.lock: the only writer. One os.write per line (the append protocol),
    # so a reader without a lock sees whole lines. Not fsynced: a ledger line lost in a
    # power cut turns an exact report into "at least", never into silence.
    path = paths.archive / LEDGER
    if path.exists() and not regular_file(path):
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


def regular_file(path: Path) -> bool:
    """True if ``path`` is a regular file (not a FIFO or device planted in the state
    directory: opening one would block a send or a reader)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


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
