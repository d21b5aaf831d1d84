"""``hook session-start|prompt|pre-tool|post-tool|stop|install``: agent hook entry points.

A hook must never break the agent: an unexpected error is one stderr line and exit 0;
only a deliberate refusal (``pre-tool`` on a file another agent locked) exits 2. Plain
hook calls never reach this module (:mod:`claudeswarm.cli._hookfast` runs them without
typer); it serves ``--help``, ``install`` and calls with other options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from claudeswarm.cli._common import JsonOpt, emit, swarm

hook_app = typer.Typer(
    help="Hook entry points for coding agents (Claude Code: see hooks/README.md).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``hook`` group to ``app``."""
    for event, doc in (
        ("session-start", "SessionStart: join this pane if needed; print who you are and how."),
        ("prompt", "UserPromptSubmit: report busy; print unread messages (marks them read)."),
        ("pre-tool", "PreToolUse (edits): exit 2 with one stderr line if the file is locked."),
        ("post-tool", "PostToolUse: refresh your leases and report busy (cheap)."),
        ("stop", "Stop: keep going once while messages wait, else report idle."),
    ):
        hook_app.command(event, help=doc)(_runner(event))
    hook_app.command("install")(install)
    app.add_typer(hook_app, name="hook")


def _runner(event: str) -> Callable[[bool], None]:
    def command(as_json: JsonOpt = False) -> None:
        raise typer.Exit(_run(event, as_json))

    command.__doc__ = f"Run the {event} hook: hook JSON on stdin (empty or invalid means {{}})."
    return command


def _run(event: str, as_json: bool) -> int:
    from claudeswarm.cli import _common, _hookfast

    return _hookfast.run(event, as_json, _common._state["state_dir"])


def install(
    settings: Annotated[
        str | None,
        typer.Option(
            "--settings", help="Settings file to merge into (default: .claude/settings.json)."
        ),
    ] = None,
    command: Annotated[
        str,
        typer.Option(
            "--command", help="How hooks run claudeswarm (e.g. a venv's bin/claudeswarm)."
        ),
    ] = "claudeswarm",
    as_json: JsonOpt = False,
) -> None:
    """Merge claudeswarm's hooks into Claude Code's project settings (idempotent).

    Keeps every other hook and setting; refuses a file that is not valid JSON; writes
    atomically. Also creates the project's .claudeswarm/ (hooks act only where it exists).
    """
    from pathlib import Path

    from claudeswarm.hooks.install import install as do_install
    from claudeswarm.storage.paths import ensure_state

    sw = swarm()
    path = Path(settings) if settings else sw.paths.root / ".claude" / "settings.json"
    ensure_state(sw.paths)  # first: a failure after the settings are written would lie
    res = do_install(path, command)

    def text() -> str:
        if res.unchanged:
            return f"{res.path}: claudeswarm hooks already installed"
        parts = [f"added {', '.join(res.added)}" if res.added else ""]
        parts.append(f"replaced {', '.join(res.replaced)}" if res.replaced else "")
        return f"{res.path}: " + "; ".join(p for p in parts if p)

    emit(res, as_json, text)
