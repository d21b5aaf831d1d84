"""The lease table on disk: an append-only journal, ``locks.jsonl``, under ``locks.lock``.

Why a journal (measured, see README "Design notes"): rewriting one JSON file per acquire
costs ~2.7 ms at 1,000 held leases (serialise + fsync + rename + dir fsync), twice per
acquire/release pair, which caps it near 190 pairs/s. Appending one record and
``fdatasync`` costs ~0.2 ms whatever the table size.

Format: one JSON record per line, each written as ``"\\n" + json + "\\n"`` with one
``os.write`` under ``flock`` on ``locks.lock`` (the sidecar, never deleted). The first
record is a header ``{"op": "base", "v": 1, "next": N, "epoch": E}``; then ``grant`` (a
whole lease), ``beat`` (heartbeat), ``drop`` (some patterns released), ``release`` and
``break``. When dead records outweigh live ones the journal is compacted: the live leases
are written under a new random epoch to a temp file, fsynced and renamed over it.

Readers take no lock: a :class:`Table` keeps the epoch and the offset it has read to, and
reads only the bytes appended since its last look; a line without its newline is
unfinished and waits. The journal is identified by its epoch, never by its inode number:
ext4 gives a freed inode number to the next new file at once, so after two compactions
the journal can have the inode number, and a larger size, of the one a reader last saw
while holding entirely different records. Bytes past the offset are trusted only after
the header is read again from the same open file and still carries the reader's epoch.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from claudeswarm.agents import registry
from claudeswarm.errors import CorruptLeaseTableError, StateError
from claudeswarm.locks.index import Entry, PatternIndex
from claudeswarm.storage import json as _json
from claudeswarm.storage.paths import StatePaths

MODES = ("exclusive", "shared")
VERSION = 1
HEAD = 4096  # bytes read to find the header record (about 90 bytes long)
#: an unchanged ``lstat`` is trusted only once the file's mtime is this far in the past
SETTLED_NS = 200_000_000
Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class Lease:
    """One granted lease: who holds which patterns, how, and until when.

    ``expires_at`` is ``heartbeat + ttl``; past it the lease may be broken. ``generation``
    is unique in the table's history: release and refresh name it, so a holder whose lease
    was broken can never touch the lease that replaced it.
    """

    agent: str
    pane: str | None
    pid: int | None
    start_time: int | None
    patterns: tuple[str, ...]
    mode: str
    reason: str
    acquired: float
    heartbeat: float
    ttl: float
    generation: int

    @property
    def expires_at(self) -> float:
        """Epoch seconds after which the lease, unless refreshed, may be broken."""
        return self.heartbeat + self.ttl

    @property
    def exclusive(self) -> bool:
        """True for an exclusive lease."""
        return self.mode == "exclusive"

    def to_json(self) -> dict[str, Any]:
        """The stored dict (plus ``expires_at`` for readers of ``--json``)."""
        out = _plain(self)
        out["expires_at"] = self.expires_at
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Lease:
        """Validate a stored lease; ``ValueError`` names the first bad field."""
        from claudeswarm.schema import build

        lease = build(cls, obj, "lease")
        _check(lease)
        return lease


@dataclass(frozen=True)
class Holder:
    """Who takes a lease: an agent name bound to a pane and a process."""

    agent: str
    pane: str | None
    pid: int | None
    start_time: int | None

    @classmethod
    def for_process(cls, agent: str, pid: int | None = None, pane: str | None = None) -> Holder:
        """A holder bound to ``pid`` (default: this process) and its start time."""
        pid = os.getpid() if pid is None else pid
        return cls(agent, pane, pid, registry.process_start_time(pid))

    @classmethod
    def for_cli(cls, paths: StatePaths, agent: str) -> Holder:
        """The holder for a CLI call: the registered agent's pane and pid when ``agent``
        is registered (and not gone), else the calling shell (``os.getppid()``)."""
        rec = registry.load(paths).get(agent)
        if rec is not None and rec.state != "gone" and rec.pid:
            return cls(agent, rec.pane, rec.pid, rec.start_time)
        return cls.for_process(agent, os.getppid(), registry.current_pane())


def _check(lease: Lease) -> None:
    """What the types alone do not say (they are checked by the schema layer)."""
    for name, ok in (
        ("agent", bool(lease.agent)),
        ("mode", lease.mode in MODES),
        ("patterns", bool(lease.patterns) and all(lease.patterns)),
    ):
        if not ok:
            raise ValueError(f"lease field {name!r} is invalid")


def encode(record: dict[str, Any]) -> bytes:
    """One journal record in its on-disk framing."""
    return b"\n" + _json.dumps(record).encode() + b"\n"


def grant_record(lease: Lease) -> dict[str, Any]:
    """The ``grant`` record for ``lease``."""
    return {"op": "grant", "lease": _plain(lease)}


def _plain(lease: Lease) -> dict[str, Any]:
    # by hand: dataclasses.asdict deep-copies and is the slowest step of an acquire
    return {
        "agent": lease.agent,
        "pane": lease.pane,
        "pid": lease.pid,
        "start_time": lease.start_time,
        "patterns": list(lease.patterns),
        "mode": lease.mode,
        "reason": lease.reason,
        "acquired": lease.acquired,
        "heartbeat": lease.heartbeat,
        "ttl": lease.ttl,
        "generation": lease.generation,
    }


@dataclass
class Table:
    """The lease table as of the journal bytes read so far, with its pattern index."""

    path: Path
    leases: dict[int, Lease] = field(default_factory=dict)
    index: PatternIndex = field(default_factory=PatternIndex)
    by_agent: dict[str, set[int]] = field(default_factory=dict)
    next_generation: int = 1
    #: the header's epoch of the journal read so far (``None``: none read, or no epoch)
    epoch: str | None = None
    #: the header record's bytes when it has an epoch (compared instead of re-parsed)
    head: bytes = b""
    #: ``lstat`` (dev, inode, size, mtime) at the last read: a hint that nothing changed,
    #: never the journal's identity; ``None`` when there was no journal
    seen: Signature | None = None
    settled: bool = False
    offset: int = 0
    size: int = 0
    has_base: bool = False
    bad: list[tuple[int, bytes, str]] = field(default_factory=list)
    records: int = 0

    # -- reading ---------------------------------------------------------------------

    def sync(self, *, verify: bool = False) -> Table:
        """Read what was appended since the last call (re-read all after a compaction).

        Cheap when nothing changed: one ``lstat``, as long as the file looks exactly as at
        the last read and its mtime was already in the past then (``settled``: a file made
        later, even one with the same inode number and size, has a later mtime). Otherwise,
        and always with ``verify`` (writers, under the sidecar lock), the header is read
        again and the records past ``offset`` are trusted only if its epoch is unchanged.
        Raises :class:`StateError` if the journal is a symlink or not a regular file.
        """
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            if self.seen is not None or self.offset:
                self._reset(None)
            return self
        if not stat.S_ISREG(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise StateError(f"refusing {self.path}: it is {kind} (state files must be real)")
        if verify or not self.settled or _signature(st) != self.seen:
            self._read()
        return self

    def readable(self) -> Table:
        """``self``, or :class:`StateError` when the journal has content but no header
        (a damaged or foreign file: nothing in it can be trusted)."""
        if self.size and not self.has_base:
            raise CorruptLeaseTableError(str(self.path))
        return self

    def _reset(self, epoch: str | None) -> None:
        self.head = b""
        self.leases.clear()
        self.index = PatternIndex()
        self.by_agent.clear()
        self.next_generation = 1
        self.epoch, self.offset, self.size = epoch, 0, 0
        self.seen, self.settled = None, False
        self.has_base = False
        self.bad.clear()
        self.records = 0

    def _read(self) -> None:
        """Check the open file's header, then read its bytes past ``offset`` if the epoch
        is still ours, else the whole file (another file: a compaction happened)."""
        from claudeswarm.storage.files.atomic import open_state

        fd = open_state(self.path, os.O_RDONLY)
        try:
            st = os.fstat(fd)  # the file we read, whatever the path names by now
            if not self._continues(fd, st):
                head, epoch = _header(os.pread(fd, HEAD, 0))
                self._reset(epoch)  # no epoch (no header, an old journal): no trust either
                self.head = head
            self.seen = _signature(st)
            self.settled = time.time_ns() - st.st_mtime_ns > SETTLED_NS
            data = _read_from(fd, self.offset) if st.st_size != self.size else b""
        finally:
            os.close(fd)
        self.size = self.offset + len(data)
        end = data.rfind(b"\n") + 1  # an unterminated tail is unfinished: it waits
        self.feed(data[:end], self.offset)

    def _continues(self, fd: int, st: os.stat_result) -> bool:
        """The file on ``fd`` is the journal read so far: its header record (epoch and
        all) is byte for byte the one we read, and it did not shrink."""
        if not self.head or st.st_size < self.size:
            return False
        return os.pread(fd, len(self.head), 0) == self.head

    def feed(self, data: bytes, at: int) -> None:
        """Apply complete journal bytes that start at file offset ``at``."""
        pos = 0
        for line in data.split(b"\n"):
            start = at + pos
            pos += len(line) + 1
            if line.strip():
                self._apply_line(line, start)
        self.offset = at + len(data)
        self.size = max(self.size, self.offset)

    def _apply_line(self, line: bytes, at: int) -> None:
        try:
            rec = _json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("record is not an object")
            self.apply(rec)
        except (ValueError, TypeError, KeyError) as exc:
            self.bad.append((at, line, str(exc) or type(exc).__name__))

    def apply(self, rec: dict[str, Any]) -> None:
        """Apply one decoded record (``ValueError`` if it is not a valid record)."""
        op = rec.get("op")
        self.records += 1
        if op == "base":
            if not isinstance(rec.get("next"), int):
                raise ValueError("base record without 'next'")
            self.has_base = True
            self.next_generation = max(self.next_generation, rec["next"])
        elif op == "grant":
            self._grant(Lease.from_json(rec.get("lease")))
        elif op in ("release", "break"):
            self._remove(_gen(rec))
        elif op == "drop":
            self._drop(_gen(rec), rec.get("patterns"))
        elif op == "beat":
            self._beat(_gen(rec), rec.get("at"), rec.get("ttl"))
        else:
            raise ValueError(f"unknown record op {op!r}")

    # -- changing the in-memory view -------------------------------------------------

    def _grant(self, lease: Lease) -> None:
        g = lease.generation
        self._remove(g)
        self.leases[g] = lease
        self.by_agent.setdefault(lease.agent, set()).add(g)
        for p in lease.patterns:
            self.index.add(Entry(g, p, lease.exclusive, lease.agent))
        self.next_generation = max(self.next_generation, g + 1)

    def _remove(self, g: int) -> None:
        lease = self.leases.pop(g, None)
        if lease is None:
            return
        for p in lease.patterns:
            self.index.remove(g, p)
        mine = self.by_agent.get(lease.agent)
        if mine is not None:
            mine.discard(g)
            if not mine:
                del self.by_agent[lease.agent]

    def _drop(self, g: int, patterns: Any) -> None:
        if not isinstance(patterns, list):
            raise ValueError("drop record without patterns")
        lease = self.leases.get(g)
        if lease is None:
            return
        left = tuple(p for p in lease.patterns if p not in patterns)
        if not left:
            self._remove(g)
            return
        for p in lease.patterns:
            if p not in left:
                self.index.remove(g, p)
        self.leases[g] = replace(lease, patterns=left)

    def _beat(self, g: int, at: Any, ttl: Any) -> None:
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise ValueError("beat record without 'at'")
        lease = self.leases.get(g)
        if lease is not None:
            new_ttl = ttl if isinstance(ttl, int | float) and not isinstance(ttl, bool) else None
            self.leases[g] = replace(lease, heartbeat=at, ttl=new_ttl or lease.ttl)

    # -- compaction ------------------------------------------------------------------

    def snapshot_bytes(self, epoch: str) -> bytes:
        """The compacted journal: a header with ``epoch`` and one grant per live lease."""
        header = {"op": "base", "v": VERSION, "next": self.next_generation, "epoch": epoch}
        parts = [encode(header)]
        parts += [encode(grant_record(lease)) for _, lease in sorted(self.leases.items())]
        return b"".join(parts)

    def rebased(self, data: bytes) -> None:
        """The journal was just rewritten as ``data``, a :meth:`snapshot_bytes`."""
        self.head, self.epoch = _header(data)
        self.offset = self.size = len(data)
        self.seen, self.settled = None, False  # the next look checks the file again
        self.has_base, self.records = True, len(self.leases) + 1
        self.bad.clear()

    def wasteful(self, threshold: int) -> bool:
        """True when the journal is past ``threshold`` bytes and mostly dead records."""
        return self.size > threshold and self.records > 2 * (len(self.leases) + 1)


def new_epoch() -> str:
    """A journal epoch: random, so no later compaction (by anyone) can repeat it."""
    return os.urandom(8).hex()


def _signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _header(data: bytes) -> tuple[bytes, str | None]:
    """The header record at the start of ``data`` (its bytes with their framing) and its
    epoch; ``(b"", None)`` when ``data`` does not start with a whole header with an epoch."""
    start = len(data) - len(data.lstrip(b"\n"))
    end = data.find(b"\n", start)
    if end < 0:
        return b"", None  # no complete first record
    try:
        rec = _json.loads(data[start:end])
    except ValueError:
        return b"", None
    epoch = rec.get("epoch") if isinstance(rec, dict) and rec.get("op") == "base" else None
    if not isinstance(epoch, str) or not epoch:
        return b"", None
    return data[: end + 1], epoch


def _read_from(fd: int, offset: int) -> bytes:
    chunks = []
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _gen(rec: dict[str, Any]) -> int:
    g = rec.get("g")
    if not isinstance(g, int) or isinstance(g, bool):
        raise ValueError("record without a generation 'g'")
    return g
