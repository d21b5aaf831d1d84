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

Every argument is checked once here, before any command runs: it must be UTF-8 text
(:func:`check_text`). Usage errors, ours or the parser's, are one line on stderr, exit 2.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

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


def check_text(argv: list[str]) -> str | None:
    r"""Why ``argv`` is not all text, or ``None``: the one check every argument passes.

    Python decodes argv bytes that are not UTF-8 into lone surrogates
    (``surrogateescape``); such a string can be neither written to a JSON state file nor
    printed, so it is refused here, before anything is created.

    Examples
    --------
    >>> check_text(["lock", "src/a.py"]) is None
    True
    >>> check_text(["lock", "\udcff.py"])
    "argument '\\xff.py' is not valid UTF-8 text; nothing was done"
    """
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            return f"argument '{raw}' is not valid UTF-8 text; nothing was done"
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

    argv = sys.argv[1:]
    code: int | str | None = None
    try:
        with _state_warnings() as notes:
            code = fast_hook(argv)
            if code is None:
                code = _run(argv)
        if notes and code in (0, None):
            from claudeswarm.sanitize import inert

            more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
            with contextlib.suppress(BrokenPipeError):  # nobody reads it: nothing to tell
                print(f"claudeswarm: warning: {inert(notes[0])}{more}", file=sys.stderr)
    finally:
        flush_output()
    sys.exit(code)


def _run(argv: list[str]) -> int:
    problem = check_text(argv)
    if problem is not None:
        from claudeswarm.sanitize import inert

        print(f"claudeswarm: {inert(problem)}", file=sys.stderr)
        return 2
    from claudeswarm.cli._app import run

    return run(argv, _command_in(argv))


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
