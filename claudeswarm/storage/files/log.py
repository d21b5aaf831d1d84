"""The shared message log: framed appends under a sidecar flock, rotation by rename.

Append protocol (DESIGN.md): one record is ``"\\n" + json + "\\n"`` written with ONE
``os.write`` to an ``O_APPEND`` fd while holding ``flock`` on ``messages.lock``. Readers
skip empty lines, so a killed writer's torn fragment is closed off by the next record's
leading newline and never swallows it.

Rotation happens under the same lock: rename the live log to
``archive/messages.<seq>.jsonl`` and create a fresh one. Never copy-truncate. Before
writing, a writer compares its fd's inode with the path's, so it never writes into a
rotated inode. Then, with the lock released, past ``archive_keep`` archives
:mod:`claudeswarm.storage.files.retention` decides which old ones go (never one a live agent has not
read, up to ``archive_max_bytes``) and records each deletion in its ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from claudeswarm.config import Settings
from claudeswarm.messages.record import MessageRecord
from claudeswarm.storage import json as _json
from claudeswarm.storage.files.atomic import acquire, fsync_dir, open_state
from claudeswarm.storage.paths import StatePaths, ensure_state

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
        # flock excludes other processes only: threads share this object's fds, so they
        # also take this mutex (else two could both "hold" the flock and one could close
        # the fd the other writes to, or lock one fd and unlock another)
        self._mutex = threading.Lock()

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
        with self._mutex:
            if self._lock_fd is None:
                self._lock_fd = open_state(self.paths.log_lock, os.O_RDWR | os.O_CREAT)
            lock_fd = self._lock_fd
            acquire(lock_fd, self.paths.log_lock, LOCK_TIMEOUT)
            try:
                yield
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

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
        "failed" would send them again). Retention follows with the lock released; it
        never fails the append.
        """
        frames = [frame(r) for r in records]
        rotated = None
        with self._locked():
            fd = self._current_fd()
            if os.fstat(fd).st_size >= self.settings.rotate_bytes:
                rotated = self._rotate_locked()
                fd = self._current_fd()
            for data in frames:
                os.write(fd, data)
        if rotated is not None:
            self._enforce_retention()  # lock released: no other sender waits for it

    def rotate(self) -> Path | None:
        """Rotate now (under the lock), then apply retention. Returns the archive path,
        or None if the log was empty."""
        with self._locked():
            self._current_fd()
            dest = self._rotate_locked()
        if dest is not None:
            self._enforce_retention()
        return dest

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
        seq = existing[-1][0] + 1 if existing else self._first_seq()
        dest = self.paths.file("archive", f"messages.{seq:06d}.jsonl")
        os.fsync(self._fd)
        os.rename(self.paths.log, dest)
        self._close_log()
        self._current_fd()  # the fresh live log, created before the lock is released
        fsync_dir(self.paths.state)
        fsync_dir(self.paths.archive)
        return dest

    def _first_seq(self) -> int:
        # archive/ is empty: continue after the last archive ever deleted, so a seq never
        # names two files (readers and the retention ledger go by seq)
        from claudeswarm.storage.files import retention_ledger

        return retention_ledger.last_seq(self.paths) + 1

    def _enforce_retention(self) -> None:
        # After a rotation, with the log lock released: counting what a reader loses may
        # read a whole archive, and no other sender should wait for that.
        if len(archives(self.paths)) <= self.settings.archive_keep:
            return
        # imported only here: a send that does not rotate past archive_keep never pays
        from claudeswarm.errors import SwarmError
        from claudeswarm.storage.files import retention

        try:
            retention.prune(self.paths, self.settings)
        except (OSError, SwarmError):
            # Retention is housekeeping: it must not refuse a send. Failing, it stops (an
            # archive is deleted only after its ledger line is written, so nothing goes
            # unrecorded) and the next rotation tries again.
            return
