"""One exception tree. Each error builds its one-line message from structured fields.

Every exception class of claudeswarm is defined here (``tests/test_errors.py`` holds
that). A message names the object it is about (the lease, the task, the artifact) in the
library's words: a parameter is ``ttl`` or ``limit``, never a command-line flag. The CLI
catches :class:`SwarmError` once, at its entry point, prints one line and exits with
``err.exit_code``; where a class carries the parameter or the object, the CLI words the
line itself (``--ttl``, ``claudeswarm unlock --repair``).

Exit codes (the README's table, which a test checks against these classes):
0 ok; 1 :class:`SwarmError` (unusable state, I/O); 2 :class:`UsageError`;
3 :class:`RefusedError`; 4 :class:`UnavailableError`.

Examples
--------
>>> err = LockTimeout("'src/a.py'", 30)
>>> str(err), err.exit_code, isinstance(err, TimeoutError)
("timed out after 30s waiting for 'src/a.py'", 4, True)
"""

from __future__ import annotations

from typing import Any, ClassVar

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4


def _rebuild(cls: type[SwarmError], args: tuple[Any, ...], fields: dict[str, Any]) -> SwarmError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(fields)
    return exc


class SwarmError(Exception):
    """Root of every error claudeswarm raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # always one line

    def __reduce__(self) -> tuple[Any, ...]:
        # subclasses take fields, not the message: rebuild from both, so an error
        # crosses a process boundary (a process pool, a queue) intact
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


# -- 2: usage --------------------------------------------------------------------------------


class UsageError(SwarmError):
    """Bad input from the caller: arguments, names, bodies, patterns."""

    exit_code = EXIT_USAGE


class InvalidArgumentError(UsageError):
    """The value of parameter ``param`` is unusable; ``problem`` says how.

    ``param`` is the library's name (``ttl``, ``limit``, ``reason``, ``reply_to``); the CLI
    puts its own flag in its place.

    Examples
    --------
    >>> str(InvalidArgumentError("ttl", "must be positive and finite, not 0"))
    'ttl must be positive and finite, not 0'
    """

    def __init__(self, param: str, problem: str) -> None:
        self.param = param
        self.problem = problem
        super().__init__(f"{param} {problem}")


class UnknownCallerError(UsageError):
    """Nothing names the caller: no registered agent runs it or sits in its pane, and no
    agent name was given."""

    def __init__(self, pane: str | None = None) -> None:
        self.pane = pane
        where = f"this process or pane {pane}" if pane else "this process"
        super().__init__(
            f"who are you? no agent is registered for {where} and no agent name was given; "
            "join first, or name the agent (CLAUDESWARM_AGENT)"
        )


class UnknownTaskError(UsageError):
    """No task has this id."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"unknown task {task_id!r}")


# -- 3: refused ------------------------------------------------------------------------------


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
    """A live lease of another agent overlaps the requested pattern.

    The fields describe the blocking lease: its ``pattern`` that overlaps ``wanted``, its
    holder (``agent``, ``pane``, ``pid``), how long it has been held, its ``reason``, its
    ``generation`` and when it expires unless refreshed (``expires_at``, swarm clock).

    Examples
    --------
    >>> str(LockConflictError("src/**/*.py", "backend", pane="%3", held_for=245,
    ...                       reason="refactor auth"))
    "lock on 'src/**/*.py' held by backend (pane %3) for 4m: refactor auth"
    """

    def __init__(
        self,
        pattern: str,
        agent: str,
        *,
        pane: str | None = None,
        pid: int | None = None,
        held_for: float = 0.0,
        reason: str = "",
        shared: bool = False,
        wanted: str | None = None,
        generation: int = 0,
        expires_at: float = 0.0,
    ) -> None:
        from claudeswarm.timeutil import age  # timeutil imports this module

        self.pattern, self.agent, self.pane, self.pid = pattern, agent, pane, pid
        self.held_for, self.reason, self.shared = held_for, reason, shared
        self.wanted = pattern if wanted is None else wanted
        self.generation, self.expires_at = generation, expires_at
        where = f"pane {pane}" if pane else f"pid {pid}"
        kind = "shared " if shared else ""
        text = f"{kind}lock on {pattern!r} held by {agent} ({where}) for {age(held_for)}"
        if reason:
            text += f": {reason}"
        if self.wanted != pattern:
            text += f" (you asked for {self.wanted!r})"
        super().__init__(text)


class ArtifactError(RefusedError):
    """Artifact ``path`` failed verification (``problem``); the task stays where it was.
    With ``task_id``: the completion of that task was refused for it."""

    #: the problem of an empty artifact not declared ``allow_empty``
    EMPTY: ClassVar[str] = "is empty (allow_empty was not set)"

    def __init__(self, path: str, problem: str, *, task_id: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.task_id = task_id
        text = f"artifact {path!r} {problem}"
        super().__init__(f"cannot complete task {task_id}: {text}" if task_id else text)


# -- 4: unavailable --------------------------------------------------------------------------


class UnavailableError(SwarmError):
    """Something the command needs is not there: no tmux server, not inside a pane."""

    exit_code = EXIT_UNAVAILABLE


class LockTimeout(UnavailableError, TimeoutError):  # noqa: N818 (as filelock.Timeout)
    """Waiting for ``what`` (a lease's patterns, a sidecar lock file) gave up after
    ``timeout`` seconds; ``blocker`` is the last refusal met, if any.

    Also a builtin :class:`TimeoutError`, so ``except TimeoutError`` catches it; that
    makes it an :class:`OSError` too, so catch it (or :class:`SwarmError`) before a
    bare ``except OSError``.
    """

    def __init__(self, what: str, timeout: float, blocker: SwarmError | None = None) -> None:
        self.what = what
        self.timeout = timeout
        self.blocker = blocker
        text = f"timed out after {timeout:g}s waiting for {what}"
        super().__init__(f"{text}; {blocker}" if blocker is not None else text)


# -- 1: unusable state or a failing tool -----------------------------------------------------


class StateError(SwarmError):
    """The state directory is unusable: a planted symlink, wrong owner, a path escape."""


class CorruptLeaseTableError(StateError):
    """The lease table at ``path`` has content but no header: nothing in it can be
    trusted until it is repaired (quarantined), so no lease is granted from it."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"lease table {path} is corrupt (no header record); no lease is granted from it "
            "until it is repaired (quarantined)"
        )


class CorruptRecordError(SwarmError):
    """A record or state file failed to parse; the caller quarantines it."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"corrupt record in {where}: {reason}")


class SchemaError(SwarmError, ValueError):
    """A stored record does not have the shape its reader needs; ``problem`` says where
    and how (``point: field 'x' is a str, expected an int``).

    Also a :class:`ValueError`, as the JSON parser's own refusals are: readers catch both
    as "a bad record"."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class TmuxError(SwarmError):
    """tmux refused ``command`` (for example: the pane no longer exists); ``detail`` is
    what tmux said, or its exit status."""

    def __init__(self, command: str, detail: str) -> None:
        self.command = command
        self.detail = detail
        super().__init__(f"tmux {command} failed: {detail}")


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
