"""``monitor``: the live dashboard, or one snapshot of it for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudeswarm.cli._common import JsonOpt, count, emit, swarm, table, to_plain

if TYPE_CHECKING:
    from claudeswarm.monitor.data import Section
    from claudeswarm.monitor.feed import Snapshot


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("monitor")(monitor)


def monitor(
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot of every panel and exit.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            "--messages",  # the old spelling, still accepted
            parser=count(),
            help="With --once: show at most N messages, the newest ones.",
        ),
    ] = 20,
    ring: Annotated[
        int | None,
        typer.Option(
            "--ring",
            parser=count(1),
            help="Messages kept in memory (default: setting monitor_ring).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Watch agents, locks, tasks and messages live (read-only; q quits, ? shows keys).

    Runs where it is started, inside tmux or not: it never opens panes. With --once it
    prints one snapshot (--json for scripts) and exits without starting the UI.
    """
    from claudeswarm.errors import UsageError

    if as_json and not once:
        raise UsageError("--json needs --once (the live dashboard is not JSON)")
    sw = swarm()
    if once:
        from claudeswarm.monitor.feed import snapshot

        snap = snapshot(sw, messages=limit)
        emit(_plain(snap), as_json, lambda: _text(snap))
        return
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the live monitor needs a terminal; for scripts use --once [--json]")
    from claudeswarm.monitor.app import create_app

    create_app(sw, ring_size=ring).run()


def _section(section: Section) -> dict[str, Any]:
    out: dict[str, Any] = to_plain(section)
    out["counts"] = dict(section.counts)
    return out


def _plain(snap: Snapshot) -> dict[str, Any]:
    return {
        "taken_at": snap.taken_at,
        "agents": _section(snap.agents),
        "locks": _section(snap.locks),
        "tasks": _section(snap.tasks),
        "messages": to_plain(list(snap.messages)),
    }


def _block(title: str, section: Section, header: list[str], keys: list[str]) -> str:
    if not section.available:
        return f"{title}: {section.note}"
    if not section.rows:
        return f"{title}: none"
    rows = [[getattr(r, k) for k in keys] for r in section.rows]
    counts = "  " + ", ".join(f"{n} {c}" for n, c in section.counts) if section.counts else ""
    return f"{title}{counts}\n{table(rows, header)}"


def _text(snap: Snapshot) -> str:
    from claudeswarm.cli.messages import render

    agents = ["name", "kind", "pane", "state", "seen_ago", "unread"]
    if any(getattr(r, "lost", "") for r in snap.agents.rows):
        agents.append("lost")  # messages retention deleted before the agent read them
    locks = ["pattern", "mode", "holder", "reason", "age", "left"]
    tasks = ["id", "title", "status", "priority", "assignee", "attempts", "ghost"]
    parts = [
        _block("Agents", snap.agents, agents, agents),
        _block("Locks", snap.locks, locks, locks),
        _block("Tasks", snap.tasks, tasks, tasks),
        "Messages" + "".join("\n" + render(m, full=False) for m in snap.messages),
    ]
    return "\n\n".join(parts)
