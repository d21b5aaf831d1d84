"""The ``claudeswarm`` command line (the only importer of typer).

Exit codes: 0 ok, 1 error, 2 usage (bad arguments or input), 3 refused (rate limit, lock
conflict, lost claim), 4 unavailable (no tmux server, timed out waiting).

Every call is a fresh process and typer builds a click command for every registered
command on each call, so :func:`main` registers only the module that owns the command
being run (all of them for top-level ``--help``). Start-up then stays flat as commands
are added. Hook calls (``claudeswarm hook EVENT``), made after every tool call, skip typer
altogether (:mod:`claudeswarm.cli._hookfast`).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

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


def build_app(only: str | None = None) -> typer.Typer:
    """The typer app with every command, or only the module owning command ``only``."""
    from claudeswarm.cli._app import build_app as build

    return build(only)


def _command_in(argv: list[str]) -> str | None:
    args = iter(argv)
    for arg in args:
        if arg == "--state-dir":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


@contextlib.contextmanager
def _state_warnings() -> Iterator[list[str]]:
    """Collect the :class:`~claudeswarm.errors.StateWarning` s raised inside (bad records
    that readers skipped) instead of printing them the multi-line Python way; other
    warnings are shown as usual."""
    from claudeswarm.errors import StateWarning

    notes: list[str] = []
    show = warnings.showwarning

    def collect(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, StateWarning):
            notes.append(str(message))
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = collect
    try:
        yield notes
    finally:
        warnings.showwarning = show


def main() -> None:
    """Console-script entry point. A command that succeeds after skipping bad records in
    the state directory says so in one line on stderr (a failing one already printed
    its one line)."""
    from claudeswarm.cli._hookfast import fast_hook

    code: int | str | None
    with _state_warnings() as notes:
        try:
            code = fast_hook(sys.argv[1:])
            if code is None:
                build_app(_command_in(sys.argv[1:]))()
        except SystemExit as exc:
            code = exc.code
    if notes and code in (0, None):
        from claudeswarm.sanitize import inert

        more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
        print(f"claudeswarm: warning: {inert(notes[0])}{more}", file=sys.stderr)
    sys.exit(code)
