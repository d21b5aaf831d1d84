"""The ``claudeswarm`` command line (the only importer of typer).

Exit codes: 0 ok, 1 error, 2 usage (bad arguments or input), 3 refused (rate limit, lock
conflict, lost claim), 4 unavailable (no tmux server, timed out waiting).

A reader that stops reading (``claudeswarm log | head -1``, ``hook session-start | true``)
is not an error: the rest of the output goes to /dev/null and the command exits as it
would have (0, a hook's own decision), with no traceback and no "Exception ignored".

Every call is a fresh process and typer builds a click command for every registered
command on each call, so :func:`main` registers only the module that owns the command
being run (all of them for top-level ``--help``). Start-up then stays flat as commands
are added. Hook calls (``claudeswarm hook EVENT``), made after every tool call, skip typer
altogether (:mod:`claudeswarm.cli._hookfast`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

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


def main() -> None:
    """Console-script entry point."""
    from claudeswarm.cli._hookfast import fast_hook

    try:
        code = fast_hook(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        build_app(_command_in(sys.argv[1:]))()
    finally:
        flush_output()


def flush_output() -> None:
    """Flush stdout and stderr while a failure can still be handled quietly.

    Output to a pipe is buffered until exit, when the interpreter's own flush would
    meet a reader that has gone with "Exception ignored ... BrokenPipeError" and exit
    code 120. Flushing here first sends a broken stream to /dev/null instead.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            reader_gone(stream)


def reader_gone(stream: TextIO) -> None:
    """Point ``stream`` at /dev/null: its reader closed early, which is not an error, and
    whatever is still to be written (the buffer, later lines) then goes nowhere quietly.
    """
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (a test runner's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
