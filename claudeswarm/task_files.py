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

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claudeswarm import _atomic, _json
from claudeswarm.paths import StatePaths, ensure_dir

SCHEMA_VERSION = 1
STATES = ("pending", "claimed", "done", "failed")
PRIORITY_MIN, PRIORITY_MAX = -9999, 9999
RANK_ZERO = 50000
_NAME_RE = re.compile(r"(\d{5})-([0-9A-HJKMNP-TV-Z]{26})-([or])\.json")
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
        return sorted(n for n in os.listdir(directory) if _NAME_RE.fullmatch(n))
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


def lock_path(paths: StatePaths, task_id: str) -> Path:
    """The per-task flock sidecar (created on first use, never deleted)."""
    return state_dir(paths, "locks") / f"{task_id}.lock"


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
        out = {k: v for k, v in _plain(self).items() if k not in ("specs", "name")}
        out["artifacts"] = [_plain(s) for s in self.specs]
        return out


def _plain(obj: Any) -> Any:
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    return obj


def record(task: Task) -> dict[str, Any]:
    """The stored JSON object of ``task`` (status and ghost are not stored)."""
    out = _plain(task)
    for key in ("status", "owner", "ghost", "artifacts", "name"):
        out.pop(key)
    out["v"] = SCHEMA_VERSION
    return dict(out)


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
    finally:
        os.close(fd)
    try:
        return from_record(_json.loads(b"".join(chunks)), status, path.name), ino
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


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


def scan(paths: StatePaths, states: tuple[str, ...] = STATES) -> Iterator[tuple[str, Path]]:
    """Every task file in ``states`` as ``(state, path)``, each directory listed once."""
    for state in states:
        d = state_dir(paths, state)
        for n in names(d):
            yield state, d / n
