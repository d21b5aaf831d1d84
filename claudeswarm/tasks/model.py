"""The task record: its dataclasses and their strict JSON form.

``status`` is not stored: the directory a task file is in is its state. A claim's lease
may live outside the JSON (see :mod:`claudeswarm.storage.files.tasks`); :func:`claim_history`
folds it into the history when the file is next rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from claudeswarm import schema
from claudeswarm.errors import SchemaError
from claudeswarm.messages.record import format_ts

T = TypeVar("T")
SCHEMA_VERSION = 1
_NAME_RE = re.compile(r"(\d{5})-([0-9A-HJKMNP-TV-Z]{26})-([or])\.json")
_ID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def parse_name(name: str) -> tuple[str, bool] | None:
    """``(id, restricted)`` of a task file name, or ``None`` for anything else."""
    m = _NAME_RE.fullmatch(name)
    return None if m is None else (m.group(2), m.group(3) == "r")


def is_task_id(text: str) -> bool:
    """True if ``text`` looks like a task id."""
    return _ID_RE.fullmatch(text) is not None


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


# the schema layer's checks for the task file's fields, looked up once: claims read task
# files on their hot path
_STR, _INT, _OPT_STR, _LIST = (schema.checker(t) for t in (str, int, str | None, list[Any]))


def _typed(obj: dict[str, Any], key: str, check: schema.Check) -> Any:
    """Field ``key`` of a task file through ``check`` (the message built only on failure)."""
    try:
        return check(obj.get(key))
    except SchemaError as exc:
        raise SchemaError(f"field {key!r} {exc}") from None


def _build(cls: type[T], raw: Any, key: str) -> T:
    """A nested record (lease, artifact, history entry): every field type-checked by the
    schema layer, unknown fields refused (bools are not numbers)."""
    try:
        result: T = schema.checker(cls, strict=True)(raw)
    except SchemaError as exc:
        raise SchemaError(f"field {key!r}: {exc}") from None
    return result


def _many(obj: dict[str, Any], key: str, cls: type[T]) -> tuple[T, ...]:
    """A list field of nested records (unknown fields refused)."""
    check = schema.checker(cls, strict=True)
    out = []
    for i, raw in enumerate(_typed(obj, key, _LIST)):
        try:
            out.append(check(raw))
        except SchemaError as exc:
            raise SchemaError(f"field {key!r}[{i}]: {exc}") from None
    return tuple(out)


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
    task_id = _typed(obj, "id", _STR)
    if parsed is None or parsed[0] != task_id:
        raise ValueError(f"file name {name!r} does not match task id {task_id!r}")
    lease_raw = obj.get("lease")
    lease = None if lease_raw is None else _build(Lease, lease_raw, "lease")
    manifest = None if obj.get("manifest") is None else _many(obj, "manifest", ManifestEntry)
    specs = _many(obj, "specs", ArtifactSpec)
    return Task(
        id=task_id,
        title=_typed(obj, "title", _STR),
        status=status,
        priority=_typed(obj, "priority", _INT),
        assignee=_typed(obj, "assignee", _OPT_STR),
        owner=lease.agent if lease is not None and status == "claimed" else None,
        attempts=_typed(obj, "attempts", _INT),
        created=_typed(obj, "created", _STR),
        artifacts=tuple(s.path for s in specs),
        body=_typed(obj, "body", _STR),
        created_by=_typed(obj, "created_by", _STR),
        dependencies=tuple(_ids(_typed(obj, "dependencies", _LIST))),
        specs=specs,
        generation=_typed(obj, "generation", _INT),
        lease=lease,
        manifest=manifest,
        reason=_typed(obj, "reason", _OPT_STR),
        history=_many(obj, "history", Transition),
        name=name,
    )


def claim_history(task: Task) -> tuple[Transition, ...]:
    """The history with the current claim recorded (it may so far live only in the lease)."""
    lease = task.lease
    if lease is None:
        return task.history
    note = f"generation {lease.generation}"
    if any(h.state == "claimed" and h.note == note for h in task.history):
        return task.history
    return (*task.history, Transition("claimed", lease.agent, format_ts(lease.claimed), note))
