"""The shared message log: framed appends under a sidecar flock, rotation by rename.

Append protocol (DESIGN.md): one record is ``"\\n" + json + "\\n"`` written with ONE
``os.write`` to an ``O_APPEND`` fd while holding ``flock`` on ``messages.lock``. Readers
skip empty lines, so a killed writer's torn fragment is closed off by the next record's
leading newline and never swallows it.

Rotation happens under the same lock: rename the live log to
``archive/messages.<seq>.jsonl`` and create a fresh one. Never copy-truncate. Before
writing, a writer compares its fd's inode with the path's, so it never writes into a
rotated inode.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from claudeswarm import _json
from claudeswarm._atomic import acquire, fsync_dir, open_state
from claudeswarm.config import Settings
from claudeswarm.models import MessageRecord
from claudeswarm.paths import StatePaths, ensure_state

_ARCHIVE_RE = re.compile(r"messages\.(\d+)\.jsonl")
#: seconds a writer waits for ``messages.lock`` before giving up (exit 4): appends hold it
#: for microseconds, so a longer wait means a stopped or wedged process holds it
LOCK_TIMEOUT = 30.0


def frame(record: MessageRecord) -> bytes:
    """The exact bytes one record occupies in the log."""
    return b"\n" + _json.dumps_record(record.to_json()) + b"\n"


def archives(paths: StatePaths) -> list[tuple[int, Path]]:
    """Rotated logs as ``(seq, path)``, oldest first (one listing of ``archive/``)."""
    folder = paths.archive  # checked: a symlinked archive/ is refused, never listed
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        m = _ARCHIVE_RE.fullmatch(name)
        if m:
            found.append((int(m.group(1)), folder / name))
    found.sort()
    return found


class MessageLog:
    """Appender for ``messages.jsonl``. Keeps its fds open between appends.

    Examples
    --------
    >>> log = MessageLog(paths, settings)          # doctest: +SKIP
    >>> log.append(record)                          # doctest: +SKIP
    """

    def __init__(self, paths: StatePaths, settings: Settings) -> None:
        self.paths = ensure_state(paths)
        self.settings = settings
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._lock_fd: int | None = None

    def close(self) -> None:
        """Close the fds (the object can still be used; it reopens)."""
        self._close_log()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _close_log(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self._ino = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # The sidecar stays open between appends: one flock/unlock pair per append.
        if self._lock_fd is None:
            self._lock_fd = open_state(self.paths.log_lock, os.O_RDWR | os.O_CREAT)
        acquire(self._lock_fd, self.paths.log_lock, LOCK_TIMEOUT)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def __enter__(self) -> MessageLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, record: MessageRecord) -> None:
        """Append one record durably against process death (one write, under the lock)."""
        self.append_many((record,))

    def append_many(self, records: Iterable[MessageRecord]) -> None:
        """Append several records under one lock hold, one ``os.write`` each.

        A full log is rotated *before* the write: housekeeping that fails then fails
        the append with nothing written, never after the records are in (a caller told
        "failed" would send them again).
        """
        frames = [frame(r) for r in records]
        with self._locked():
            fd = self._current_fd()
            if os.fstat(fd).st_size >= self.settings.rotate_bytes:
                self._rotate_locked()
                fd = self._current_fd()
            for data in frames:
                os.write(fd, data)

    def rotate(self) -> Path | None:
        """Rotate now (under the lock). Returns the archive path, or None if log empty."""
        with self._locked():
            self._current_fd()
            return self._rotate_locked()

    def _current_fd(self) -> int:
        # Called under the lock: reopen if someone rotated since our last append. The
        # inode compared is that of the file we hold open, which no other file can get
        # while it is open: equal numbers are the same file (ext4 reuses freed ones).
        try:
            st = os.lstat(self.paths.log)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            ident = None
        if self._fd is None or ident != self._ino:
            self._close_log()
            fd = open_state(self.paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            st = os.fstat(fd)
            self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        return self._fd

    def _rotate_locked(self) -> Path | None:
        assert self._fd is not None
        if os.fstat(self._fd).st_size == 0:
            return None
        existing = archives(self.paths)
        seq = existing[-1][0] + 1 if existing else 1
        dest = self.paths.file("archive", f"messages.{seq:06d}.jsonl")
        os.fsync(self._fd)
        os.rename(self.paths.log, dest)
        self._close_log()
        self._current_fd()  # the fresh live log, created before the lock is released
        fsync_dir(self.paths.state)
        fsync_dir(self.paths.archive)
        self._enforce_retention([*existing, (seq, dest)])
        return dest

    def _enforce_retention(self, existing: list[tuple[int, Path]]) -> None:
        surplus = len(existing) - self.settings.archive_keep
        for _, path in existing[: max(surplus, 0)]:
            # another rotator may have removed it first: the outcome is the same
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
