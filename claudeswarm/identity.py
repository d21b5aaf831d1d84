"""Joining and leaving: bind a stable agent name to a pane and a process."""

from __future__ import annotations

import os

from claudeswarm import registry
from claudeswarm.errors import RefusedError, UsageError
from claudeswarm.messaging import SYSTEM_SENDER, Swarm
from claudeswarm.models import check_name, format_ts
from claudeswarm.registry import AgentRecord, Agents


def join(
    swarm: Swarm,
    name: str,
    *,
    role: str = "",
    kind: str = "shell",
    pid: int | None = None,
    pane: str | None = None,
) -> AgentRecord:
    """Register ``name`` for the current pane (``TMUX_PANE``) and the calling process.

    Refused if a live agent already holds the name from another pane or process.
    """
    try:
        check_name(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if name == SYSTEM_SENDER:
        raise UsageError(f"{SYSTEM_SENDER!r} is reserved")
    pid = pid or os.getppid()
    pane = pane or registry.current_pane()
    now = format_ts(swarm.clock())
    rec = AgentRecord(
        name=name,
        kind=kind,
        role=role,
        pane=pane,
        pid=pid,
        start_time=registry.process_start_time(pid),
        cwd=os.getcwd(),
        state="active",
        joined=now,
        last_seen=now,
    )

    def change(agents: Agents) -> tuple[Agents, AgentRecord]:
        old = agents.get(name)
        if old and old.state != "gone" and _other_owner(old, rec):
            raise RefusedError(
                f"name {name!r} is taken by a live agent (pane {old.pane}, pid {old.pid})"
            )
        for other in list(agents.values()):
            if pane and other.pane == pane and other.name != name and other.state != "gone":
                agents[other.name] = registry.touch(other, state="gone", last_seen=now)
        agents[name] = rec
        return agents, rec

    return registry.update(swarm.paths, change)


def _other_owner(old: AgentRecord, new: AgentRecord) -> bool:
    if old.pane and new.pane:
        return old.pane != new.pane and registry.process_alive(old.pid, old.start_time)
    return old.pid != new.pid and registry.process_alive(old.pid, old.start_time)


def leave(swarm: Swarm, name: str) -> None:
    """Remove ``name`` from the registry."""

    def change(agents: Agents) -> tuple[Agents | None, None]:
        if name not in agents:
            raise UsageError(f"no agent named {name!r}")
        del agents[name]
        return agents, None

    registry.update(swarm.paths, change)
