"""One exception tree. Each error builds its one-line message from structured fields.

The CLI catches :class:`SwarmError`, prints ``str(err)`` on one line and exits with
``err.exit_code``. Exit codes are documented in the README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudeswarm.locks.lease import Lease

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4


class SwarmError(Exception):
    """Root of every error claudeswarm raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # always one line


class UsageError(SwarmError):
    """Bad input from the caller: arguments, names, bodies, patterns."""

    exit_code = EXIT_USAGE


class UnknownTaskError(UsageError):
    """No task has this id (exit 2)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"unknown task {task_id!r}")


class RefusedError(SwarmError):
    """The request is valid but refused now: a rate limit, a held lock, a lost claim."""

    exit_code = EXIT_REFUSED


class ImpersonationError(RefusedError):
    """A caller that is agent ``agent`` named another agent (``--as``,
    ``CLAUDESWARM_AGENT``). With ``pid`` the caller runs under that agent's process;
    without, it only sits in the agent's pane."""

    def __init__(
        self, agent: str, claimed: str, *, pane: str | None = None, pid: int | None = None
    ) -> None:
        self.agent, self.claimed, self.pane, self.pid = agent, claimed, pane, pid
        if pid is None:
            where = f"this pane is agent {agent!r} ({pane})"
        else:
            at = f"pane {pane}, pid {pid}" if pane else f"pid {pid}"
            where = f"this process runs under agent {agent!r} ({at})"
        super().__init__(f"{where}; it cannot act as {claimed!r}")


class RateLimitedError(RefusedError):
    """A send refused by the rate limiter; nothing was logged."""

    def __init__(self, sender: str, rule: str, retry_after: float) -> None:
        self.sender = sender
        self.rule = rule
        self.retry_after = retry_after
        super().__init__(
            f"rate limit: {sender} {rule}; nothing was sent, retry in {retry_after:.1f}s"
        )


class LockConflictError(RefusedError):
    """A live lease of another agent overlaps the requested pattern (exit code 3)."""

    def __init__(self, lease: Lease, held: str, wanted: str, message: str) -> None:
        self.lease = lease
        self.held = held
        self.wanted = wanted
        super().__init__(message)


class ArtifactError(RefusedError):
    """An artifact failed verification; the task stays where it was."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"artifact {path!r} {problem}")


class UnavailableError(SwarmError):
    """Something the command needs is not there: no tmux server, not inside a pane."""

    exit_code = EXIT_UNAVAILABLE


class StateError(SwarmError):
    """The state directory is unusable: a planted symlink, wrong owner, a path escape."""


class CorruptRecordError(SwarmError):
    """A record or state file failed to parse; the caller quarantines it."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"corrupt record in {where}: {reason}")


class SchemaError(ValueError):
    """A stored record does not have the shape its reader needs."""


class TmuxError(SwarmError):
    """tmux refused a command (for example: the pane no longer exists)."""


class StateWarning(UserWarning):
    """A reader skipped a bad record in a state file (writers quarantine such records).

    Raised with :func:`warnings.warn`; the CLI prints the first one as a single
    ``claudeswarm: warning: ...`` line on stderr when the command otherwise succeeds.
    """


# -- a shared server (the redis backend) ---------------------------------------------------


class BackendUnavailableError(UnavailableError):
    """The state server cannot be reached (or did not answer) in time."""

    def __init__(self, where: str, why: str) -> None:
        self.where = where
        self.why = why
        super().__init__(f"the redis server at {where} is unreachable: {why}")


class OutcomeUnknownError(BackendUnavailableError):
    """The connection broke after a command was sent: it may or may not have run."""

    def __init__(self, where: str, why: str) -> None:
        self.where = where
        self.why = why
        UnavailableError.__init__(
            self,
            f"lost the redis server at {where} during a call ({why}); it may or may not have run",
        )


class BackendError(SwarmError):
    """The state server refused a command or login (a wrong password, a TLS mismatch, a
    key of the wrong type under the project's prefix)."""

    def __init__(self, where: str, why: str) -> None:
        self.where = where
        self.why = why
        super().__init__(f"redis server at {where}: {why}")
