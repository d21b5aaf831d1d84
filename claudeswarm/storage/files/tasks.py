"""The task board on disk: directory layout, file names, the task record and its JSON.

Layout (DESIGN.md, "Tasks", Maildir style)::

    tasks/tmp/       files being written (never a task yet)
    tasks/pending/   claimable          tasks/claimed/   held under a lease
    tasks/done/      completed, with a verified manifest
    tasks/failed/    given up (reason recorded)
    tasks/locks/     one flock sidecar per task (never deleted)

A task's file name is ``<rank>-<id>-<o|r>.json``: ``rank`` is ``RANK_ZERO - priority`` in
five digits, so a plain sort of ``pending/`` is "highest priority first, then oldest" (the
id is time-sortable), and the last letter says whether the task is open (``o``: anyone may
claim it) or restricted (``r``: an assignee or dependencies to check). A claimer therefore
lists ``pending/`` once and renames, reading no task file unless it is restricted. The
name never changes while the task moves between state directories. The directory a file
is in is its state; the JSON never claims a state on its own.
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

from claudeswarm.errors import StateError, UsageError
from claudeswarm.storage import json as _json
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.paths import StatePaths
from claudeswarm.tasks.model import (
    Lease,
    Task,
    _build,
    claim_history,
    from_record,
    parse_name,
    record,
)

STATES = ("pending", "claimed", "done", "failed")
PRIORITY_MIN, PRIORITY_MAX = -9999, 9999
RANK_ZERO = 50000
NAME_LEN = 39
LOCK_STRIPES = 256
MARK_MAX = 1 << 20
MAX_TASK_BYTES = 4 << 20


def tasks_dir(paths: StatePaths) -> Path:
    """``.claudeswarm/tasks`` (checked: a symlink there is refused)."""
    return paths.dir("tasks")


def state_dir(paths: StatePaths, state: str) -> Path:
    """The directory of one state (or ``tmp``/``locks``), checked like every state path:
    ``tasks`` and ``state`` must be real directories, or :class:`StateError`."""
    return paths.dir("tasks", state)


def ensure_board(paths: StatePaths) -> None:
    """Create every board directory (0700, symlinks refused)."""
    for sub in ("tmp", "locks", *STATES):
        paths.dir("tasks", sub, create=True)


def file_name(task_id: str, priority: int, restricted: bool) -> str:
    """The file name a task keeps for life (see the module doc)."""
    return f"{RANK_ZERO - priority:05d}-{task_id}-{'r' if restricted else 'o'}.json"


def names(directory: Path) -> list[str]:
    """Task file names in ``directory``, sorted (best claim first in ``pending/``)."""
    try:
        # a cheap shape test, not the regex: this runs on every claim; a name that only
        # looks right fails validation when read, and is quarantined then
        return sorted(n for n in os.listdir(directory) if len(n) == NAME_LEN and n[-5:] == ".json")
    except FileNotFoundError:
        return []


def locate(paths: StatePaths, task_id: str) -> tuple[str, Path] | None:
    """``(state, path)`` of the task with ``task_id``, or ``None``.

    A task moving while we look can be missed by one listing; the states are scanned in
    the order tasks move (pending, claimed, done/failed) and once more if not found.
    """
    for _ in range(2):
        for state in STATES:
            d = state_dir(paths, state)
            try:
                listing = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in listing:
                if n[6:32] == task_id and parse_name(n) is not None:
                    return state, d / n
    return None


def mark_path(paths: StatePaths) -> Path:
    """``tasks/pending.mark``: grows by one byte whenever a task may have become
    claimable (created, released, reaped back to pending, or a dependency done)."""
    return paths.file("tasks", "pending.mark")


def bump(paths: StatePaths) -> None:
    """Append to the pending mark (after the change it reports is committed)."""
    path = mark_path(paths)
    fd = _atomic.open_state(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b".")
        full = os.fstat(fd).st_size > MARK_MAX
    finally:
        os.close(fd)
    if full:  # a fresh inode is a change too
        _atomic.write_bytes(path, b"", durable=False)


def mark(paths: StatePaths) -> tuple[int, int]:
    """The pending mark's (inode, size): equal values mean no task became claimable.

    Only a cache hint: a mark replaced when full (or deleted) can come back with the same
    inode number and grow to the same size, and then a claimer keeps its cached listing
    for at most ``QUEUE_SECONDS``, or until it runs out. A claim is still one rename, so
    nothing is claimed twice; a task made claimable meanwhile is claimed a moment later.
    """
    try:
        st = os.lstat(mark_path(paths))
    except FileNotFoundError:
        return (0, 0)
    return (st.st_ino, st.st_size)


def lock_path(paths: StatePaths, task_id: str) -> Path:
    """The flock sidecar guarding ``task_id``: one of ``LOCK_STRIPES`` files, created on
    first use and never deleted. Striping keeps the lock directory small and spares each
    claim an inode creation; two tasks sharing a stripe only wait for each other."""
    stripe = f"{zlib.crc32(task_id.encode()) % LOCK_STRIPES:02x}.lock"
    return paths.file("tasks", "locks", stripe)


def read_task(path: Path, status: str) -> Task:
    """Read and validate one task file.

    Raises ``FileNotFoundError`` if it moved away, ``ValueError`` if it is corrupt.
    """
    return read_with_inode(path, status)[0]


def read_with_inode(path: Path, status: str) -> tuple[Task, int]:
    """The task in ``path`` and the inode it was read from (one open, no race). The
    number names the file only while it exists: never keep it to recognise a file later
    (ext4 gives a freed number to the next new file at once).

    Anything that is not a readable task file (a symlink, a directory, a FIFO, more than
    ``MAX_TASK_BYTES``, bad JSON, a bad field) raises ``ValueError`` so the caller can
    quarantine it; ``FileNotFoundError`` means it moved away.
    """
    try:
        fd = _atomic.open_state(path, os.O_RDONLY)
    except StateError as exc:
        raise ValueError(str(exc)) from None
    except PermissionError as exc:
        raise ValueError(exc.strerror or "unreadable") from None
    try:
        st = os.fstat(fd)
        if st.st_size > MAX_TASK_BYTES:
            raise ValueError(f"larger than {MAX_TASK_BYTES} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        data = b"".join(chunks)
        lease_raw = _xattr_lease(fd) if status == "claimed" else None
    finally:
        os.close(fd)
    try:
        task = from_record(_json.loads(data), status, path.name)
        if lease_raw is not None:
            lease = _build(Lease, _json.loads(lease_raw), "lease")
            task = replace(task, lease=lease, generation=lease.generation, owner=lease.agent)
            task = replace(task, history=claim_history(task))
        return task, st.st_ino
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


# -- the lease ----------------------------------------------------------------------------
#
# A claim's lease lives in an extended attribute of the claimed file: ``setxattr`` replaces
# it in one syscall (atomic for readers, ~5 us) where rewriting the file costs a new inode
# (170-500 us on ext4 here). The file's inode never changes while it is claimed, so the
# lease and the content are read through one descriptor. The next rewrite (complete,
# fail, release, reap) folds the lease into the JSON and leaves the attribute behind with
# the old inode. On a filesystem without user xattrs the lease goes into the JSON instead.

LEASE_XATTR = "user.claudeswarm.lease"
_NO_XATTR = {errno.ENOTSUP, errno.EOPNOTSUPP}


def _xattr_lease(fd: int) -> bytes | None:
    try:
        return os.getxattr(fd, LEASE_XATTR)
    except OSError as exc:
        if exc.errno == errno.ENODATA or exc.errno in _NO_XATTR:
            return None
        raise


def peek_lease(path: Path) -> Lease | Literal["unknown"] | None:
    """The lease in the xattr of ``path`` without opening the file; ``"unknown"`` when
    the attribute cannot tell (absent, unreadable, unsupported: read the file), ``None``
    when the file is gone."""
    try:
        raw = os.getxattr(path, LEASE_XATTR, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError:
        return "unknown"
    try:
        lease: Lease = _build(Lease, _json.loads(raw), "lease")
    except ValueError:
        return "unknown"
    return lease


def store_lease(paths: StatePaths, task: Task, path: Path) -> None:
    """Record ``task.lease`` on the claimed file at ``path`` (caller holds its flock).

    Not fsynced: a lease lost in a power cut leaves a leaseless claim, which the reaper
    returns to pending after the grace period.
    """
    assert task.lease is not None
    data = _json.dumps(vars(task.lease)).encode()
    try:
        os.setxattr(path, LEASE_XATTR, data, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_XATTR:
            raise
        write_task(paths, replace(task, history=claim_history(task)), path, durable=False)
        return
    os.utime(path.parent)  # an xattr changes no directory: tell mtime watchers (monitor)


def write_task(paths: StatePaths, task: Task, dest: Path, *, durable: bool) -> None:
    """Replace ``dest`` with ``task`` atomically: temp file in ``tmp/``, (fsync,) rename.

    The temp file lives in ``tmp/`` so a half-written file never shows in a state
    directory listing; its name carries our pid so ``reap`` can clear a dead writer's.
    """
    data = _encode(task)
    _atomic.write_bytes(dest, data, durable=durable, tmp_dir=state_dir(paths, "tmp"))


def _encode(task: Task) -> bytes:
    """The task file's bytes, made before any file is created (so a task that cannot be
    encoded leaves nothing behind, not even an empty temp file)."""
    try:
        return (_json.dumps(record(task)) + "\n").encode()
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes decoded by Python
        raise UsageError(f"task {task.id}: its text is not valid UTF-8") from None


def create_task(paths: StatePaths, task: Task) -> bool:
    """Commit a new task into ``pending/``: write in ``tmp/``, fsync, hard-link into
    ``pending/``, drop the temp name, fsync ``pending/``. ``False`` if a task file of that
    name exists already (an id collision, e.g. from forked id generators): unlike a
    rename, the link never replaces another task."""
    data = _encode(task)
    dest = state_dir(paths, "pending") / task.name
    tmp = state_dir(paths, "tmp") / f"{task.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = _atomic.open_state(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.unlink(tmp)  # a full disk must not leave a partial temp file either
        raise
    finally:
        os.close(fd)
    try:
        os.link(tmp, dest)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    _atomic.fsync_dir(dest.parent)
    return True


def scan(paths: StatePaths, states: tuple[str, ...] = STATES) -> Iterator[tuple[str, Path]]:
    """Every task file in ``states`` as ``(state, path)``, each directory listed once."""
    for state in states:
        d = state_dir(paths, state)
        for n in names(d):
            yield state, d / n
