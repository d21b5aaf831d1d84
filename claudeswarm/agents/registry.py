"""The agent registry, ``agents.json``: who is in the swarm and where.

State-file protocol (DESIGN.md): writers read-modify-write under ``agents.lock`` and
replace the file atomically; readers take no lock. A record binds a stable name to a pane
id, a pid and that process's start time, so a recycled pid is never mistaken for the agent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

from claudeswarm import schema
from claudeswarm.errors import CorruptRecordError, SchemaError
from claudeswarm.messages.record import check_name
from claudeswarm.storage.files.atomic import quarantine_bytes, read_bytes, read_json, update_json
from claudeswarm.storage.paths import StatePaths, ensure_state

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
    def from_json(cls, obj: Any, where: str = "agent record") -> AgentRecord:
        """Build from a stored dict, every field type-checked, unknown keys ignored;
        :class:`~claudeswarm.errors.SchemaError` (a ``ValueError``) if unusable."""
        return schema.build(cls, obj, where)

    def to_json(self) -> dict[str, Any]:
        """The stored dict."""
        return asdict(self)


Agents = dict[str, AgentRecord]


def _decode(raw: Any) -> tuple[Agents, dict[str, str]]:
    """The valid agents in a parsed ``agents.json`` and, by name, why each other entry
    was left out (one bad entry does not hide the others)."""
    agents: Agents = {}
    bad: dict[str, str] = {}
    table = raw.get("agents", {}) if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        return agents, {"": "the file holds no 'agents' object"}
    for name, obj in table.items():
        try:
            check_name(name)  # it names files (cursors/<name>.json, panes/queued-<name>)
            rec = AgentRecord.from_json(obj, f"agent {name!r}")
            if rec.name != name:
                raise SchemaError(f"agent {name!r}: its record is named {rec.name!r}")
            agents[name] = rec
        except ValueError as exc:
            bad[name] = str(exc)
    return agents, bad


def _report(bad: dict[str, str]) -> None:
    for why in bad.values():
        schema.skipped("agents.json", why)


def load(paths: StatePaths) -> Agents:
    """All registered agents by name (no lock; a consistent snapshot).

    A corrupt registry is reported, not repaired here (readers change nothing): the
    error says how to rebuild it. Any writer (``join``, ``discover``) quarantines it.
    """
    try:
        agents, bad = _decode(read_json(paths.file("agents.json"), {"agents": {}}))
        _report(bad)
        return agents
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
        agents, bad = _decode(raw)
        new, result = change(agents)
        if new is None:
            return None, result
        if bad:  # the rewrite drops them: keep a copy first (we hold the lock)
            original = read_bytes(paths.file("agents.json")) or b""
            quarantine_bytes(paths, "agents.json", original, "; ".join(bad.values()))
        return {"v": 1, "agents": {n: a.to_json() for n, a in sorted(new.items())}}, result

    return update_json(
        paths.file("agents.json"),
        paths.file("agents.lock"),
        {"agents": {}},
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
