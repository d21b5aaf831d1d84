"""Who is calling: the registered agent among this process's ancestors.

An agent's tool calls are its descendants, and a process cannot change its ancestry by
editing its environment. So the nearest ancestor (this process included) whose pid and
start time are a registered, not-gone agent's *is* the caller, whatever ``TMUX_PANE``,
``CLAUDESWARM_AGENT`` or ``--as`` say; naming another agent from there is refused.

A caller outside every agent's process tree (a person's shell, a script, cron) names
itself: ``--as``, else ``CLAUDESWARM_AGENT``, else the agent registered for its pane.

This guards against confused or careless agents of one Unix user. It is not a boundary
against a hostile local process: anything running as that user can write the state files
itself, or start a command outside its own process tree (``tmux new-window``, a double
fork). ``docs/SECURITY.md`` has the threat model.

Cost: one ``/proc/<pid>/stat`` read per ancestor (typically 5-10), done once per call.
"""

from __future__ import annotations

import os

from claudeswarm.agents import procs, registry
from claudeswarm.agents.registry import AgentRecord, Agents
from claudeswarm.errors import ImpersonationError, UnknownCallerError

MAX_DEPTH = 1024  # a /proc walk never loops, but a bound costs nothing

Process = tuple[int, int]  # (pid, start time): one process for good


def ancestry(pid: int | None = None, proc_dir: str = "/proc") -> list[Process]:
    """``pid`` (default: this process) and its ancestors, nearest first, below init.

    Examples
    --------
    >>> mine = ancestry()
    >>> mine[0][0] == os.getpid() and all(p > 1 for p, _ in mine)
    True
    """
    out: list[Process] = []
    pid = os.getpid() if pid is None else pid
    while pid > 1 and len(out) < MAX_DEPTH:
        proc = procs.read_proc(pid, proc_dir)
        if proc is None:
            break  # exited while we looked: its ancestors are no longer ours to claim
        out.append((proc.pid, proc.start_time))
        pid = proc.ppid
    return out


def agents_of(agents: Agents, chain: list[Process]) -> list[AgentRecord]:
    """The agents bound to the nearest process of ``chain`` that has any (usually one).

    Only live records count: not ``gone`` and with a recorded start time (without one a
    recycled pid could pass for the agent).
    """
    bound: dict[Process, list[AgentRecord]] = {}
    for rec in agents.values():
        if rec.state != "gone" and rec.pid and rec.start_time is not None:
            bound.setdefault((rec.pid, rec.start_time), []).append(rec)
    for proc in chain:
        if proc in bound:
            return bound[proc]
    return []


def process_agent(
    agents: Agents, chain: list[Process] | None = None, pane: str | None = None
) -> AgentRecord | None:
    """The agent whose process this caller runs under, or ``None`` outside every agent.

    Should one process carry several names (``join`` twice from one shell), the one
    registered for ``pane`` wins, else the latest joined.
    """
    found = agents_of(agents, ancestry() if chain is None else chain)
    return _nearest(found, pane) if found else None


def resolve(
    agents: Agents,
    claimed: str | None,
    pane: str | None,
    chain: list[Process] | None = None,
) -> str:
    """The caller's agent name; ``claimed`` is ``--as`` or ``CLAUDESWARM_AGENT``.

    Under an agent's process that agent, and a claim of any other name is an
    :class:`~claudeswarm.errors.ImpersonationError` (exit 3). Elsewhere the claim, else
    the agent registered for ``pane``; claiming another name from a registered pane is
    refused as well. :class:`UsageError` if nothing names the caller.
    """
    chain = ancestry() if chain is None else chain
    found = agents_of(agents, chain)
    if found:
        me = _nearest(found, pane)
        if claimed and claimed not in {a.name for a in found}:
            raise ImpersonationError(me.name, claimed, pane=me.pane, pid=me.pid)
        return claimed or me.name
    mine = registry.by_pane(agents, pane)
    if claimed and mine and claimed != mine.name:
        raise ImpersonationError(mine.name, claimed, pane=mine.pane)
    name = claimed or (mine.name if mine else None)
    if not name:
        raise UnknownCallerError(pane)
    return name


def _nearest(found: list[AgentRecord], pane: str | None) -> AgentRecord:
    return max(found, key=lambda a: (a.pane == pane and pane is not None, a.joined, a.name))
