"""Stable names: bind an agent name to a pane id, a pid and that process's start time.

Pane ids (``%N``) never change while the pane lives, so names survive moves and
renumbering; ``location`` (``session:window.pane``) is refreshed on every scan. When the
pane or the process is gone, the agent is marked ``gone`` and its name may be taken back
(for example by the same pane after a tmux server restart).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from claudeswarm.agents import caller, discovery, registry
from claudeswarm.agents.registry import AgentRecord, Agents
from claudeswarm.errors import RefusedError, UnavailableError, UsageError
from claudeswarm.messages.record import check_kind, check_name, format_ts
from claudeswarm.messages.service import SYSTEM_SENDER
from claudeswarm.swarm import Swarm
from claudeswarm.tmux.client import Tmux

REPORTABLE = ("idle", "busy")


def _patterns(swarm: Swarm) -> tuple[discovery.Pattern, ...]:
    return discovery.parse_patterns(swarm.settings.agent_patterns)


def _auto_name(agents: Agents, kind: str) -> str:
    n = 1
    while f"{kind}-{n}" in agents:
        n += 1
    return f"{kind}-{n}"


def _check(name: str) -> str:
    try:
        check_name(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if name == SYSTEM_SENDER:
        raise UsageError(f"{SYSTEM_SENDER!r} is reserved")
    return name


def _bound_process(
    scan: discovery.Scan, pane_id: str, caller: int, socket: str
) -> tuple[int, str | None]:
    """The process a join from ``pane_id`` binds to, and its kind if recognised.

    The pane's agent if one is recognised there; else the outermost non-shell process
    between the pane's root and the caller (an agent we do not know, running the join
    through its own shell tool); else the pane's root process (a shell that joined).
    Refused unless the caller runs in the pane: ``TMUX_PANE`` alone proves nothing.
    """
    pane = scan.panes.get(pane_id)
    if pane is None:
        raise UnavailableError(f"pane {pane_id} is not on the tmux server at {socket}")
    if not scan.table.is_under(caller, pane.pid):  # TMUX_PANE is only an environment claim
        raise RefusedError(f"TMUX_PANE is {pane_id}, but this process does not run in that pane")
    for found in scan.found:
        if found.pane.pane_id == pane_id:
            return found.pid, found.kind
    chain = []
    pid = caller
    while scan.table.is_under(pid, pane.pid) and pid != pane.pid:
        chain.append(pid)
        pid = scan.table.procs[pid].ppid
    for pid in reversed(chain):  # outermost first
        argv, comm = scan.table.argv(pid), scan.table.procs[pid].comm
        if not discovery.is_shell(argv, comm) and not discovery.is_wrapper(argv, comm):
            return pid, "agent"
    return pane.pid, None


def join(
    swarm: Swarm,
    name: str | None = None,
    *,
    role: str = "",
    kind: str | None = None,
    tmux: Tmux | None = None,
    pane: str | None = None,
    pid: int | None = None,
) -> AgentRecord:
    """Register the current pane (``TMUX_PANE``) or, outside tmux, the calling process.

    Under a registered agent's process only that agent may be re-registered, in its own
    pane (:class:`RefusedError` otherwise: a missing ``TMUX_PANE`` does not unbind it).
    Without ``name`` the agent is named after its kind (``claude-1``, ``codex-2``), or
    takes back the name of a gone agent of the same kind that had the same location and
    directory (a tmux server restart). Refused if a live agent elsewhere holds ``name``.
    """
    if name is not None:
        _check(name)
    if kind is not None:
        try:
            check_kind(kind)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    pane = pane or registry.current_pane()
    bound = pid or os.getppid()
    socket, location, found_kind, cwd = "", "", None, os.getcwd()
    if pane:
        from claudeswarm.tmux import client as tmux_mod

        tm = tmux or tmux_mod.current()
        scan = discovery.scan(tm, _patterns(swarm))
        bound, found_kind = _bound_process(scan, pane, bound, tm.socket)
        socket, location = tm.socket, scan.panes[pane].location
        cwd = scan.panes[pane].path or cwd
    kind = kind or found_kind or "shell"
    now = format_ts(swarm.clock())
    rec = AgentRecord(
        name=name or "",
        kind=kind,
        role=role,
        pane=pane,
        pid=bound,
        start_time=registry.process_start_time(bound),
        cwd=cwd,
        location=location,
        state="active",
        joined=now,
        last_seen=now,
        socket=socket,
    )

    chain = caller.ancestry()

    def change(agents: Agents) -> tuple[Agents, AgentRecord]:
        _check_not_another(caller.process_agent(agents, chain, pane), rec)
        final = registry.touch(rec, name=name or _default_name(agents, rec, rejoin=True))
        old = agents.get(final.name)
        if old and old.state != "gone" and _other_owner(old, final):
            raise RefusedError(
                f"name {final.name!r} is taken by a live agent (pane {old.pane}, pid {old.pid})"
            )
        for other in list(agents.values()):
            mine = pane and (other.pane, other.socket) == (pane, socket)
            if mine and other.name != final.name and other.state != "gone":
                agents[other.name] = registry.touch(other, state="gone", last_seen=now)
        agents[final.name] = final
        return agents, final

    return registry.update(swarm.paths, change)


def _check_not_another(under: AgentRecord | None, rec: AgentRecord) -> None:
    """Under a registered agent's process, ``join`` may only re-register that agent: in
    its own pane, or (an agent without a pane) for its own process. Anything else would
    unbind it (a join without ``TMUX_PANE``) or give its tool calls a second name."""
    if under is None:
        return
    same_pane = bool(under.pane) and under.pane == rec.pane
    same_server = not under.socket or under.socket == rec.socket
    same_process = (under.pid, under.start_time) == (rec.pid, rec.start_time)
    if (same_pane and same_server) or (not under.pane and not rec.pane and same_process):
        return
    at = f"pane {under.pane}, pid {under.pid}" if under.pane else f"pid {under.pid}"
    hint = "run 'join' in that pane" if under.pane else "run 'join' from that process"
    raise RefusedError(f"this process runs under agent {under.name!r} ({at}); {hint}")


def _default_name(agents: Agents, rec: AgentRecord, *, rejoin: bool = False) -> str:
    for old in agents.values():
        same_pane = (old.kind, old.pane, old.socket) == (rec.kind, rec.pane, rec.socket)
        if same_pane and not _other_owner(old, rec):
            return old.name  # the same pane joining again
        if (
            rejoin
            and (old.state == "gone" or not registry.process_alive(old.pid, old.start_time))
            and old.kind == rec.kind
            and old.location
            and (old.location, old.cwd) == (rec.location, rec.cwd)
        ):
            return old.name  # same place after a server restart
    return _auto_name(agents, rec.kind)


def _other_owner(old: AgentRecord, new: AgentRecord) -> bool:
    alive = registry.process_alive(old.pid, old.start_time)
    if old.pane and new.pane:
        return (old.pane, old.socket) != (new.pane, new.socket) and alive
    return old.pid != new.pid and alive


def leave(swarm: Swarm, name: str) -> None:
    """Remove ``name`` from the registry (its messages stay in the log)."""

    def change(agents: Agents) -> tuple[Agents | None, None]:
        if name not in agents:
            raise UsageError(f"no agent named {name!r}")
        del agents[name]
        return agents, None

    registry.update(swarm.paths, change)


def set_state(swarm: Swarm, name: str, state: str) -> AgentRecord:
    """Record what the agent says it is doing (``idle`` or ``busy``); hooks call this."""
    if state not in REPORTABLE:
        raise UsageError(f"unknown state {state!r}; use one of {', '.join(REPORTABLE)}")
    now = format_ts(swarm.clock())

    def change(agents: Agents) -> tuple[Agents, AgentRecord]:
        if name not in agents:
            raise UsageError(f"no agent named {name!r}; run 'claudeswarm join' first")
        agents[name] = registry.touch(agents[name], state=state, last_seen=now)
        return agents, agents[name]

    return registry.update(swarm.paths, change)


def live(rec: AgentRecord, scan: discovery.Scan) -> bool:
    """True while ``rec``'s pane exists on the scanned server and its process lives on
    in that pane (same pid and start time)."""
    pane = scan.panes.get(rec.pane or "")
    proc = scan.table.procs.get(rec.pid or -1)
    return (
        pane is not None
        and proc is not None
        and (rec.start_time is None or proc.start_time == rec.start_time)
        and scan.table.is_under(proc.pid, pane.pid)
    )


def refresh(swarm: Swarm, tmux: Tmux, scan: discovery.Scan | None = None) -> list[AgentRecord]:
    """Scan and merge into the registry: new agents get names, known ones get their
    current location, dead ones are marked gone. Returns this server's agents."""
    scan = scan or discovery.scan(tmux, _patterns(swarm))
    now = format_ts(swarm.clock())
    socket = tmux.socket

    def change(agents: Agents) -> tuple[Agents, list[AgentRecord]]:
        ours = [a for a in agents.values() if a.socket == socket and a.pane]
        for a in ours:
            agents[a.name] = _seen(a, scan, now) if live(a, scan) else _gone(a, now)
        bound = {(a.pane, a.pid) for a in agents.values() if a.state != "gone"}
        panes_taken = {a.pane for a in agents.values() if a.state != "gone" and a.socket == socket}
        for f in scan.found:
            if (f.pane.pane_id, f.pid) in bound or f.pane.pane_id in panes_taken:
                continue
            rec = _new(agents, f, socket, now)
            agents[rec.name] = rec
        return agents, _of_server(agents.values(), socket)

    return registry.update(swarm.paths, change)


def _of_server(agents: Iterable[AgentRecord], socket: str) -> list[AgentRecord]:
    rows = [a for a in agents if a.socket == socket]
    return sorted(rows, key=lambda a: (a.state == "gone", a.location, a.name))


def _seen(a: AgentRecord, scan: discovery.Scan, now: str) -> AgentRecord:
    pane = scan.panes[a.pane or ""]
    state = "active" if a.state == "gone" else a.state
    return registry.touch(a, location=pane.location, cwd=pane.path, last_seen=now, state=state)


def _gone(a: AgentRecord, now: str) -> AgentRecord:
    return a if a.state == "gone" else registry.touch(a, state="gone", last_seen=now)


def _new(agents: Agents, f: discovery.Found, socket: str, now: str) -> AgentRecord:
    rec = AgentRecord(
        name="",
        kind=f.kind,
        pane=f.pane.pane_id,
        pid=f.pid,
        start_time=f.start_time,
        cwd=f.pane.path,
        location=f.pane.location,
        state="active",
        joined=now,
        last_seen=now,
        socket=socket,
    )
    return registry.touch(rec, name=_default_name(agents, rec))
