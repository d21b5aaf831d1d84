"""The ``claudeswarm`` command line (the only importer of typer).

Exit codes: 0 ok, 1 error, 2 usage (bad arguments or input), 3 refused (rate limit, lock
conflict, lost claim), 4 unavailable (no tmux server, timed out waiting).

Every call is a fresh process and typer builds a click command for every registered
command on each call, so :func:`main` registers only the module that owns the command
being run (all of them for top-level ``--help``). Start-up then stays flat as commands
are added.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from claudeswarm import __version__
from claudeswarm.cli import _common

#: command name -> module under claudeswarm.cli that registers it
COMMANDS: dict[str, str] = {
    "init": "setup",
    "config": "setup",
    "send": "messages",
    "broadcast": "messages",
    "inbox": "messages",
    "log": "messages",
    "join": "agents",
    "leave": "agents",
    "whoami": "agents",
    "agents": "agents",
    "monitor": "monitor",
    "lock": "locks",
    "unlock": "locks",
    "refresh": "locks",
    "locks": "locks",
    "who": "locks",
    "task": "tasks",
    "discover": "agents",
    "state": "agents",
    "status": "delivery",
    "hook": "hooks",
}


def _version(value: bool) -> None:
    if value:
        print(f"claudeswarm {__version__}")
        raise typer.Exit(0)


def _root(
    state_dir: Annotated[
        str | None,
        typer.Option(
            "--state-dir",
            help="State directory (default: nearest .claudeswarm/; env CLAUDESWARM_HOME).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """claudeswarm: discovery, messages, file leases and a task board for agents in tmux.

    Exit codes: 0 ok, 1 error, 2 usage, 3 refused/conflict, 4 unavailable.
    """
    _common.set_state_dir(state_dir)


def build_app(only: str | None = None) -> typer.Typer:
    """The typer app with every command, or only the module owning command ``only``."""
    app = typer.Typer(
        name="claudeswarm",
        help="Let AI coding agents in tmux panes find, message and coordinate.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    modules = [COMMANDS[only]] if only in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(f"claudeswarm.cli.{name}").register(app)
    return app


def _command_in(argv: list[str]) -> str | None:
    args = iter(argv)
    for arg in args:
        if arg == "--state-dir":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Console-script entry point."""
    build_app(_command_in(sys.argv[1:]))()
