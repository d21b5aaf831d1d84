"""``join``, ``leave``, ``whoami``, ``agents``, ``discover``, ``state``: who is where."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from claudeswarm.cli._common import (
    AsOpt,
    JsonOpt,
    after_commit,
    duration_from,
    emit,
    swarm,
    table,
)

#: the shortest time between two discover --watch scans
MIN_INTERVAL = 0.2


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("join")(join)
    app.command("leave")(leave)
    app.command("whoami")(whoami)
    app.command("agents")(agents)
    app.command("discover")(discover)
    app.command("state")(state)


def join(
    name: Annotated[
        str | None,
        typer.Argument(help="Your agent name (a-z 0-9 . _ -); default from the kind: claude-1."),
    ] = None,
    role: Annotated[str, typer.Option("--role", help="What this agent works on.")] = "",
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Agent kind (default: what runs in the pane, else shell)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register this pane (or, outside tmux, the calling shell) as agent NAME.

    Inside tmux the name is bound to the pane id and to the agent process running in
    the pane (pid + start time), so it survives pane moves and renumbering.
    """
    from claudeswarm.agents import identity

    rec = identity.join(swarm(), name, role=role, kind=kind)
    emit(
        rec, as_json, lambda: f"joined as {rec.name}" + (f" in pane {rec.pane}" if rec.pane else "")
    )


def leave(
    name: Annotated[
        str | None,
        typer.Option("--as", help="Agent to remove (default: you); refused under another agent."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an agent from the registry (its messages stay in the log)."""
    from claudeswarm.agents import identity
    from claudeswarm.messages import service as messaging

    sw = swarm()
    me = messaging.resolve_sender(sw, name)
    identity.leave(sw, me)
    emit({"left": me}, as_json, lambda: f"{me} left")


def whoami(as_json: JsonOpt = False) -> None:
    """Print which agent you are: the registered agent whose process runs this command,
    else CLAUDESWARM_AGENT or this pane's agent."""
    from claudeswarm.agents import registry
    from claudeswarm.messages import service as messaging

    sw = swarm()
    me = messaging.resolve_sender(sw, None)
    rec = registry.load(sw.paths).get(me) or registry.AgentRecord(name=me, state="unregistered")
    emit(
        rec,
        as_json,
        lambda: (
            f"{rec.name} ({rec.kind}, {rec.state}" + (f", pane {rec.pane})" if rec.pane else ")")
        ),
    )


def agents(as_json: JsonOpt = False) -> None:
    """List registered agents (reads the registry; no tmux scan)."""
    from claudeswarm.agents import registry

    rows = sorted(registry.load(swarm().paths).values(), key=lambda a: a.name)
    emit(rows, as_json, lambda: _rows(rows))


def _rows(rows: list[Any]) -> str:
    if not rows:
        return "no agents found"
    return table(
        [
            (
                a.name,
                a.pane or "-",
                a.location or "-",
                a.kind,
                a.state,
                a.pid or "-",
                a.cwd,
                a.last_seen[11:19],
            )
            for a in rows
        ],
        ("NAME", "PANE", "LOCATION", "KIND", "STATE", "PID", "CWD", "SEEN"),
    )


def discover(
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Re-scan every --interval until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            parser=duration_from(MIN_INTERVAL),
            show_default=False,
            help="Time between --watch scans, at least 200ms (default 2s).",
        ),
    ] = 2.0,
    socket: Annotated[
        str | None,
        typer.Option("--socket", help="tmux server socket path (default: $TMUX, else default)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Scan tmux for agent panes and update the registry.

    One list-panes call and one pass over /proc: agents are recognised by their
    process (claude, codex, aider, gemini, opencode; setting agent_patterns adds more)
    or because their pane ran 'claudeswarm join'. Exit 4 when no tmux server runs.
    """
    import functools
    import time

    from claudeswarm.agents import identity
    from claudeswarm.tmux import client as tmux_mod

    sw, tm = swarm(), tmux_mod.current(socket)
    while True:
        rows = identity.refresh(sw, tm)
        emit(rows, as_json, functools.partial(_rows, rows))
        if not watch:
            return
        sys.stdout.flush()  # through a pipe too, each scan as it comes
        time.sleep(interval)
        if not as_json:
            print()


def state(
    value: Annotated[str, typer.Argument(help="idle or busy.", show_default=False)],
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report what this agent is doing (hooks call it). Turning idle delivers the
    nudges that waited while it was busy."""
    from claudeswarm.agents import identity
    from claudeswarm.messages import service as messaging
    from claudeswarm.tmux import delivery

    sw = swarm()
    me = messaging.resolve_sender(sw, as_name)
    rec = identity.set_state(sw, me, value)
    kicked = value == "idle" and bool(
        after_commit(f"{me} is idle", lambda: delivery.turned_idle(sw, me))
    )
    emit(
        {"agent": me, "state": rec.state, "nudging_pending": kicked},
        as_json,
        lambda: f"{me} is {rec.state}" + (" (nudging waiting messages)" if kicked else ""),
    )
