"""Coalescing: at most one queued nudger per agent; later sends join its queue.

A burst of messages to one agent must not start one nudger process (and type one line)
per message. Each agent has a queue file ``panes/queued-<agent>``:

- a sender appends the message id under ``flock``; if it *created* the file it owns the
  queue and starts a nudger, otherwise the queued nudger will cover the message;
- the nudger, holding the pane lock just before typing, renames the file away (so the
  next send starts a new queue), waits for any appender with ``flock``, reads every id,
  and types one line for all of them ("+N more").

No message is ever lost by this: the log is the truth, the nudge only says "look". A
sender that opened the file just before the rename notices (the path no longer names its
inode) and starts over. A queue whose nudger died is stale (its last pid line names a
dead process, or it has no pid line after :data:`ORPHAN_AFTER` seconds): the next sender
adopts it and starts a nudger that takes every id in it.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from claudeswarm.agents import registry
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.paths import StatePaths

ORPHAN_AFTER = 30.0
ATTEMPTS = 1000  # each retry means a nudger took the queue meanwhile: progress elsewhere


def queue_path(paths: StatePaths, agent: str) -> Path:
    """The queue file of ``agent`` (agent names are safe file names)."""
    paths.dir("panes", create=True)
    return paths.file("panes", f"queued-{agent}")


def _open(path: Path) -> tuple[int, bool] | None:
    try:
        return _atomic.open_state(path, os.O_RDWR | os.O_APPEND), False
    except FileNotFoundError:
        pass
    try:
        return _atomic.open_state(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL), True
    except FileExistsError:
        return None


def _stale(fd: int) -> bool:
    data = os.pread(fd, 1 << 22, 0).decode("utf-8", "replace")
    for line in reversed(data.splitlines()):  # the latest owner counts
        if line.startswith("pid:"):
            _, pid, start = [*line.split(":"), "", ""][:3]
            if not (pid.isdigit() and (start.isdigit() or not start)):
                return True  # garbage: treat the queue as orphaned
            return not registry.process_alive(int(pid), int(start) if start else None)
    return time.time() - os.fstat(fd).st_mtime > ORPHAN_AFTER


def _still_named(path: Path, fd: int) -> bool:
    """True if ``path`` still names the file open on ``fd``.

    Comparing inode numbers alone is not enough: once a taken queue is unlinked, a new
    queue may get the same inode number. So the path is looked up first and the fd is
    checked to be still linked afterwards; an inode that exists at the later moment was
    the one the path named at the earlier moment.
    """
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return mine.st_nlink > 0 and (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)


def enqueue(paths: StatePaths, agent: str, mid: str) -> bool:
    """Add message ``mid`` to ``agent``'s queue; True if the caller now owns the queue
    (and must start a nudger, then call :func:`set_owner`)."""
    path = queue_path(paths, agent)
    for _ in range(ATTEMPTS):
        opened = _open(path)
        if opened is None:
            continue
        fd, created = opened
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _still_named(path, fd):
                continue  # a nudger took this queue meanwhile: start over
            os.write(fd, f"{mid}\n".encode())
            # an orphaned queue (its nudger died) is adopted: ours takes all its ids
            return created or _stale(fd)
        finally:
            os.close(fd)
    return True  # heavy contention: rather one nudger too many than a missed nudge


def set_owner(paths: StatePaths, agent: str, pid: int) -> None:
    """Record the nudger that serves ``agent``'s queue (for stale detection)."""
    start = registry.process_start_time(pid)
    try:
        fd = _atomic.open_state(queue_path(paths, agent), os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        return  # already taken by the nudger: nothing to mark
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"pid:{pid}:{start or ''}\n".encode())
    finally:
        os.close(fd)


def take(paths: StatePaths, agent: str) -> list[str]:
    """Claim ``agent``'s queue (the next send starts a new one); the ids it held."""
    path = queue_path(paths, agent)
    taken = path.with_name(f".taking-{agent}-{os.getpid()}")
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        return []
    fd = _atomic.open_state(taken, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # an appender that opened before the rename finishes
        data = os.pread(fd, 1 << 22, 0).decode("utf-8", "replace")
    finally:
        os.close(fd)
        taken.unlink(missing_ok=True)
    ids = [ln for ln in data.splitlines() if ln and not ln.startswith("pid:")]
    return list(dict.fromkeys(ids))
