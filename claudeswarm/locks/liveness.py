"""Deciding about other holders: proof of death, the refusal line, and waiting politely.

Proof of death (any one suffices): the holder's pid does not exist or is a zombie; the pid
exists with another start time (it was recycled); the registry marks the holder's agent
``gone`` or binds it to another pane. Without proof, a lease is broken only after its TTL
passed without a heartbeat.

Waiting (``lock --wait``) never hammers the lease table: between attempts it only
``stat``-s the journal (every 20 ms), retrying as soon as the table changes, when the
blocking lease expires, or after a backoff that doubles from 50 ms to 2 s (a holder that
dies does not touch the table, so a bounded backoff still notices it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from claudeswarm.agents import registry
from claudeswarm.errors import LockConflictError, LockTimeout, RefusedError
from claudeswarm.locks.lease import Lease
from claudeswarm.locks.patterns import overlaps

POLL = 0.02
FIRST_DELAY = 0.05
MAX_DELAY = 2.0


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3] in (b"Z", b"X")


def death_of(lease: Lease, agents: registry.Agents) -> str | None:
    """Why ``lease``'s holder is provably dead, or ``None`` if it may be alive."""
    if lease.pid is not None:
        started = registry.process_start_time(lease.pid)
        if started is None or _zombie(lease.pid):
            return f"holder process {lease.pid} is gone"
        if lease.start_time is not None and started != lease.start_time:
            return f"pid {lease.pid} now belongs to another process"
    rec = agents.get(lease.agent)
    if rec is not None:
        if rec.state == "gone":
            return f"agent {lease.agent} is gone"
        if lease.pane and rec.pane and rec.pane != lease.pane:
            return f"agent {lease.agent} left pane {lease.pane} (now in {rec.pane})"
    return None


def refusal(lease: Lease, wanted: str, now: float) -> LockConflictError:
    """The one-line refusal: holder, pane, held pattern, age and reason.

    Examples
    --------
    ``lock on 'src/**/*.py' held by backend (pane %3) for 4m: refactor auth``
    """
    return LockConflictError(
        next((p for p in lease.patterns if overlaps(p, wanted)), lease.patterns[0]),
        lease.agent,
        pane=lease.pane,
        pid=lease.pid,
        held_for=now - lease.acquired,
        reason=lease.reason,
        shared=not lease.exclusive,
        wanted=wanted,
        generation=lease.generation,
        expires_at=lease.expires_at,
    )


def _ident(path: Path) -> tuple[int, int, int, int] | None:
    # Only a hint to retry early: a change it misses (a new file with the same inode
    # number, size and mtime) delays the next attempt to the backoff or the blocking
    # lease's expiry, and an attempt re-reads the table by its epoch, never by this.
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Waiter:
    """Sleeps between acquire attempts until a deadline (see the module docstring)."""

    def __init__(
        self,
        journal: Path,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.timeout = timeout
        self.sleep = sleep
        self.monotonic = monotonic
        self.deadline = monotonic() + timeout
        self.delay = FIRST_DELAY

    def pause(self, exc: RefusedError, now: float) -> None:
        """Wait before the next attempt; :class:`LockTimeout` past the deadline."""
        remaining = self.deadline - self.monotonic()
        if remaining <= 0:
            what = repr(exc.wanted) if isinstance(exc, LockConflictError) else "a lock"
            raise LockTimeout(what, self.timeout, exc) from None
        budget = min(self.delay, remaining)
        if isinstance(exc, LockConflictError):
            budget = min(budget, max(exc.expires_at - now, 0.0) + POLL)
        self.delay = min(self.delay * 2, MAX_DELAY)
        before = _ident(self.journal)
        end = self.monotonic() + budget
        while self.monotonic() < end:
            self.sleep(min(POLL, max(end - self.monotonic(), 0.0)))
            if _ident(self.journal) != before:
                return
