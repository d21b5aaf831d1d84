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


def run(argv: list[str], command: str | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code.

    The parser's own errors (a bad option value, a missing argument, an unknown command)
    are one line on stderr saying where help is, exit 2, like every other usage error;
    click would print the usage block above them. A group called without a command
    prints its help (stdout) and exits 2.
    """
    # typer (pinned below 0.29) vendors click: its exception classes live there
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    cli = typer.main.get_command(build_app(command))
    try:
        code = cli.main(args=argv, prog_name="claudeswarm", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.format_message())
        return exc.exit_code
    except typer.TyperException as exc:  # click's ClickException and its subclasses
        text = " ".join(exc.format_message().split()).rstrip(".")
        if isinstance(exc, UsageError):
            text += f" (see '{exc.ctx.command_path if exc.ctx else 'claudeswarm'} --help')"
        return _common.fail(text, exc.exit_code).exit_code
    except typer.Abort:
        return _common.fail("aborted", 1).exit_code
    return code if isinstance(code, int) else 0
