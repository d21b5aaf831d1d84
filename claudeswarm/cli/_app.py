"""The typer application: the root options and the lazy registration of command modules.

Kept apart from :mod:`claudeswarm.cli` so that hook calls, which take a typer-free fast
path (:mod:`claudeswarm.cli._hookfast`), never import typer.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from claudeswarm import __version__
from claudeswarm.cli import COMMANDS, _common
from claudeswarm.cli._errors import worded
from claudeswarm.errors import EXIT_ERROR, SwarmError


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
    """Run the CLI on ``argv`` and return the exit code: the one error boundary.

    Every :class:`~claudeswarm.errors.SwarmError` a command raises ends here as one line
    on stderr and its exit code, worded for the command line (with the flags of the
    command that ran: :func:`claudeswarm.cli._errors.worded`); an ``OSError`` is one
    line and exit 1. The parser's own errors (a bad option value, a missing argument, an
    unknown command) are one line saying where help is (the command's own ``--help``),
    exit 2; click would print the usage block above them. A group called without a
    command prints its help (stdout) and exits 2. A reader that stopped reading our
    output (``claudeswarm log | head -1``) is no error: exit 0, the command's effect (if
    any) committed before it printed; :func:`claudeswarm.cli.main` then sends the
    broken stream to /dev/null. Ctrl-C is exit 130.

    The command runs here rather than through click's ``main``, which would turn a
    broken pipe into exit 1 and replace ``sys.stdout``.
    """
    # typer (pinned below 0.29) vendors click: its exception classes live there
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    cli = typer.main.get_command(build_app(command))
    try:
        with cli.make_context("claudeswarm", list(argv)) as ctx:
            code = cli.invoke(ctx)
    except typer.Exit as exc:  # --help, --version, a command's own exit code
        return exc.exit_code
    except NoArgsIsHelpError as exc:
        print(exc.format_message())
        return exc.exit_code
    except typer.TyperException as exc:  # click's ClickException and its subclasses
        text = " ".join(exc.format_message().split()).rstrip(".")
        if isinstance(exc, UsageError):
            path = (
                exc.ctx.command_path if exc.ctx else " ".join(["claudeswarm", *leaf(cli, argv)[0]])
            )
            text += f" (see '{path} --help')"
        return _common.fail(text, exc.exit_code).exit_code
    except (typer.Abort, EOFError):
        return _common.fail("aborted", 1).exit_code
    except BrokenPipeError:
        return 0
    except SwarmError as exc:  # before OSError: a LockTimeout is a TimeoutError too
        return _common.fail(worded(exc, flags_of(leaf(cli, argv)[1])), exc.exit_code).exit_code
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _common.fail(f"{exc.strerror or exc}{where}", EXIT_ERROR).exit_code
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


def leaf(cli: Any, argv: list[str]) -> tuple[list[str], Any]:
    """The path (``["task", "list"]``) and the click command ``argv`` runs, found as
    :func:`claudeswarm.cli._command_in` finds the first name: ``--state-dir`` takes a
    value, no other option before a command name does."""
    path: list[str] = []
    cmd, args = cli, iter(argv)
    for arg in args:
        if arg == "--state-dir":
            next(args, None)
        elif not arg.startswith("-"):
            sub = getattr(cmd, "commands", {}).get(arg)
            if sub is None:
                break
            path.append(arg)
            cmd = sub
    return path, cmd


def flags_of(cmd: Any) -> dict[str, str]:
    """Parameter name -> the long flag that sets it, for the options of click command ``cmd``."""
    return {
        p.name: next((o for o in p.opts if o.startswith("--")), p.opts[0])
        for p in getattr(cmd, "params", ())
        if getattr(p, "param_type_name", "") == "option" and p.opts
    }
