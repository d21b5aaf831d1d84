"""The agent registry, ``agents.json``: who is in the swarm and where.

State-file protocol (DESIGN.md): writers read-modify-write under ``agents.lock`` and
replace the file atomically; readers take no lock. A record binds a stable name to a pane
id, a pid and that process's start time, so a recycled pid is never mistaken for the agent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

from claudeswarm._atomic import read_json, update_json
from claudeswarm.errors import CorruptRecordError
from claudeswarm.paths import StatePaths, ensure_state

T = TypeVar("T")
STATES = ("active", "idle", "busy", "gone")


@dataclass(frozen=True)
class AgentRecord:
    """One agent: a stable name bound to a pane and a process."""

    name: str
    kind: str = "shell"
    role: str = ""
    pane: str | None = None
    pid: int | None = None
    start_time: int | None = None
    cwd: str = ""
    location: str = ""
    state: str = "active"
    joined: str = ""
    last_seen: str = ""
    socket: str = ""  # the tmux server (socket path) the pane lives on

    @classmethod
    def from_json(cls, obj: Any) -> AgentRecord:
        """Build from a stored dict, ignoring unknown keys; ``ValueError`` if unusable."""
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise ValueError("agent record without a name")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        """The stored dict."""
        return asdict(self)


Agents = dict[str, AgentRecord]


def _decode(raw: Any) -> Agents:
    agents: Agents = {}
    table = raw.get("agents", {}) if isinstance(raw, dict) else {}
    for name, obj in table.items() if isinstance(table, dict) else ():
        try:
            agents[name] = AgentRecord.from_json(obj)
        except (TypeError, ValueError):
            continue  # one bad entry does not hide the others
    return agents


def load(paths: StatePaths) -> Agents:
    """All registered agents by name (no lock; a consistent snapshot).

    A corrupt registry is reported, not repaired here (readers change nothing): the
    error says how to rebuild it. Any writer (``join``, ``discover``) quarantines it.
    """
    try:
        return _decode(read_json(paths.file("agents.json"), {}))
    except CorruptRecordError as exc:
        raise CorruptRecordError(
            "agents.json",
            f"{exc.reason}; rebuild it with 'claudeswarm discover' or 'claudeswarm join' "
            "(the bad file is kept in quarantine/)",
        ) from None


def update(paths: StatePaths, change: Callable[[Agents], tuple[Agents | None, T]]) -> T:
    """Read-modify-write the registry; ``change`` returns (new agents or None, result)."""
    ensure_state(paths)

    def apply(raw: Any) -> tuple[Any, T]:
        new, result = change(_decode(raw))
        if new is None:
            return None, result
        return {"v": 1, "agents": {n: a.to_json() for n, a in sorted(new.items())}}, result

    return update_json(
        paths.file("agents.json"),
        paths.file("agents.lock"),
        {},
        apply,
        quarantine=paths,
    )


def by_pane(agents: Agents, pane: str | None, socket: str | None = None) -> AgentRecord | None:
    """The live (not gone) agent bound to ``pane`` on the caller's tmux server.

    Pane ids are unique only within one server: a record made on another server (its
    ``socket`` differs from ``socket``, by default the one in ``$TMUX``) never matches.
    """
    if not pane:
        return None
    if socket is None:
        socket = os.environ.get("TMUX", "").split(",", 1)[0]
    for agent in agents.values():
        same_server = not socket or not agent.socket or agent.socket == socket
        if agent.pane == pane and agent.state != "gone" and same_server:
            return agent
    return None


def reachable(agents: Agents, to: tuple[str, ...], sender: str) -> list[AgentRecord]:
    """Registered, not-gone agents with a pane that a message to ``to`` addresses
    (``"all"``: everyone but the sender): the panes a nudge could go to."""
    names = [n for n in agents if n != sender] if "all" in to else to
    return [a for n in names if (a := agents.get(n)) and a.pane and a.state != "gone"]


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    Together with the pid it names one process for good: a recycled pid has another
    start time. ``None`` if the process does not exist or has exited (a zombie).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = data[data.rfind(b")") + 2 :].split()
    if rest[:1] in ([b"Z"], [b"X"]):
        return None  # exited, not yet reaped by its parent: dead
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int | None, start_time: int | None) -> bool:
    """True if ``pid`` runs and is the same process (same start time) as recorded."""
    if pid is None:
        return False
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def touch(agent: AgentRecord, **changes: Any) -> AgentRecord:
    """A copy of ``agent`` with ``changes`` applied."""
    return replace(agent, **changes)


def current_pane() -> str | None:
    """The tmux pane id (``%N``) this process runs in, from ``TMUX_PANE``."""
    pane = os.environ.get("TMUX_PANE", "")
    return pane if pane.startswith("%") else None
