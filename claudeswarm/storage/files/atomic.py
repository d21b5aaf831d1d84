"""File primitives every state file uses: the one safe open, sidecar ``flock``, atomic
replace and quarantine.

Protocol (DESIGN.md, "State files"): read-modify-write happens under ``flock`` on a sidecar
``*.lock`` file that is never deleted; the new content goes to a temp file in the same
directory, is fsynced, then ``os.replace``-d over the old one, then the directory is
fsynced. Readers take no lock: they always see one whole version.

Every open of a state file, to read or to write, goes through :func:`open_state`: never
through a symlink (``O_NOFOLLOW``), never waiting (``O_NONBLOCK``: a FIFO planted in place
of a state file would block the open or the first read for ever, and a writer blocked
that way holds its sidecar lock and blocks every other writer too), and only a regular
file (``fstat``). Anything else is a one-line :class:`StateError`.

``fcntl.flock`` is used directly rather than the ``filelock`` package on these paths: every
CLI call is a fresh process and ``import filelock`` costs ~16 ms of the 100 ms budget.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from claudeswarm.errors import CorruptRecordError, LockTimeout, StateError
from claudeswarm.storage import json as _json
from claudeswarm.storage.paths import StatePaths, kind_of

T = TypeVar("T")

FILE_MODE = 0o600
#: the largest JSON state file read whole (registry, cursor, rate limiter); anything
#: bigger is corrupt: it is refused (readers) or quarantined (writers), never slurped
MAX_STATE_BYTES = 16 << 20
_SAFE = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | os.O_NONBLOCK
_NOT_REGULAR = {errno.ENXIO, errno.EISDIR, errno.ENOTDIR, errno.ENODEV, errno.EOPNOTSUPP}


def open_state(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """Open the state file ``path`` safely and return the fd.

    What is at ``path`` is looked at first (``lstat``): a symlink, directory, FIFO,
    socket or device is refused without being opened, so opening has no side effect.
    ``O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`` are added to ``flags`` and ``fstat`` checks
    again what was opened, for a file swapped in between. A refusal is a
    :class:`StateError` naming the path and what is there (also for a non-directory on
    the way to it); nothing has been read or written then. ``FileNotFoundError`` passes
    through (a missing file is the caller's business), as do other ``OSError`` such as
    a permission error.
    """
    try:
        seen = os.lstat(path)
    except FileNotFoundError:
        pass  # the open below creates it (O_CREAT) or raises FileNotFoundError
    except NotADirectoryError:
        raise _refusal(path) from None
    else:
        if not stat.S_ISREG(seen.st_mode):
            raise _refusal(path, seen.st_mode)
    try:
        fd = os.open(path, flags | _SAFE, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or exc.errno in _NOT_REGULAR:
            raise _refusal(path) from None
        raise
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _refusal(path, st.st_mode)
    return fd


def _refusal(path: Path, mode: int | None = None) -> StateError:
    if mode is None:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return StateError(f"refusing {path}: a component of it is not a directory")
    what = kind_of(mode)
    return StateError(f"refusing {path}: it is {what} (state files must be regular files)")


#: the old name of :func:`open_state`, kept while branches written against it merge
open_nofollow = open_state


@contextlib.contextmanager
def flocked(lock_path: Path, *, timeout: float | None = 30.0) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600, never deleted).

    A lock left behind by a killed process is not a problem: the kernel drops ``flock``
    when its holder dies, so the file's presence means nothing. ``timeout=None`` waits
    forever; otherwise :class:`~claudeswarm.errors.LockTimeout` after ``timeout`` seconds.
    """
    fd = open_state(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        acquire(fd, lock_path, timeout)
        yield fd
    finally:
        os.close(fd)  # closing the fd releases the flock


def acquire(fd: int, lock_path: Path, timeout: float | None) -> None:
    """``flock(LOCK_EX)`` on ``fd``, giving up with
    :class:`~claudeswarm.errors.LockTimeout` after ``timeout`` seconds (``None``: wait
    for ever). The first try does not wait."""
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
                raise LockTimeout(lock_path.name, timeout) from None
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
    fd = open_state(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
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
        fd = open_state(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
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


def read_bytes(path: Path, limit: int = MAX_STATE_BYTES) -> bytes | None:
    """Whole file, or ``None`` if it does not exist (opened with :func:`open_state`).

    A file longer than ``limit`` bytes raises :class:`CorruptRecordError` after reading
    at most ``limit + 1`` bytes, so a huge file costs neither time nor memory.
    """
    try:
        fd = open_state(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    if left <= 0:
        raise CorruptRecordError(path.name, f"larger than {limit} bytes")
    return b"".join(chunks)


def read_lines(path: Path, max_line: int) -> Iterator[bytes]:
    """The complete lines of a side log (``receipts.jsonl``, ``nudges.jsonl``), read
    forward in chunks: memory is bounded by ``max_line``, whatever the file holds. A line
    longer than ``max_line`` and an unterminated last line are skipped. Nothing if the
    file does not exist."""
    try:
        fd = open_state(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        carry, skipping = b"", False
        while chunk := os.read(fd, 1 << 18):
            *lines, rest = (carry + chunk).split(b"\n")
            for line in lines:
                if skipping:
                    skipping = False  # the end of an oversize line
                elif len(line) <= max_line:
                    yield line
            carry = rest
            if len(carry) > max_line:
                carry, skipping = b"", True
    finally:
        os.close(fd)


def read_json(path: Path, default: T, limit: int = MAX_STATE_BYTES) -> Any | T:
    """Parse a JSON state file strictly; ``default`` if missing or empty.

    Raises :class:`CorruptRecordError` if it does not parse (or is larger than
    ``limit``), so the caller can quarantine; :class:`StateError` if it is not a
    regular file.
    """
    data = read_bytes(path, limit)
    if data is None or not data.strip():
        return default
    try:
        return _json.loads(data)
    except ValueError as exc:
        raise CorruptRecordError(path.name, str(exc)) from None


def write_json(path: Path, obj: Any, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``obj`` as JSON."""
    write_bytes(path, (_json.dumps(obj) + "\n").encode(), durable=durable)


def quarantine_path(paths: StatePaths, name: str, *sub: str) -> Path:
    """A fresh path in ``quarantine/`` (or ``quarantine/<sub>/``) for ``name``:
    ``name.<UTC time>.<pid>.<ns>``, so a later quarantine of the same file never replaces
    an earlier one. The quarantine directories are checked (and made) first: a symlink
    there is refused before anything is moved."""
    folder = paths.dir("quarantine", *sub, create=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return folder / f"{name}.{stamp}.{os.getpid()}.{time.time_ns() % 10**9:09d}"


def quarantine_file(path: Path, paths: StatePaths, reason: str, *sub: str) -> Path:
    """Move a corrupt file into quarantine (never delete it) and note why beside it."""
    dest = quarantine_path(paths, path.name, *sub)
    os.replace(path, dest)
    write_bytes(dest.with_name(dest.name + ".why"), (reason + "\n").encode(), durable=False)
    return dest


def quarantine_bytes(paths: StatePaths, name: str, data: bytes, reason: str) -> Path:
    """Keep a copy of bad records taken out of a state file (the file itself is then
    rewritten without them), with a note of why."""
    dest = quarantine_path(paths, name)
    write_bytes(dest, data, durable=False)
    write_bytes(dest.with_name(dest.name + ".why"), (reason + "\n").encode(), durable=False)
    return dest


def update_json(
    path: Path,
    lock_path: Path,
    default: Any,
    change: Callable[[Any], tuple[Any, T]],
    *,
    quarantine: StatePaths | None = None,
    validate: Callable[[Any], object] | None = None,
    durable: bool = True,
    timeout: float | None = 30.0,
) -> T:
    """Read-modify-write ``path`` under the sidecar lock.

    ``change(old) -> (new, result)``; ``new is None`` means "no write". A file that does
    not parse, or that ``validate`` rejects (``ValueError``, such as a
    :class:`~claudeswarm.errors.SchemaError`), is quarantined when ``quarantine`` is
    given, and ``change`` sees ``default``; otherwise the error is raised.
    """
    with flocked(lock_path, timeout=timeout):
        try:
            old = read_json(path, default)
            if validate is not None and old is not default:
                validate(old)
        except (CorruptRecordError, ValueError) as exc:
            if quarantine is None:
                raise
            reason = exc.reason if isinstance(exc, CorruptRecordError) else str(exc)
            quarantine_file(path, quarantine, reason)
            old = default
        new, result = change(old)
        if new is not None:
            write_json(path, new, durable=durable)
        return result
