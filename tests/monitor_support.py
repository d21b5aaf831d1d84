"""Shared helpers for the monitor tests: fixed records, agents, and waiting on a pilot."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from textual.pilot import Pilot

from claudeswarm.agents import registry
from claudeswarm.messages.record import MessageRecord, format_ts, new_id
from claudeswarm.storage.paths import StatePaths
from claudeswarm.swarm import Swarm

REPO = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0  # the FakeClock's start: 2027-01-15T08:00:00Z


def rec(
    i: int,
    body: str = "",
    *,
    sender: str = "alice",
    to: tuple[str, ...] = ("bob",),
    type: str = "info",
    at: float | None = None,
) -> MessageRecord:
    """A record with a fixed time (``T0 + i`` seconds unless ``at``)."""
    when = T0 + i if at is None else at
    rid = f"{int(when * 1000):010d}{i:016d}"[-26:].rjust(26, "0")
    return MessageRecord(rid, format_ts(when), sender, to, type, body or f"message {i}")


def live_rec(body: str) -> MessageRecord:
    """A record with a fresh unique id (for writers that append many)."""
    now = time.time()
    return MessageRecord(new_id(now), format_ts(now), "alice", ("bob",), "info", body)


def append(swarm: Swarm, records: Iterable[MessageRecord]) -> None:
    """Append with the real log protocol (flock, one write per record, rotation)."""
    swarm.log.append_many(list(records))


def add_agents(swarm: Swarm, *agents: registry.AgentRecord) -> None:
    """Register agents (as ``join`` would, without a pane)."""

    def change(current: registry.Agents) -> tuple[registry.Agents, None]:
        return {**current, **{a.name: a for a in agents}}, None

    registry.update(swarm.paths, change)


def agent(name: str, **kw: object) -> registry.AgentRecord:
    """An agent last seen at a fixed time."""
    base: dict[str, object] = {
        "kind": "claude",
        "pane": "%1",
        "state": "idle",
        "joined": format_ts(T0 - 3600),
        "last_seen": format_ts(T0 - 42),
    }
    base.update(kw)
    return registry.AgentRecord(name, **base)  # type: ignore[arg-type]


async def wait_for(pilot: Pilot[None], cond: Callable[[], bool], timeout: float = 30) -> None:
    """Let the app run until ``cond()`` holds (generous timeout; never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


def tree_digest(paths: StatePaths) -> dict[str, str]:
    """Every entry under the state directory: files by content hash, dirs and links by
    kind and mode (so a created, removed or changed entry shows)."""
    out: dict[str, str] = {}
    root = paths.state
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            st = os.lstat(full)
            rel = str(full.relative_to(root))
            if full.is_symlink():
                out[rel] = "link:" + os.readlink(full)
            elif full.is_dir():
                out[rel] = f"dir:{st.st_mode:o}"
            else:
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
                out[rel] = f"file:{st.st_mode:o}:{st.st_size}:{digest}"
    return out


# -- collaborators that do not exist on this branch -------------------------------------


@dataclass(frozen=True)
class FakeLease:
    """The ``claudeswarm.locks.manager.Lease`` contract (fields the monitor reads)."""

    agent: str
    pane: str
    pid: int
    patterns: tuple[str, ...]
    mode: str
    reason: str
    acquired: float
    heartbeat: float
    ttl: float
    generation: int = 1

    @property
    def expires_at(self) -> float:
        return self.heartbeat + self.ttl


@dataclass(frozen=True)
class FakeTask:
    """The ``claudeswarm.tasks.board.Task`` contract."""

    id: str
    title: str
    status: str
    priority: int = 0
    assignee: str | None = None
    owner: str = "lead"
    attempts: int = 0
    created: str = "2027-01-15T07:00:00.000Z"
    artifacts: tuple[str, ...] = ()
    ghost: bool = False


@dataclass
class Fakes:
    """What the fake modules return, and how often they were asked."""

    leases: list[FakeLease] = field(default_factory=list)
    tasks: list[FakeTask] = field(default_factory=list)
    lease_calls: int = 0
    task_calls: int = 0


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``claudeswarm.<name>`` fail to import (``None`` in ``sys.modules``): what the
    monitor meets on an install without that part. Injects an absence, nothing else."""
    for name in names:
        monkeypatch.setitem(sys.modules, f"claudeswarm.{name}", None)


def install_fakes(monkeypatch: pytest.MonkeyPatch, fakes: Fakes) -> None:
    """Put fake ``claudeswarm.locks.manager`` / ``claudeswarm.tasks.board`` modules in
    ``sys.modules``
    with the contract's read-only functions (their state file: ``locks.json``; their
    directories: ``tasks/<state>``)."""
    locks = types.ModuleType("claudeswarm.locks.manager")
    tasks = types.ModuleType("claudeswarm.tasks.board")

    def list_leases(swarm: Swarm) -> list[FakeLease]:
        fakes.lease_calls += 1
        return list(fakes.leases)

    def list_tasks(swarm: Swarm, *, verify: bool = False) -> list[FakeTask]:
        fakes.task_calls += 1
        return list(fakes.tasks)

    locks.list_leases = list_leases  # type: ignore[attr-defined]
    locks.state_files = lambda paths: [paths.file("locks.json")]  # type: ignore[attr-defined]
    tasks.list_tasks = list_tasks  # type: ignore[attr-defined]
    tasks.state_dirs = lambda paths: [  # type: ignore[attr-defined]
        paths.state / "tasks" / s for s in ("pending", "claimed", "done", "failed")
    ]
    monkeypatch.setitem(sys.modules, "claudeswarm.locks.manager", locks)
    monkeypatch.setitem(sys.modules, "claudeswarm.tasks.board", tasks)


def sample_fakes() -> Fakes:
    """A few leases and tasks at fixed times, one of each kind worth seeing."""
    return Fakes(
        leases=[
            FakeLease(
                "alice",
                "%1",
                101,
                ("src/auth/**",),
                "exclusive",
                "refactor auth",
                T0 - 300,
                T0 - 10,
                600,
            ),
            FakeLease(
                "bob",
                "%2",
                102,
                ("docs/*.md", "README.md"),
                "shared",
                "reading",
                T0 - 1200,
                T0 - 700,
                600,
            ),
        ],
        tasks=[
            FakeTask("T0001", "write the parser", "claimed", 2, "alice", attempts=1),
            FakeTask("T0002", "fix flaky test", "pending", 1),
            FakeTask("T0003", "old job", "claimed", 0, "ghosty", attempts=2, ghost=True),
            FakeTask("T0004", "docs", "done", 0, "bob", attempts=1),
        ],
    )


# -- a writer in another process --------------------------------------------------------


def writer_main(state: str, prefix: str, count: int, batch: int, rotate_bytes: int) -> None:
    """Append ``count`` records ``<prefix>-<i>`` with the real protocol (subprocess body)."""
    from claudeswarm.config import Settings
    from claudeswarm.storage.files.log import MessageLog

    paths = StatePaths(Path(state).parent, Path(state))
    with MessageLog(paths, replace(Settings(), rotate_bytes=rotate_bytes)) as log:
        for start in range(0, count, batch):
            stop = min(count, start + batch)
            log.append_many([live_rec(f"{prefix}-{i}") for i in range(start, stop)])


def spawn_writer(
    paths: StatePaths, prefix: str, count: int, *, batch: int = 50, rotate_bytes: int = 1 << 30
) -> subprocess.Popen[bytes]:
    """Start :func:`writer_main` in a fresh Python process."""
    code = (
        "import monitor_support as m; "
        f"m.writer_main({str(paths.state)!r}, {prefix!r}, {count}, {batch}, {rotate_bytes})"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    return subprocess.Popen([sys.executable, "-c", code], env=env)
