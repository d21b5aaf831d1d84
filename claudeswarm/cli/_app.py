"""The typer application: the root options and the lazy registration of command modules.

Kept apart from :mod:`claudeswarm.cli` so that hook calls, which take a typer-free fast
path (:mod:`claudeswarm.cli._hookfast`), never import typer.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from claudeswarm import __version__
from claudeswarm.cli import COMMANDS, _common


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
