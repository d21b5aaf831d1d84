"""How the command line words the library's errors (no typer here: hooks use it too).

A library error names its parameters as Python calls them (``ttl``) and states what is
wrong; the command line knows its flags (``--ttl``) and the commands that repair things
(``claudeswarm unlock --repair``), so it words the line itself from the error's fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from claudeswarm.errors import (
    ArtifactError,
    CorruptLeaseTableError,
    InvalidArgumentError,
    SwarmError,
    UnknownCallerError,
)

#: the environment variable that names the caller
AGENT_ENV = "CLAUDESWARM_AGENT"


def worded(exc: SwarmError, flags: Mapping[str, str] | None = None) -> str:
    """``exc`` as the command line says it. ``flags`` maps the running command's
    parameter names to its flags: a library parameter becomes the flag that set it
    (``ttl`` -> ``--ttl``), and advice names only flags the command has. An error whose
    remedy is a command names that command. Anything else is ``str(exc)``.

    Examples
    --------
    >>> worded(InvalidArgumentError("ttl", "must be positive, not 0"), {"ttl": "--ttl"})
    '--ttl must be positive, not 0'
    >>> worded(UnknownCallerError(), {})
    "who are you? run 'claudeswarm join NAME' in this pane or set CLAUDESWARM_AGENT"
    """
    flags = flags or {}
    if isinstance(exc, InvalidArgumentError) and exc.param in flags:
        return f"{flags[exc.param]} {exc.problem}"
    if isinstance(exc, UnknownCallerError):
        name = ", pass --as NAME," if "as_name" in flags else ""
        return f"who are you? run 'claudeswarm join NAME' in this pane{name} or set {AGENT_ENV}"
    if isinstance(exc, CorruptLeaseTableError):
        return (
            f"lease table {exc.path} is corrupt (no header record); run "
            "'claudeswarm unlock --repair' to quarantine it"
        )
    if isinstance(exc, ArtifactError) and exc.problem == exc.EMPTY and "artifact_empty" in flags:
        done = f"cannot complete task {exc.task_id}: " if exc.task_id else ""
        return f"{done}artifact {exc.path!r} is empty (name it with --artifact-empty if it may be)"
    return str(exc)
