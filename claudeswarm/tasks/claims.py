"""Claiming and holding a task: the exactly-once claim and the heartbeating worker.

Claim (DESIGN.md, "Tasks"): one ``rename(pending/x, claimed/x)``; among racing claimers
exactly one wins, the others get ``FileNotFoundError`` and try the next name. The winner
then writes its lease under the task's flock, but only if the file is still the version
it renamed (see :func:`take`): a claimer stalled past the leaseless grace period may have
been reaped and re-claimed meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from claudeswarm.errors import RefusedError, SwarmError, UnknownTaskError, UsageError
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files.tasks import locate, lock_path, mark, names, read_task, store_lease
from claudeswarm.tasks.model import Lease, Task

if TYPE_CHECKING:
    from claudeswarm.tasks.board import TaskBoard

#: longest a claimer trusts its cached pending listing without the mark changing (a file
#: dropped into pending/ by hand bumps nothing)
QUEUE_SECONDS = 2.0


def candidates(board: TaskBoard) -> Iterator[str]:
    """Pending names in claim order, from a cached listing while the pending mark is
    unchanged (nothing became claimable since); each name is handed out once."""
    with board._queue_lock:
        now = time.monotonic()
        seen = mark(board.paths)  # read before listing: a later bump invalidates
        if seen != board._queue_mark or not board._queue or now > board._queue_until:
            board._queue = deque(names(board.state_path("pending")))
            board._queue_mark, board._queue_until = seen, now + QUEUE_SECONDS
    while True:
        try:
            yield board._queue.popleft()
        except IndexError:
            return


def claim_first(
    board: TaskBoard, agent: str, names_: Iterator[str], task_id: str | None
) -> Task | None:
    """Claim the first of ``names_`` that ``agent`` may take and wins the rename for.

    Restricted tasks blocked for ``agent`` are put back at the front of the board's
    cached queue, so another agent (or a later call) still sees them in order.
    """
    pending = board.state_path("pending")
    done_ids: set[str] | None = None
    skipped: list[str] = []
    try:
        for name in names_:
            if name.endswith("-r.json"):
                if done_ids is None:
                    done_ids = {n[6:32] for n in names(board.state_path("done"))}
                why = blocked(board, pending / name, agent, done_ids)
                if why:
                    if task_id is not None:
                        raise RefusedError(f"cannot claim task {task_id}: {why}")
                    skipped.append(name)
                    continue
            try:
                os.rename(pending / name, board.state_path("claimed") / name)
            except FileNotFoundError:
                continue  # another claimer won this one
            task = take(board, name, agent)
            if task is not None:
                board.event("claimed", task, agent, f"generation {task.generation}")
                return task
        return None
    finally:
        if task_id is None and skipped:
            board._queue.extendleft(reversed(skipped))


def not_pending(board: TaskBoard, task_id: str) -> SwarmError:
    """The error for claiming ``task_id`` when it is not in ``pending/``."""
    where = locate(board.paths, task_id)
    if where is None:
        return UnknownTaskError(task_id)
    return RefusedError(f"cannot claim task {task_id}: it is {where[0]}, not pending")


def blocked(board: TaskBoard, path: Path, agent: str, done_ids: set[str]) -> str | None:
    """Why ``agent`` may not claim this restricted task (``None``: it may)."""
    try:
        task = read_task(path, "pending")
    except FileNotFoundError:
        return "it was just claimed"
    except ValueError as exc:
        board.quarantine(path, str(exc))
        return "its file is corrupt (quarantined)"
    if task.assignee and task.assignee != agent:
        return f"it is assigned to {task.assignee}"
    waiting = [d for d in task.dependencies if d not in done_ids]
    return f"it waits for task {waiting[0]} to be done" if waiting else None


def take(board: TaskBoard, name: str, agent: str) -> Task | None:
    """Write our lease into a file we just renamed into ``claimed/``.

    What we renamed is the version we read right after the rename: no lease, and its
    history length (every rewrite except a heartbeat appends to the history, and a
    task never returns to ``pending/`` without a rewrite). Under the flock the file
    must still be that version; otherwise (reaped and re-claimed while we stalled, or
    another claimer of the same version wrote its lease first) we lost: ``None``.
    Inode numbers cannot serve here: the filesystem reuses a freed one at once.
    """
    path = board.state_path("claimed") / name
    try:
        seen = read_task(path, "claimed")
    except FileNotFoundError:
        return None
    except ValueError as exc:
        board.quarantine(path, str(exc))
        return None
    return lease_if_unchanged(board, path, agent, seen)


def lease_if_unchanged(board: TaskBoard, path: Path, agent: str, seen: Task) -> Task | None:
    """Under the task's flock: record our lease if the file is still version ``seen``."""
    with _atomic.flocked(lock_path(board.paths, seen.id)):
        try:
            task = read_task(path, "claimed")
        except (FileNotFoundError, ValueError):
            return None
        if task.lease is not None or len(task.history) != len(seen.history):
            return None
        now = board.swarm.clock()
        gen = task.generation + 1
        lease = Lease(
            agent,
            board.pid,
            board.start_time,
            gen,
            now + board.swarm.settings.task_lease_seconds,
            now,
        )
        task = replace(task, generation=gen, lease=lease, owner=agent)
        store_lease(board.paths, task, path)
        return task


@contextlib.contextmanager
def working(board: TaskBoard, task: Task, interval: float | None = None) -> Iterator[Task]:
    """Heartbeat ``task`` from a background thread while the block runs.

    If the block raises, or ends without completing/failing the task, the claim is
    released (when still ours). Heartbeats stop quietly once the claim is lost; the
    final ``complete`` will then be refused.
    """
    if task.lease is None:
        raise UsageError(f"task {task.id} is not claimed")
    agent, gen = task.lease.agent, task.lease.generation
    every = interval or max(board.swarm.settings.task_lease_seconds / 3, 0.05)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                board.heartbeat(task.id, agent, generation=gen)
            except SwarmError:
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{task.id}", daemon=True)
    thread.start()
    try:
        yield task
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(RefusedError, UnknownTaskError):
            board.release(task.id, agent, generation=gen, note="worker stopped")
