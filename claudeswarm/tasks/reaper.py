"""Recovering stale claims: dead owners, expired leases, claims that never got a lease.

A claim is stale when its owner process is gone (pid missing, or reused: another start
time), when its lease expired by the swarm clock, or when the file has sat in
``claimed/`` without any lease for ``task_leaseless_grace_seconds`` (its claimer died
between the rename and the lease write). Staleness is decided once without a lock (cheap
scan) and again under the task's flock before anything moves, so two reapers, or a reaper
and a completing owner, never both act on one claim.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from claudeswarm.agents import registry
from claudeswarm.errors import UnavailableError
from claudeswarm.messages.record import format_ts
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files.tasks import lock_path, names, peek_lease, read_task
from claudeswarm.tasks.model import Task, Transition

if TYPE_CHECKING:
    from claudeswarm.tasks.board import TaskBoard


def auto_reap(board: TaskBoard) -> list[Task]:
    """Reap on behalf of a claim that found nothing, at most once per
    ``task_auto_reap_seconds`` (the mtime of ``locks/reap.stamp``) across all processes;
    one process at a time does it (``reap.lock``), the others skip rather than wait."""
    stamp = board.paths.file("tasks", "locks", "reap.stamp")
    every = board.swarm.settings.task_auto_reap_seconds

    def recent() -> bool:
        try:
            return time.time() - os.lstat(stamp).st_mtime < every
        except FileNotFoundError:
            return False

    if recent():
        return []
    try:
        with _atomic.flocked(stamp.with_name("reap.lock"), timeout=0):
            if recent():
                return []
            fd = _atomic.open_state(stamp, os.O_WRONLY | os.O_CREAT)
            try:
                os.utime(fd)
            finally:
                os.close(fd)
            return board.reap()
    except UnavailableError:
        return []  # another process is reaping right now


def reap(board: TaskBoard, agent: str) -> list[Task]:
    """Move every stale claim back to ``pending/`` (``attempts + 1``) or, at
    ``task_max_attempts``, to ``failed/`` with the reason; announce each move."""
    clear_tmp(board)
    claimed = board.state_path("claimed")
    moved = []
    alive: dict[tuple[int, int | None], bool] = {}
    for name in names(claimed):
        path = claimed / name
        if not may_be_stale(board, path, alive) or stale(board, path) is None:
            continue
        with _atomic.flocked(lock_path(board.paths, name[6:32])):
            found = stale(board, path)  # re-decide under the lock: it may have moved
            if found is not None:
                moved.append(give_back(board, *found, path, agent))
    for task in moved:
        event = "reaped" if task.status == "pending" else "failed"
        board.event(event, task, agent, task.reason or "")
    return moved


def may_be_stale(board: TaskBoard, path: Path, alive: dict[tuple[int, int | None], bool]) -> bool:
    """Cheap first look through the lease xattr alone (no open, no parse of the task);
    ``alive`` caches process liveness for one pass. False only for a live, unexpired
    lease."""
    lease = peek_lease(path)
    if lease is None:
        return False
    if lease == "unknown":
        return True
    if lease.pid is not None:
        key = (lease.pid, lease.start_time)
        if key not in alive:
            alive[key] = registry.process_alive(lease.pid, lease.start_time)
        if not alive[key]:
            return True
    return lease.expires <= board.swarm.clock()


def stale(board: TaskBoard, path: Path) -> tuple[Task, str] | None:
    """``(task, why)`` if the claim in ``path`` may be taken back, else ``None``."""
    try:
        task = read_task(path, "claimed")
        ctime = os.lstat(path).st_ctime
    except FileNotFoundError:
        return None
    except ValueError as exc:
        board.quarantine(path, str(exc))
        return None
    lease = task.lease
    settings = board.swarm.settings
    if lease is None:
        # only the filesystem timestamped the claiming rename, so this age is wall time
        age = time.time() - ctime
        if age < settings.task_leaseless_grace_seconds:
            return None
        return task, f"no lease {age:.0f}s after the claim (claimer died before writing it)"
    if lease.pid is not None and not registry.process_alive(lease.pid, lease.start_time):
        return task, f"owner {lease.agent} (pid {lease.pid}) is gone"
    if lease.expires <= board.swarm.clock():
        return task, f"lease of {lease.agent} expired at {format_ts(lease.expires)}"
    return None


def give_back(board: TaskBoard, task: Task, why: str, path: Path, agent: str) -> Task:
    """Count the lost attempt and move the task to ``pending/`` or ``failed/``."""
    attempts = task.attempts + 1
    state = "failed" if attempts >= board.swarm.settings.task_max_attempts else "pending"
    reason = f"gave up after {attempts} lost claims; last: {why}" if state == "failed" else why
    entry = Transition(state, agent, format_ts(board.swarm.clock()), f"reaped: {why}")
    return board.commit(task, path, state, entry, attempts=attempts, lease=None, reason=reason)


def clear_tmp(board: TaskBoard) -> None:
    """Delete temp files whose writer process is gone (writes that never committed)."""
    tmp = board.state_path("tmp")
    for name in os.listdir(tmp):
        pid = name.rsplit(".", 2)[-2] if name.count(".") >= 2 else ""
        if pid.isdigit() and not registry.process_alive(int(pid), None):
            # a directory planted there is not ours to remove (nor to recurse into)
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(tmp / name)
