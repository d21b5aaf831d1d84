"""``join``, ``leave``, ``whoami``, ``agents``: identity in the registry."""

from __future__ import annotations

from typing import Annotated

import typer

from claudeswarm.cli._common import JsonOpt, emit, guarded, swarm, table


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("join")(join)
    app.command("leave")(leave)
    app.command("whoami")(whoami)
    app.command("agents")(agents)


@guarded
def join(
    name: Annotated[str, typer.Argument(help="Your agent name (a-z 0-9 . _ -).")],
    role: Annotated[str, typer.Option("--role", help="What this agent works on.")] = "",
    kind: Annotated[str, typer.Option("--kind", help="Agent kind (claude, codex, ...).")] = "shell",
    as_json: JsonOpt = False,
) -> None:
    """Register this pane (or, outside tmux, the calling shell) as agent NAME."""
    from claudeswarm import identity

    rec = identity.join(swarm(), name, role=role, kind=kind)
    emit(
        rec, as_json, lambda: f"joined as {rec.name}" + (f" in pane {rec.pane}" if rec.pane else "")
    )


@guarded
def leave(
    name: Annotated[
        str | None,
        typer.Option("--as", help="Agent to remove (default: this pane's or CLAUDESWARM_AGENT)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an agent from the registry (its messages stay in the log)."""
    from claudeswarm import identity, messaging

    sw = swarm()
    me = messaging.resolve_sender(sw, name)
    identity.leave(sw, me)
    emit({"left": me}, as_json, lambda: f"{me} left")


@guarded
def whoami(as_json: JsonOpt = False) -> None:
    """Print which agent this pane (or CLAUDESWARM_AGENT) is."""
    from claudeswarm import messaging, registry

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


@guarded
def agents(as_json: JsonOpt = False) -> None:
    """List registered agents (reads the registry; no tmux scan)."""
    from claudeswarm import registry

    rows = sorted(registry.load(swarm().paths).values(), key=lambda a: a.name)
    emit(
        rows,
        as_json,
        lambda: (
            table(
                [(a.name, a.kind, a.pane or "-", a.state, a.role, a.last_seen[:19]) for a in rows],
                ("NAME", "KIND", "PANE", "STATE", "ROLE", "LAST SEEN"),
            )
            if rows
            else "no agents"
        ),
    )
