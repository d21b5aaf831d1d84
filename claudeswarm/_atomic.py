"""File primitives every state file uses: sidecar ``flock`` and atomic replace.

Protocol (DESIGN.md, "State files"): read-modify-write happens under ``flock`` on a sidecar
``*.lock`` file that is never deleted; the new content goes to a temp file in the same
directory, is fsynced, then ``os.replace``-d over the old one, then the directory is
fsynced. Readers take no lock: they always see one whole version. Symlinks are refused
everywhere (``O_NOFOLLOW``), so a planted link cannot redirect a write.

``fcntl.flock`` is used directly rather than the ``filelock`` package on these paths: every
CLI call is a fresh process and ``import filelock`` costs ~16 ms of the 100 ms budget.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from claudeswarm import _json
from claudeswarm.errors import CorruptRecordError, StateError, UnavailableError

T = TypeVar("T")

FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def open_nofollow(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` that refuses a symlink at ``path`` with a one-line :class:`StateError`."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(
                f"refusing {path}: it is a symlink (state files must be real)"
            ) from None
        raise


@contextlib.contextmanager
def flocked(lock_path: Path, *, timeout: float | None = 30.0) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600, never deleted).

    A lock left behind by a killed process is not a problem: the kernel drops ``flock``
    when its holder dies, so the file's presence means nothing. ``timeout=None`` waits
    forever; otherwise :class:`UnavailableError` after ``timeout`` seconds.
    """
    fd = open_nofollow(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        _acquire(fd, lock_path, timeout)
        yield fd
    finally:
        os.close(fd)  # closing the fd releases the flock


def _acquire(fd: int, lock_path: Path, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    f"timed out after {timeout:.0f}s waiting for {lock_path.name}"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def write_bytes(
    path: Path, data: bytes, *, durable: bool = True, tmp_dir: Path | None = None
) -> None:
    """Replace ``path`` atomically with ``data`` (temp file, fsync, rename, dir fsync).

    ``durable=False`` skips the fsyncs, for state whose loss on power failure is harmless
    (a reader cursor: the worst case re-shows read messages, never hides unread ones).
    The temp file is unique to this call (pid + random) and lives beside ``path``, or in
    ``tmp_dir`` (same filesystem) so that it never shows in ``path``'s directory listing.
    """
    name = f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    tmp = tmp_dir / name if tmp_dir is not None else path.with_name("." + name)
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def append_records(path: Path, lock_path: Path, records: Iterable[Any]) -> None:
    """Append JSON records with the log's append protocol: each framed
    ``"\\n" + json + "\\n"``, all in ONE ``os.write`` to an ``O_APPEND`` fd, under the
    sidecar flock (used for side logs: read receipts, nudges)."""
    data = b"".join(b"\n" + _json.dumps(r).encode() + b"\n" for r in records)
    if not data:
        return
    with flocked(lock_path):
        fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename inside it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes | None:
    """Whole file, or ``None`` if it does not exist. Refuses symlinks."""
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: Path, default: T) -> Any | T:
    """Parse a JSON state file strictly; ``default`` if missing.

    Raises :class:`CorruptRecordError` if it does not parse, so the caller can quarantine.
    """
    data = read_bytes(path)
    if data is None or not data.strip():
        return default
    try:
        return _json.loads(data)
    except ValueError as exc:
        raise CorruptRecordError(path.name, str(exc)) from None


def write_json(path: Path, obj: Any, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``obj`` as JSON."""
    write_bytes(path, (_json.dumps(obj) + "\n").encode(), durable=durable)


def quarantine_path(quarantine_dir: Path, name: str) -> Path:
    """A fresh path in quarantine for ``name``: ``name.<UTC time>.<pid>.<ns>``, so a later
    quarantine of the same file never replaces an earlier one."""
    quarantine_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return quarantine_dir / f"{name}.{stamp}.{os.getpid()}.{time.time_ns() % 10**9:09d}"


def quarantine_file(path: Path, quarantine_dir: Path, reason: str) -> Path:
    """Move a corrupt file into quarantine (never delete it) and note why beside it."""
    dest = quarantine_path(quarantine_dir, path.name)
    os.replace(path, dest)
    write_bytes(dest.with_name(dest.name + ".why"), (reason + "\n").encode(), durable=False)
    return dest


def update_json(
    path: Path,
    lock_path: Path,
    default: Any,
    change: Callable[[Any], tuple[Any, T]],
    *,
    quarantine_dir: Path | None = None,
    durable: bool = True,
    timeout: float | None = 30.0,
) -> T:
    """Read-modify-write ``path`` under the sidecar lock.

    ``change(old) -> (new, result)``; ``new is None`` means "no write". A corrupt file is
    quarantined (when ``quarantine_dir`` is given) and ``change`` sees ``default``.
    """
    with flocked(lock_path, timeout=timeout):
        try:
            old = read_json(path, default)
        except CorruptRecordError as exc:
            if quarantine_dir is None:
                raise
            quarantine_file(path, quarantine_dir, exc.reason)
            old = default
        new, result = change(old)
        if new is not None:
            write_json(path, new, durable=durable)
        return result
