"""What the monitor shows, as plain data: no Textual here, so ``--once --json`` and the
benchmark pay nothing for the UI.

Every loader is read-only: it opens files for reading, never creates a file or a
directory, never quarantines, never reclaims a lease. Locks and tasks come from their own
modules through :func:`collaborator`; while a module does not exist (or lacks the function)
its panel is a :class:`Section` with ``available=False`` and a one-line note, and it fills
in as soon as the module lands, with no change here.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from claudeswarm.agents import registry
from claudeswarm.errors import SwarmError
from claudeswarm.messages.record import parse_ts
from claudeswarm.sanitize import inert
from claudeswarm.swarm import Swarm
from claudeswarm.timeutil import age

NOT_YET = "not available yet"
TASK_STATES = ("pending", "claimed", "done", "failed")


@dataclass(frozen=True)
class AgentRow:
    """One agent as the Agents panel shows it."""

    name: str
    kind: str
    pane: str
    state: str
    last_seen: str
    seen_ago: str
    unread: str
    lost: str = ""  # messages retention deleted before the agent read them ("" if none)


@dataclass(frozen=True)
class LockRow:
    """One lease as the Locks panel shows it."""

    pattern: str
    mode: str
    holder: str
    pane: str
    reason: str
    age: str
    left: str
    acquired: float
    expires_at: float


@dataclass(frozen=True)
class TaskRow:
    """One task as the Tasks panel shows it (``ghost``: claimed by an agent that is gone)."""

    id: str
    title: str
    status: str
    priority: int
    assignee: str
    attempts: int
    ghost: bool


@dataclass(frozen=True)
class Section:
    """One panel's content, or why there is none (``available=False`` and ``note``)."""

    name: str
    available: bool
    rows: tuple[Any, ...] = ()
    note: str = ""
    counts: tuple[tuple[str, int], ...] = field(default=())


def collaborator(name: str, function: str) -> tuple[Callable[..., Any] | None, str]:
    """``claudeswarm.<name>.<function>`` if it exists, else ``(None, why)``.

    Examples
    --------
    >>> collaborator("no_such_area", "list_things")
    (None, 'not available yet')
    """
    module: ModuleType
    try:
        module = importlib.import_module(f"claudeswarm.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"claudeswarm.{name}", "claudeswarm"):
            return None, NOT_YET
        return None, f"unavailable: {exc}"
    except ImportError as exc:
        return None, f"unavailable: {exc}"
    fn = getattr(module, function, None)
    return (fn, "") if callable(fn) else (None, NOT_YET)


def _guarded(name: str, load: Callable[[], Section]) -> Section:
    """A loader's section; a broken state file becomes a one-line note, never a crash."""
    try:
        return load()
    except (SwarmError, OSError, ValueError, TypeError, AttributeError) as exc:
        return Section(name, False, note=inert(f"cannot read: {exc}"))


# -- agents -------------------------------------------------------------------------------


def agent_state(agent: registry.AgentRecord) -> str:
    """``gone`` if the recorded process no longer runs (pid gone or reused), else the
    registry's state."""
    if agent.pid is not None and not registry.process_alive(agent.pid, agent.start_time):
        return "gone"
    return agent.state


def _ago(ts: str, now: float) -> str:
    try:
        return age(now - parse_ts(ts).timestamp())
    except ValueError:
        return "?"


def load_agents(
    swarm: Swarm, unread: Mapping[str, str] | None = None, lost: Mapping[str, str] | None = None
) -> Section:
    """The Agents panel: every registered agent, with its unread count if known and what
    retention deleted before it read it."""

    def load() -> Section:
        now, counts, losses = swarm.clock(), unread or {}, lost or {}
        rows = tuple(
            AgentRow(
                name=a.name,
                kind=a.kind,
                pane=a.pane or "-",
                state=agent_state(a),
                last_seen=a.last_seen,
                seen_ago=_ago(a.last_seen, now) if a.last_seen else "-",
                unread=counts.get(a.name, "…"),
                lost=losses.get(a.name, ""),
            )
            for a in sorted(registry.load(swarm.paths).values(), key=lambda a: a.name)
        )
        return Section("agents", True, rows)

    return _guarded("agents", load)


# -- locks --------------------------------------------------------------------------------


def _left(expires_at: float, now: float) -> str:
    return "expired" if expires_at <= now else age(expires_at - now)


def load_locks(swarm: Swarm) -> Section:
    """The Locks panel from ``claudeswarm.locks.manager.list_leases`` (read-only)."""
    list_leases, why = collaborator("locks.manager", "list_leases")
    if list_leases is None:
        return Section("locks", False, note=why)

    def load() -> Section:
        now = swarm.clock()
        rows = tuple(
            LockRow(
                pattern=", ".join(lease.patterns),
                mode=lease.mode,
                holder=lease.agent,
                pane=lease.pane or "-",
                reason=lease.reason or "",
                age=age(now - lease.acquired),
                left=_left(float(lease.expires_at), now),
                acquired=float(lease.acquired),
                expires_at=float(lease.expires_at),
            )
            for lease in list_leases(swarm)
        )
        return Section("locks", True, rows)

    return _guarded("locks", load)


# -- tasks --------------------------------------------------------------------------------


def load_tasks(swarm: Swarm) -> Section:
    """The Tasks panel from ``claudeswarm.tasks.board.list_tasks`` (read-only): counts by state,
    then the tasks, unfinished first."""
    list_tasks, why = collaborator("tasks.board", "list_tasks")
    if list_tasks is None:
        return Section("tasks", False, note=why)

    def load() -> Section:
        rows = [
            TaskRow(
                id=t.id,
                title=t.title,
                status=t.status,
                priority=int(t.priority),
                assignee=t.assignee or "-",
                attempts=int(t.attempts),
                ghost=bool(t.ghost),
            )
            for t in list_tasks(swarm, verify=False)
        ]
        order = {s: i for i, s in enumerate(("claimed", "pending", "failed", "done"))}
        rows.sort(key=lambda r: (order.get(r.status, 9), -r.priority, r.id))
        counts = [(s, sum(r.status == s for r in rows)) for s in TASK_STATES]
        counts.append(("ghosts", sum(r.ghost for r in rows)))
        return Section("tasks", True, tuple(rows), counts=tuple(counts))

    return _guarded("tasks", load)


def aged(section: Section, now: float) -> Section:
    """``section`` with ages and time left recomputed for ``now`` (nothing is re-read),
    so a panel stays truthful between file changes."""
    if not section.available or not section.rows:
        return section
    first = section.rows[0]
    if isinstance(first, AgentRow):
        rows: tuple[Any, ...] = tuple(
            replace(r, seen_ago=_ago(r.last_seen, now) if r.last_seen else "-")
            for r in section.rows
        )
    elif isinstance(first, LockRow):
        rows = tuple(
            replace(r, age=age(now - r.acquired), left=_left(r.expires_at, now))
            for r in section.rows
        )
    else:
        return section
    return replace(section, rows=rows)


# -- change detection ---------------------------------------------------------------------


def _paths_of(name: str, function: str, swarm: Swarm) -> list[Path]:
    fn, _ = collaborator(name, function)
    if fn is None:
        return []
    try:
        return list(fn(swarm.paths))
    except (SwarmError, OSError):
        return []


def watched(swarm: Swarm) -> dict[str, Callable[[], Iterable[Path]]]:
    """For each panel, the files and directories whose change means "reload it"."""
    return {
        "agents": lambda: [swarm.paths.file("agents.json")],
        "locks": lambda: _paths_of("locks.manager", "state_files", swarm),
        "tasks": lambda: _paths_of("tasks.board", "state_dirs", swarm),
    }


Signature = tuple[tuple[str, int, int, int], ...]
Seen = tuple[Signature, bool]  # a signature and whether it was settled when taken

#: a file whose mtime is more recent than this may still be replaced by one with the same
#: inode number, size and mtime: ext4 gives a freed inode number to the next new file at
#: once, and mtime only moves once per clock tick
SETTLED_NS = 200_000_000


def look(paths: Callable[[], Iterable[Path]]) -> Signature:
    """:func:`signature` of the paths ``paths()`` names; a state path that cannot be named
    (say, under a planted symlink) gives one marker entry instead, so its loader reports
    it rather than the watcher crashing."""
    try:
        named = list(paths())
    except SwarmError as exc:
        return ((str(exc), 0, 0, 0),)
    return signature(named)


def signature(paths: Iterable[Path]) -> Signature:
    """What ``lstat`` says about each path (missing: zeros). A state file replaced with
    ``os.replace`` changes it (a new inode, or an old number with a later mtime); a
    Maildir directory gets a new mtime on every rename."""
    out = []
    for path in paths:
        try:
            st = os.lstat(path)
            out.append((str(path), st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(path), 0, 0, 0))
    return tuple(out)


def changed_since(
    before: Seen | None, sig: Signature, now_ns: Callable[[], int] = time.time_ns
) -> tuple[bool, Seen]:
    """Whether ``sig`` means a change since ``before``, and what to remember.

    Equal signatures are not always the same file: a file replaced twice within one
    clock tick can come back with the inode number, size and mtime seen before. A
    signature is trusted once every mtime in it was :data:`SETTLED_NS` old when taken (a
    file made later has a later mtime), so one taken sooner counts as a change once more
    when it has settled: a change it hid is then seen within a fraction of a second.
    """
    now = now_ns()  # wall-clock time, as mtimes are (never the swarm's clock)
    settled = all(now - mtime >= SETTLED_NS for _, _, mtime, _ in sig)
    if before is None:
        return True, (sig, settled)
    old, was_settled = before
    return sig != old or (settled and not was_settled), (sig, settled)


class ChangeWatcher:
    """Which named sources changed since the last call (stat only, nothing is read).

    Examples
    --------
    >>> w = ChangeWatcher({"x": lambda: [Path("/nonexistent")]})
    >>> w.changed(), w.changed()
    ({'x'}, set())
    """

    def __init__(
        self,
        sources: Mapping[str, Callable[[], Iterable[Path]]],
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sources = dict(sources)
        self.now_ns = now_ns
        self._seen: dict[str, Seen | None] = dict.fromkeys(self.sources)

    def changed(self) -> set[str]:
        """Names whose files changed (every name on the first call)."""
        out = set()
        for name, paths in self.sources.items():
            sig = look(paths)
            changed, self._seen[name] = changed_since(self._seen[name], sig, self.now_ns)
            if changed:
                out.add(name)
        return out
