"""Shared helpers for the monitor tests: fixed records, agents, and waiting on a pilot."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.pilot import Pilot

from claudeswarm import registry
from claudeswarm.messaging import Swarm
from claudeswarm.models import MessageRecord, format_ts, new_id
from claudeswarm.paths import StatePaths

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


def live_rec(body: str, **kw: object) -> MessageRecord:
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
