"""Follow the message log through rotation without losing or repeating a record.

Protocol (DESIGN.md, "Tail"): keep (dev, inode, offset). A line without its newline is
unfinished, not corrupt: it stays unread until the newline arrives. At EOF, if the log
path now names another inode, drain the old file to its end, then move on to the next
file in order (newer archives first, then the live log). A complete line that does not
parse is reported to ``on_bad`` (which quarantines it) and reading continues; the tailer
never raises on content. Memory is O(1) in log size: one read chunk plus at most one
unfinished line.

Inode numbers: comparing the path's inode with that of a file we hold open is sound (no
other file can get an inode number while it is open). A remembered number is not: ext4
gives a freed one to the next new file at once. So a saved :class:`Cursor` is resumed only
in a file whose content proves it is the cursor's (the record ``last_id`` before it).

Rotated files that retention deleted before this reader got to them, and a start cursor
whose file is gone, are gaps: each is recorded in :attr:`LogTailer.skipped` for the
reader to report (with :func:`claudeswarm.storage.files.retention_ledger.loss`), never
skipped silently.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from claudeswarm.messages.record import MessageRecord
from claudeswarm.storage import json as _json
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files.log import archives
from claudeswarm.storage.paths import StatePaths

CHUNK = 256 * 1024


@dataclass(frozen=True)
class Cursor:
    """A reader's position: ``offset`` in the log file that had inode (dev, ino) when the
    position was taken, after the record ``last_id`` (the last one read, in that file or
    in the file before it). The inode is where to look; ``last_id`` is the proof."""

    dev: int
    ino: int
    offset: int
    last_id: str | None = None

    @classmethod
    def from_json(cls, obj: object, where: str = "cursor") -> Cursor:
        """A saved cursor, checked (:class:`~claudeswarm.errors.SchemaError` if not one)."""
        from claudeswarm.errors import SchemaError
        from claudeswarm.schema import build

        cursor = build(cls, obj, where)
        if cursor.offset < 0:
            raise SchemaError(f"{where}: field 'offset' is negative")
        return cursor


@dataclass(frozen=True)
class BadLine:
    """A complete line that is not a valid record, or a gap the tailer had to jump."""

    dev: int
    ino: int
    offset: int
    reason: str
    data: bytes


BadLineHandler = Callable[[BadLine], None]


@dataclass(frozen=True)
class Gap:
    """Part of the log this reader never got to: rotated files deleted (by retention)
    before it read them, or a start cursor whose file is gone.

    ``after`` is the archive seq read last (``None``: unknown; then ``last_id`` is the
    last record read, whose archive the retention ledger knows, or ``cursor`` is the start
    position that could not be resumed); ``before`` is the seq of the file read next
    (``None``: the live log). What was lost in between is worked out from the ledger
    (:func:`claudeswarm.storage.files.retention_ledger.loss`).
    """

    after: int | None
    before: int | None
    cursor: Cursor | None = None
    last_id: str | None = None

    @classmethod
    def never_read(cls, tail: LogTailer) -> Gap:
        """For a reader without a cursor, just opened at the oldest file kept: whatever
        retention deleted before that file and counted for it (while it had no cursor)."""
        return cls(None, tail.file_seq)


def max_line_bytes(body_max_bytes: int) -> int:
    """Longest line a valid record can take (a body may escape to 6 bytes per byte)."""
    return body_max_bytes * 6 + 4096


class LineQuarantine:
    """Copies bad lines into ``quarantine/lines/``; one file per (file, offset, content),
    so many readers meeting the same bad line store it once. The log itself is never
    changed. The content's digest is in the name because the inode number is not an
    identity: a later log file may get it, and a bad line at the same offset."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths
        self.count = 0

    @property
    def dir(self) -> Path:
        """``quarantine/lines`` (checked; made only when a line is stored)."""
        return self.paths.dir("quarantine", "lines")

    def __call__(self, bad: BadLine) -> None:
        self.count += 1
        folder = self.paths.dir("quarantine", "lines", create=True)  # checked before use
        digest = hashlib.blake2b(bad.data, digest_size=8).hexdigest()
        path = folder / f"{bad.dev}-{bad.ino}-{bad.offset}-{digest}.json"
        entry = {
            "offset": bad.offset,
            "reason": bad.reason,
            "data": bad.data[:4096].decode("utf-8", "backslashreplace"),
        }
        try:
            fd = _atomic.open_state(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return  # already quarantined by another reader
        try:
            os.write(fd, (_json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)


def parse_line(line: bytes) -> MessageRecord:
    """Parse one log line into a record; ``ValueError`` with a reason if it is not one."""
    return MessageRecord.from_json(_json.loads_record(line))


class LogTailer:
    """Iterate records appended to the log, following rotations in order.

    Parameters
    ----------
    paths : where the log lives.
    cursor : resume just after this position; ``None`` starts at ``start``.
    start : ``"begin"`` (oldest retained archive) or ``"end"`` (only new records).
    on_bad : called for each corrupt line (default: count only; pass a
        :class:`LineQuarantine` to keep a copy).

    Examples
    --------
    >>> with LogTailer(paths, cursor) as t:     # doctest: +SKIP
    ...     for rec in t:
    ...         print(rec.body, t.cursor)
    """

    def __init__(
        self,
        paths: StatePaths,
        cursor: Cursor | None = None,
        *,
        start: str = "begin",
        on_bad: BadLineHandler | None = None,
        max_line: int = max_line_bytes(10240),
    ) -> None:
        self.paths = paths
        self.on_bad: BadLineHandler = on_bad or (lambda bad: None)
        self.max_line = max_line
        self.skipped: list[Gap] = []  # every gap jumped, in order (reported by readers)
        self._gap: Gap | None = None  # a gap whose next file is not open yet
        self._fd: int | None = None
        self._ident = (0, 0)
        self._seq: int | None = None  # archive seq of the open file; None = the live log
        self._offset = 0  # end of the last complete line consumed
        self._buf = b""  # bytes read past _offset, not yet a complete line
        self._skipping = False  # inside an oversize line, discarding to its newline
        self._skip_from = 0  # where that line began (the cursor stays there meanwhile)
        self._last_id: str | None = None
        self._open_start(cursor, start)

    # -- public -------------------------------------------------------------------------

    @property
    def gaps(self) -> int:
        """How many gaps this reader has jumped (see :attr:`skipped`)."""
        return len(self.skipped)

    @property
    def file_seq(self) -> int | None:
        """Archive seq of the open file (``None``: the live log, or no file open)."""
        return self._seq if self._fd is not None else None

    @property
    def cursor(self) -> Cursor | None:
        """Position just after the last record consumed (``None`` if no file yet): always
        the end of a whole line, never inside an oversize one being skipped, so whoever
        resumes from it can prove it (the line is skipped again, in bounded memory)."""
        if self._fd is None:
            return None
        offset = self._skip_from if self._skipping else self._offset
        return Cursor(self._ident[0], self._ident[1], offset, self._last_id)

    def __enter__(self) -> LogTailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the open file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __iter__(self) -> Iterator[MessageRecord]:
        return self.records()

    def records(self) -> Iterator[MessageRecord]:
        """Yield every complete record available now, then stop (never blocks).

        ``self.cursor`` is advanced past each record before it is yielded, so a caller
        that stops early can persist the cursor and lose nothing.
        """
        while True:
            if self._fd is None and not self._open_next():
                return
            assert self._fd is not None
            data = os.pread(self._fd, CHUNK, self._offset + len(self._buf))
            if data:
                yield from self._consume(data)
                continue
            if not self._at_eof():
                return

    # -- reading ------------------------------------------------------------------------

    def _consume(self, data: bytes) -> Iterator[MessageRecord]:
        from_json, loads_record = MessageRecord.from_json, _json.loads_record  # hot loop
        pieces = (self._buf + data).split(b"\n")
        self._buf = pieces.pop()  # unfinished: no newline yet
        finished = False
        try:
            for line in pieces:
                start = self._offset
                self._offset += len(line) + 1
                if self._skipping:
                    self._skipping = False  # this piece is the end of an oversize line
                    continue
                if not line or line.isspace():
                    continue
                if len(line) > self.max_line:
                    self._bad(start, f"line of {len(line)} bytes exceeds {self.max_line}", line)
                    continue
                try:
                    rec = from_json(loads_record(line))
                except ValueError as exc:
                    self._bad(start, str(exc), line)
                    continue
                self._last_id = rec.id
                yield rec
            finished = True
        finally:
            if not finished:
                # The consumer stopped mid-chunk: forget what was read past the last
                # consumed line, so the next read starts again right after it.
                self._buf = b""
        if len(self._buf) > self.max_line:
            if not self._skipping:  # reported once, not once per chunk it spans
                self._skip_from = self._offset
                self._bad(self._offset, f"line exceeds {self.max_line} bytes", self._buf)
            self._offset += len(self._buf)
            self._buf = b""
            self._skipping = True

    def _bad(self, offset: int, reason: str, data: bytes) -> None:
        self.on_bad(BadLine(self._ident[0], self._ident[1], offset, reason, data[:4096]))

    def _at_eof(self) -> bool:
        """At EOF of the open file. Return True if reading should go on in another file."""
        if self._seq is None:  # the live log: finished only if it was rotated away
            try:
                st = os.lstat(self.paths.log)
            except FileNotFoundError:
                return False
            if (st.st_dev, st.st_ino) == self._ident:
                return False
            assert self._fd is not None
            if os.fstat(self._fd).st_size > self._offset + len(self._buf):
                return True  # written before the rotation: drain it first
        self._finish_file()
        return True

    def _finish_file(self) -> None:
        if self._buf.strip():
            self._bad(self._offset, "torn fragment at the end of a closed file", self._buf)
        finished = self._seq
        if finished is None:  # the live log was rotated: it is the newest archive now
            finished = self._find_archive_seq(self._ident, fresh=True)
        if finished is None:
            # Drained through our fd, but its archive is already deleted: retention deletes
            # oldest first, so every archive left is newer. Go on at the oldest of them;
            # the ones deleted in between are a gap.
            self._gap = Gap(None, None, last_id=self._last_id)
            self.on_bad(BadLine(*self._ident, self._offset, "rotated file vanished", b""))
        self.close()
        self._after_seq = finished if finished is not None else 0

    # -- opening ------------------------------------------------------------------------

    _after_seq: int | None = 0  # before any file: every archive counts as "after"
    _listing: list[tuple[int, Path]] | None = None  # archive/ as last listed

    def _archives(self, *, fresh: bool = False) -> list[tuple[int, Path]]:
        """``archive/`` as listed once per pass: reading through N archives lists the
        directory a few times, not N times (each listing costs O(N) itself)."""
        if fresh or self._listing is None:
            self._listing = archives(self.paths)
        return self._listing

    def _open_file(self, path: Path, seq: int | None, offset: int) -> bool:
        try:
            fd = _atomic.open_state(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        st = os.fstat(fd)
        self.close()
        self._fd, self._ident, self._seq = fd, (st.st_dev, st.st_ino), seq
        self._offset, self._buf, self._skipping = offset, b"", False
        return True

    def _jumped(self, gap: Gap) -> None:
        """Record ``gap``, ending at the file just opened."""
        self.skipped.append(replace(gap, before=self._seq))

    def _open_next(self) -> bool:
        """Open the file after the one just finished: the next archive, else the live log."""
        after = self._after_seq
        fresh = False
        while True:
            listing = self._archives(fresh=fresh)
            nxt = [(s, p) for s, p in listing if after is not None and s > after]
            if nxt and self._open_file(nxt[0][1], nxt[0][0], 0):
                self._note_gap(after, nxt[0][0])
                return True
            if nxt:
                listing.remove(nxt[0])  # it vanished (retention) after the listing
                continue
            if not fresh:
                fresh = True  # nothing newer as last listed: look again before the live log
                continue
            if not self._open_file(self.paths.log, None, 0):
                return False
            newer = [s for s, _ in self._archives(fresh=True) if after is not None and s > after]
            if not newer or self._find_archive_seq(self._ident) == newer[0]:
                self._note_gap(after, None)
                return True
            # a rotation slipped in between: read that archive first
            self.close()

    def _note_gap(self, after: int | None, opened: int | None) -> None:
        """After opening the next file: record a gap if files between were deleted."""
        if self._gap is not None:
            self._jumped(self._gap)
            self._gap = None
        elif after and opened is not None and opened > after + 1:
            self._jumped(Gap(after, None))

    def _find_archive_seq(self, ident: tuple[int, int], *, fresh: bool = False) -> int | None:
        # ``ident`` is always the file we hold open, so no other file can have its number
        for seq, path in reversed(self._archives(fresh=fresh)):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == ident:
                return seq
        return None

    def _open_start(self, cursor: Cursor | None, start: str) -> None:
        if cursor is not None and self._open_cursor(cursor):
            return
        if start == "end":
            if self._open_file(self.paths.log, None, 0):
                assert self._fd is not None
                # after the last complete line: one still being written is read once done
                end = os.fstat(self._fd).st_size
                self._offset = _after_last_line(self._fd, end, self.max_line)
                # the record before it, so that this position can be handed over (and
                # proven when resumed: ``log --follow`` takes it before the backward read)
                self._last_id = _last_record(self._fd, self._offset, self.max_line)[1]
        else:
            old = self._archives()
            if not (old and self._open_file(old[0][1], old[0][0], 0)):
                self._open_file(self.paths.log, None, 0)
        if cursor is not None:
            # the cursor's file is gone: re-read what is left (at-least-once), and say so
            self._jumped(Gap(None, None, cursor=cursor))

    def _open_cursor(self, cursor: Cursor) -> bool:
        """Open the cursor's file at its offset. The inode number only says where to look
        first: ext4 gives a freed one to the next new file at once (the cursor's file may
        be long deleted by retention), so the file is accepted only by its content."""
        ident = (cursor.dev, cursor.ino)

        def candidates() -> Iterator[tuple[int | None, Path]]:
            yield None, self.paths.log  # the usual case: no directory listing needed
            yield from reversed(self._archives())

        for seq, path in candidates():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == ident and st.st_size >= cursor.offset:
                if self._open_file(path, seq, cursor.offset) and self._verify(cursor, seq):
                    self._last_id = cursor.last_id
                    return True
                self.close()
        return False

    def _verify(self, cursor: Cursor, seq: int | None) -> bool:
        """The open file is the cursor's: the last record before the offset is
        ``last_id`` (passing blank and corrupt lines), or, when there is none before it
        in this file, the record that ends the file before this one is. Record ids are
        unique and a record is in one file only (rotation renames, never copies), so no
        other file passes this."""
        assert self._fd is not None
        decided, found = _last_record(self._fd, cursor.offset, self.max_line)
        if not decided:
            return False  # corrupt lines all the way back: the position cannot be proven
        if found is not None:
            return found == cursor.last_id
        if cursor.last_id is None:
            return True  # nothing was read before it, anywhere: the start of the file
        older = [p for s, p in self._archives() if seq is None or s < seq]
        return bool(older) and _last_record_of(older[-1], self.max_line) == cursor.last_id


def _last_record(fd: int, end: int, max_line: int) -> tuple[bool, str | None]:
    """``(True, id)`` of the last valid record whose line ends at or before ``end`` in the
    file on ``fd``, ``(True, None)`` when there is none, ``(False, None)`` when corrupt
    lines fill all ``8 * max_line`` bytes looked at (no log we wrote has that)."""
    window = 4096
    while True:
        start = max(0, end - window)
        lines = os.pread(fd, end - start, start).split(b"\n")
        lines.pop()  # after the last newline (all of it without one): not a whole line
        if start > 0 and lines:
            lines.pop(0)  # begins before the window
        for line in reversed(lines):
            if line.strip() and len(line) <= max_line:  # what the tailer reads as a record
                try:
                    return True, parse_line(line).id
                except ValueError:
                    continue
        if start == 0:
            return True, None
        if window >= 8 * max_line:
            return False, None
        window *= 4


def _after_last_line(fd: int, end: int, max_line: int) -> int:
    """The offset just after the last newline before ``end`` (``end`` itself if no line
    ends within reach: then nothing unfinished can be told apart)."""
    back = min(end, max_line + 2)
    cut = os.pread(fd, back, end - back).rfind(b"\n")
    return end if cut < 0 else end - back + cut + 1


def _last_record_of(path: Path, max_line: int) -> str | None:
    """The id of the last record of the file at ``path`` (``None``: none, or gone)."""
    try:
        fd = _atomic.open_state(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _last_record(fd, os.fstat(fd).st_size, max_line)[1]
    finally:
        os.close(fd)


def read_recent(
    paths: StatePaths,
    limit: int,
    keep: Callable[[MessageRecord], bool],
    *,
    max_line: int = max_line_bytes(10240),
) -> list[MessageRecord]:
    """The newest ``limit`` records passing ``keep``, oldest first, reading backwards from
    the end of the live log and then the archives (never the whole history). Lines longer
    than ``max_line`` cannot be records and are skipped."""
    found: list[MessageRecord] = []
    files = [paths.log] + [p for _, p in reversed(archives(paths))]
    for path in files:
        for rec in _reverse_records(path, max_line):
            if keep(rec):
                found.append(rec)
                if len(found) >= limit:
                    return found[::-1]
    return found[::-1]


def _reverse_records(path: Path, max_line: int) -> Iterator[MessageRecord]:
    """The records of one file, newest first, read backwards a chunk at a time.

    Memory is one chunk plus at most ``max_line`` bytes of a line whose start is not read
    yet. The unfinished tail after the last newline is not ours to read, and a line
    grown past ``max_line`` cannot be a record: both are skipped back to the newline
    before them, never accumulated, so garbage at the end of the log costs one pass.
    """
    try:
        fd = _atomic.open_state(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        end = os.fstat(fd).st_size
        carry = b""  # the end of a line whose start lies before ``end``
        skipping = True  # inside bytes that are not read: first the unfinished tail
        while end > 0:
            start = max(0, end - CHUNK)
            block = os.pread(fd, end - start, start)
            end = start
            if skipping:
                cut = block.rfind(b"\n")
                if cut < 0:
                    continue
                block, carry, skipping = block[:cut], b"", False
            lines = (block + carry).split(b"\n")
            carry = lines.pop(0) if end > 0 else b""
            for line in reversed(lines):
                if line.strip() and len(line) <= max_line:
                    try:
                        yield parse_line(line)
                    except ValueError:
                        continue  # corrupt lines are quarantined by forward readers
            if len(carry) > max_line:
                carry, skipping = b"", True
    finally:
        os.close(fd)
