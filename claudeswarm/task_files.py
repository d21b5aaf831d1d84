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
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from claudeswarm import _atomic, _json
from claudeswarm.models import format_ts
from claudeswarm.paths import StatePaths, ensure_dir

SCHEMA_VERSION = 1
STATES = ("pending", "claimed", "done", "failed")
PRIORITY_MIN, PRIORITY_MAX = -9999, 9999
RANK_ZERO = 50000
_NAME_RE = re.compile(r"(\d{5})-([0-9A-HJKMNP-TV-Z]{26})-([or])\.json")
NAME_LEN = 39
LOCK_STRIPES = 256
MARK_MAX = 1 << 20
_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def tasks_dir(paths: StatePaths) -> Path:
    """``.claudeswarm/tasks``."""
    return paths.state / "tasks"


def state_dir(paths: StatePaths, state: str) -> Path:
    """The directory of one state (or ``tmp``/``locks``)."""
    return tasks_dir(paths) / state


def ensure_board(paths: StatePaths) -> None:
    """Create every board directory (0700, symlinks refused)."""
    for sub in ("tmp", "locks", *STATES):
        ensure_dir(state_dir(paths, sub))


def file_name(task_id: str, priority: int, restricted: bool) -> str:
    """The file name a task keeps for life (see the module doc)."""
    return f"{RANK_ZERO - priority:05d}-{task_id}-{'r' if restricted else 'o'}.json"


def parse_name(name: str) -> tuple[str, bool] | None:
    """``(id, restricted)`` of a task file name, or ``None`` for anything else."""
    m = _NAME_RE.fullmatch(name)
    return None if m is None else (m.group(2), m.group(3) == "r")


def is_task_id(text: str) -> bool:
    """True if ``text`` looks like a task id."""
    return _ID_RE.fullmatch(text) is not None


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
                if n[6:32] == task_id and _NAME_RE.fullmatch(n):
                    return state, d / n
    return None


def mark_path(paths: StatePaths) -> Path:
    """``tasks/pending.mark``: grows by one byte whenever a task may have become
    claimable (created, released, reaped back to pending, or a dependency done)."""
    return tasks_dir(paths) / "pending.mark"


def bump(paths: StatePaths) -> None:
    """Append to the pending mark (after the change it reports is committed)."""
    path = mark_path(paths)
    fd = _atomic.open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b".")
        full = os.fstat(fd).st_size > MARK_MAX
    finally:
        os.close(fd)
    if full:  # a fresh inode is a change too
        _atomic.write_bytes(path, b"", durable=False)


def mark(paths: StatePaths) -> tuple[int, int]:
    """The pending mark's (inode, size): equal values mean no task became claimable."""
    try:
        st = os.stat(mark_path(paths))
    except FileNotFoundError:
        return (0, 0)
    return (st.st_ino, st.st_size)


def lock_path(paths: StatePaths, task_id: str) -> Path:
    """The flock sidecar guarding ``task_id``: one of ``LOCK_STRIPES`` files, created on
    first use and never deleted. Striping keeps the lock directory small and spares each
    claim an inode creation; two tasks sharing a stripe only wait for each other."""
    return state_dir(paths, "locks") / f"{zlib.crc32(task_id.encode()) % LOCK_STRIPES:02x}.lock"


# -- the record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """Who holds a claim: agent, process (pid + start time), generation and expiry."""

    agent: str
    pid: int | None
    start_time: int | None
    generation: int
    expires: float
    claimed: float


@dataclass(frozen=True)
class ArtifactSpec:
    """A declared artifact: project-relative path; may it be empty; expected sha256."""

    path: str
    allow_empty: bool = False
    sha256: str | None = None


@dataclass(frozen=True)
class ManifestEntry:
    """One verified artifact at completion."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Transition:
    """One line of a task's history."""

    state: str
    agent: str
    ts: str
    note: str = ""


@dataclass(frozen=True)
class Task:
    """A task as read from the board. ``status`` is the directory it was found in.

    ``owner`` is the agent holding the current claim (``None`` unless claimed with a
    lease); ``ghost`` is True only when a verifying listing found a done task whose
    artifacts no longer match its manifest.
    """

    id: str
    title: str
    status: str
    priority: int
    assignee: str | None
    owner: str | None
    attempts: int
    created: str
    artifacts: tuple[str, ...]
    ghost: bool = False
    body: str = ""
    created_by: str = ""
    dependencies: tuple[str, ...] = ()
    specs: tuple[ArtifactSpec, ...] = ()
    generation: int = 0
    lease: Lease | None = None
    manifest: tuple[ManifestEntry, ...] | None = None
    reason: str | None = None
    history: tuple[Transition, ...] = ()
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON shape the CLI prints (``--json``)."""
        out = _nested(self)
        out["artifacts"] = out.pop("specs")
        del out["name"]
        return out


def _nested(task: Task) -> dict[str, Any]:
    # by hand rather than dataclasses.asdict: this runs on every claim and heartbeat
    out = dict(task.__dict__)
    out["lease"] = None if task.lease is None else dict(task.lease.__dict__)
    out["manifest"] = None if task.manifest is None else [vars(m) for m in task.manifest]
    out["specs"] = [vars(s) for s in task.specs]
    out["history"] = [vars(h) for h in task.history]
    out["dependencies"] = list(task.dependencies)
    out["artifacts"] = list(task.artifacts)
    return out


def record(task: Task) -> dict[str, Any]:
    """The stored JSON object of ``task`` (status, owner and ghost are not stored)."""
    out = _nested(task)
    for key in ("status", "owner", "ghost", "artifacts", "name"):
        del out[key]
    out["v"] = SCHEMA_VERSION
    return out


def _typed(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {key!r} is missing or has the wrong type")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string or null")
    return value


_KINDS: dict[str, tuple[type, ...]] = {
    "agent": (str,),
    "pid": (int, type(None)),
    "start_time": (int, type(None)),
    "generation": (int,),
    "expires": (int, float),
    "claimed": (int, float),
    "path": (str,),
    "allow_empty": (bool,),
    "sha256": (str, type(None)),
    "size": (int,),
    "state": (str,),
    "ts": (str,),
    "note": (str,),
}


def _build(cls: type[Any], raw: Any, key: str) -> Any:
    """``cls(**raw)`` with every field's JSON type checked (bools are not numbers)."""
    if type(raw) is not dict:
        raise ValueError(f"field {key!r} holds a non-object")
    for name, value in raw.items():
        kinds = _KINDS.get(name, ())
        bad_bool = isinstance(value, bool) and bool not in kinds
        if not isinstance(value, kinds) or bad_bool:
            raise ValueError(f"field {key!r}: {name!r} has the wrong type")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ValueError(f"field {key!r}: {exc}") from None


def _many(obj: dict[str, Any], key: str, cls: type[Any]) -> tuple[Any, ...]:
    return tuple(_build(cls, x, key) for x in _typed(obj, key, list))


def _ids(items: list[Any]) -> list[str]:
    if not all(isinstance(i, str) and is_task_id(i) for i in items):
        raise ValueError("field 'dependencies' must hold task ids")
    return items


def from_record(obj: Any, status: str, name: str) -> Task:
    """Validate a parsed task file; ``ValueError`` naming the first bad field."""
    if type(obj) is not dict:
        raise ValueError("task file is not an object")
    if obj.get("v") != SCHEMA_VERSION:
        raise ValueError(f"unsupported version {obj.get('v')!r}")
    parsed = parse_name(name)
    task_id = _typed(obj, "id", str)
    if parsed is None or parsed[0] != task_id:
        raise ValueError(f"file name {name!r} does not match task id {task_id!r}")
    lease_raw = obj.get("lease")
    lease = None if lease_raw is None else _build(Lease, lease_raw, "lease")
    manifest = None if obj.get("manifest") is None else _many(obj, "manifest", ManifestEntry)
    specs = _many(obj, "specs", ArtifactSpec)
    return Task(
        id=task_id,
        title=_typed(obj, "title", str),
        status=status,
        priority=_typed(obj, "priority", int),
        assignee=_opt_str(obj, "assignee"),
        owner=lease.agent if lease is not None and status == "claimed" else None,
        attempts=_typed(obj, "attempts", int),
        created=_typed(obj, "created", str),
        artifacts=tuple(s.path for s in specs),
        body=_typed(obj, "body", str),
        created_by=_typed(obj, "created_by", str),
        dependencies=tuple(_ids(_typed(obj, "dependencies", list))),
        specs=specs,
        generation=_typed(obj, "generation", int),
        lease=lease,
        manifest=manifest,
        reason=_opt_str(obj, "reason"),
        history=_many(obj, "history", Transition),
        name=name,
    )


def read_task(path: Path, status: str) -> Task:
    """Read and validate one task file.

    Raises ``FileNotFoundError`` if it moved away, ``ValueError`` if it is corrupt.
    """
    return read_with_inode(path, status)[0]


def read_with_inode(path: Path, status: str) -> tuple[Task, int]:
    """The task in ``path`` and the inode it was read from (one open, no race)."""
    fd = _atomic.open_nofollow(path, os.O_RDONLY)
    try:
        ino = os.fstat(fd).st_ino
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        lease_raw = _xattr_lease(fd) if status == "claimed" else None
    finally:
        os.close(fd)
    try:
        task = from_record(_json.loads(b"".join(chunks)), status, path.name)
        if lease_raw is not None:
            lease = _build(Lease, _json.loads(lease_raw), "lease")
            task = replace(task, lease=lease, generation=lease.generation, owner=lease.agent)
            task = replace(task, history=claim_history(task))
        return task, ino
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


def claim_history(task: Task) -> tuple[Transition, ...]:
    """The history with the current claim recorded (it may so far live only in the lease)."""
    lease = task.lease
    if lease is None:
        return task.history
    note = f"generation {lease.generation}"
    if any(h.state == "claimed" and h.note == note for h in task.history):
        return task.history
    return (*task.history, Transition("claimed", lease.agent, format_ts(lease.claimed), note))


def write_task(paths: StatePaths, task: Task, dest: Path, *, durable: bool) -> None:
    """Replace ``dest`` with ``task`` atomically: temp file in ``tmp/``, (fsync,) rename.

    The temp file lives in ``tmp/`` so a half-written file never shows in a state
    directory listing; its name carries our pid so ``reap`` can clear a dead writer's.
    """
    data = (_json.dumps(record(task)) + "\n").encode()
    tmp = state_dir(paths, "tmp") / f"{dest.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = _atomic.open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    if durable:
        _atomic.fsync_dir(dest.parent)


def create_task(paths: StatePaths, task: Task) -> bool:
    """Commit a new task into ``pending/``: write in ``tmp/``, fsync, hard-link into
    ``pending/``, drop the temp name, fsync ``pending/``. ``False`` if a task file of that
    name exists already (an id collision, e.g. from forked id generators): unlike a
    rename, the link never replaces another task."""
    dest = state_dir(paths, "pending") / task.name
    tmp = state_dir(paths, "tmp") / f"{task.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = _atomic.open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, (_json.dumps(record(task)) + "\n").encode())
        os.fsync(fd)
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
