"""The task board: add, claim exactly once, heartbeat, complete with verified artifacts,
fail, release, and reap claims whose owner died or whose lease expired.

Protocol (DESIGN.md, "Tasks"; files in :mod:`claudeswarm.storage.files.tasks`):

- **create**: write in ``tmp/``, fsync, link into ``pending/``, fsync the directory, and
  only then announce it, so whoever hears of a task can open it.
- **claim** (:mod:`claudeswarm.tasks.claims`): one ``rename(pending/x, claimed/x)``;
  exactly one process wins; the winner then records its lease under the task's flock.
- **every later change** (heartbeat, complete, fail, release, reap) holds the task's flock,
  re-reads the file, checks the claim (same agent, same generation), rewrites it and
  then renames it to its next state. A file is in exactly one state directory at any
  time; nothing is ever copied.
- **complete** verifies every artifact (:mod:`claudeswarm.tasks.artifacts`) while holding the
  flock, so a reaper cannot take the claim between the check and the rename to ``done/``.
- **reap** (:mod:`claudeswarm.tasks.reaper`) returns stale claims to ``pending/``.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from claudeswarm.agents import registry
from claudeswarm.errors import (
    ArtifactError,
    CorruptRecordError,
    RefusedError,
    SwarmError,
    UnknownTaskError,
    UsageError,
)
from claudeswarm.messages.record import check_name, format_ts, new_id
from claudeswarm.messages.service import SYSTEM_SENDER, announce
from claudeswarm.storage.files import atomic as _atomic
from claudeswarm.storage.files.tasks import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    STATES,
    bump,
    create_task,
    ensure_board,
    file_name,
    locate,
    lock_path,
    names,
    read_task,
    scan,
    state_dir,
    store_lease,
    write_task,
)
from claudeswarm.storage.paths import StatePaths
from claudeswarm.swarm import Swarm
from claudeswarm.tasks import artifacts as _artifacts
from claudeswarm.tasks import claims as task_claims
from claudeswarm.tasks import reaper as task_reaper
from claudeswarm.tasks.model import (
    ArtifactSpec,
    Task,
    Transition,
    claim_history,
    is_task_id,
)

__all__ = ["STATES", "Task", "TaskBoard", "UnknownTaskError", "list_tasks", "state_dirs"]

Warn = Callable[[str], None]
TITLE_MAX = 200
#: longest a claimer trusts its cached pending listing without the mark changing (a file
#: dropped into pending/ by hand bumps nothing)
QUEUE_SECONDS = 2.0


def state_dirs(paths: StatePaths) -> list[Path]:
    """The directories whose mtime changes whenever a task is created, moves, is
    rewritten or gets a lease (the lease write touches ``claimed/``). Directory mtimes
    tick at the filesystem's coarse clock (a few ms): two changes in one tick look like
    one, so a poller should also refresh now and then."""
    return [state_dir(paths, s) for s in STATES]


def _collect(
    paths: StatePaths, states: Sequence[str], verify: bool, on_bad: Callable[[Path, str], None]
) -> list[Task]:
    out = []
    for state, path in scan(paths, tuple(states)):
        try:
            task = read_task(path, state)
        except FileNotFoundError:
            continue  # moved while we listed; it shows up in its next state next time
        except (ValueError, SwarmError) as exc:
            on_bad(path, str(exc))
            continue
        if verify and state == "done":
            task = replace(task, ghost=is_ghost(paths, task))
        out.append(task)
    return out


def list_tasks(swarm: Swarm, *, verify: bool = False) -> list[Task]:
    """Every readable task, in state order then claim order. Read-only: corrupt files are
    skipped, never moved. ``verify`` re-checks done tasks' artifacts (sets ``ghost``)."""
    return _collect(swarm.paths, STATES, verify, lambda p, why: None)


def is_ghost(paths: StatePaths, task: Task) -> bool:
    """A done task whose artifacts no longer match its manifest (or that has none)."""
    if task.status != "done":
        return False
    return task.manifest is None or bool(_artifacts.problems(paths.root, task.manifest))


def owner_process(swarm: Swarm, agent: str) -> int | None:
    """The registered process of ``agent`` (for CLI claims, whose own pid exits at once)."""
    rec = registry.load(swarm.paths).get(agent)
    if rec is None or not registry.process_alive(rec.pid, rec.start_time):
        return None
    return rec.pid


class TaskBoard:
    """Operations on the board of one swarm.

    Parameters
    ----------
    swarm : the state directory, settings and clock (leases expire by ``swarm.clock``).
    pid : the process whose death frees our claims (default: this process; ``None``:
        only lease expiry frees them).
    warn : receives one line per corrupt file quarantined or announcement lost.
    announce : announce events as ``task`` messages (after each commit).

    Examples
    --------
    >>> board = TaskBoard(open_swarm())                       # doctest: +SKIP
    >>> while (task := board.claim("worker-1")) is not None:  # doctest: +SKIP
    ...     with board.working(task):
    ...         build(task)
    ...         board.complete(task.id, "worker-1", generation=task.generation)
    """

    def __init__(
        self,
        swarm: Swarm,
        *,
        pid: int | Literal["self"] | None = "self",
        warn: Warn | None = None,
        announce: bool = True,
    ) -> None:
        self.swarm = swarm
        self.paths = swarm.paths
        self.pid = os.getpid() if pid == "self" else pid
        self.start_time = registry.process_start_time(self.pid) if self.pid else None
        self.warn: Warn = warn or (lambda line: None)
        self.announce = announce
        ensure_board(self.paths)
        self._queue: deque[str] = deque()
        self._queue_mark = (-1, -1)
        self._queue_until = 0.0
        self._queue_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _ts(self) -> str:
        return format_ts(self.swarm.clock())

    def state_path(self, state: str) -> Path:
        return state_dir(self.paths, state)

    def quarantine(self, path: Path, reason: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            _atomic.quarantine_file(path, self.paths, reason, "tasks")
            self.warn(f"quarantined corrupt task file {path.name}: {reason}")

    def event(self, event: str, task: Task, agent: str, extra: str = "") -> None:
        if not self.announce:
            return
        body = f"{event} {task.id} by {agent}: {task.title}" + (f" ({extra})" if extra else "")
        try:
            announce(self.swarm, body, type="task")
        except (OSError, SwarmError) as exc:  # the task change is committed regardless
            self.warn(f"task {task.id} {event}, but announcing it failed: {exc}")

    def commit(self, task: Task, path: Path, state: str, entry: Transition, **changes: Any) -> Task:
        """Rewrite ``task`` with ``changes`` and ``entry`` appended to its history (the
        claim itself first, if only its lease recorded it), durably, then rename it into
        ``state``. Rewriting makes a new inode: a lease kept in an xattr goes with the old
        one, which is what moving out of ``claimed/`` wants."""
        task = replace(task, history=(*claim_history(task), entry), **changes)
        write_task(self.paths, task, path, durable=True)
        dest = self.state_path(state) / path.name
        os.rename(path, dest)
        _atomic.fsync_dir(dest.parent)
        if state in ("pending", "done"):  # claimable again, or may unblock dependents
            self.bump()
        return replace(task, status=state, owner=None)

    def bump(self) -> None:
        """Tell claimers that a task may have become claimable, after the change is
        committed. Best effort: failing here must not report the committed change as
        failed (a retry would repeat it), and claimers re-list ``pending/`` within
        ``QUEUE_SECONDS`` anyway."""
        try:
            bump(self.paths)
        except (OSError, SwarmError) as exc:
            self.warn(f"could not signal claimers ({exc}); they see the change within seconds")

    # -- reading ---------------------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        """The task with ``task_id`` wherever it is; :class:`UnknownTaskError` if none."""
        for _ in range(5):  # it may move between the lookup and the read
            where = locate(self.paths, task_id)
            if where is None:
                break
            try:
                return read_task(where[1], where[0])
            except FileNotFoundError:
                continue
            except ValueError as exc:
                self.quarantine(where[1], str(exc))
                raise CorruptRecordError(f"task {task_id}", str(exc)) from None
        raise UnknownTaskError(task_id)

    def list(self, status: str | None = None, *, verify: bool = False) -> list[Task]:
        """Tasks (optionally of one status); corrupt files are quarantined with a warning."""
        if status is not None and status not in STATES:
            raise UsageError(f"unknown status {status!r}; use one of {', '.join(STATES)}")
        return _collect(self.paths, (status,) if status else STATES, verify, self.quarantine)

    def problems(self, task: Task) -> builtins.list[str]:
        """What is wrong with a done task's artifacts now (empty: all intact)."""
        if task.status != "done":
            return []
        if task.manifest is None:
            return ["done without a manifest"]
        return _artifacts.problems(self.paths.root, task.manifest)

    # -- create ----------------------------------------------------------------------------

    def add(
        self,
        title: str,
        *,
        created_by: str,
        body: str = "",
        priority: int = 0,
        assignee: str | None = None,
        after: Iterable[str] = (),
        artifacts: Iterable[str | ArtifactSpec] = (),
    ) -> Task:
        """Create a pending task (committed before it is announced)."""
        title = title.strip()
        if not title or "\n" in title or len(title) > TITLE_MAX:
            raise UsageError(f"a task title is one non-empty line of at most {TITLE_MAX} chars")
        if len(body.encode("utf-8", "replace")) > self.swarm.settings.body_max_bytes:
            raise UsageError("task body is longer than body_max_bytes")
        if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise UsageError(f"priority must be within {PRIORITY_MIN}..{PRIORITY_MAX}")
        for name in (created_by, *([assignee] if assignee else [])):
            try:
                check_name(name)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        deps = tuple(dict.fromkeys(after))
        for dep in deps:
            if not is_task_id(dep) or locate(self.paths, dep) is None:
                raise UnknownTaskError(dep)
        specs = artifacts_specs(self.paths.root, artifacts)
        now = self.swarm.clock()
        for _ in range(3):
            # create_task refuses an id that exists (hard link, never an overwrite);
            # new_id never repeats within a process, so a retry draws a free id
            task_id = new_id(now)
            task = Task(
                id=task_id,
                title=title,
                status="pending",
                priority=priority,
                assignee=assignee,
                owner=None,
                attempts=0,
                created=format_ts(now),
                artifacts=tuple(s.path for s in specs),
                body=body,
                created_by=created_by,
                dependencies=deps,
                specs=tuple(specs),
                history=(Transition("pending", created_by, format_ts(now), "created"),),
                name=file_name(task_id, priority, bool(assignee or deps)),
            )
            if create_task(self.paths, task):
                break
        else:  # pragma: no cover - needs three 80-bit collisions in a row
            raise SwarmError("could not find a free task id")
        self.bump()
        self.event("created", task, created_by, f"priority {priority}")
        return task

    # -- claim -----------------------------------------------------------------------------

    def claim(self, agent: str, task_id: str | None = None) -> Task | None:
        """Claim ``task_id``, or the best claimable task (priority, then age).

        Returns ``None`` when nothing is claimable, after reaping stale claims once (so a
        crashed worker's task is picked up without anyone running ``task reap``); with
        ``task_id``, refusals raise :class:`RefusedError` (or :class:`UnknownTaskError`).
        """
        check_agent(agent)
        pending = self.state_path("pending")
        if task_id is not None:
            listing = [n for n in names(pending) if n[6:32] == task_id]
            if not listing:
                raise task_claims.not_pending(self, task_id)
            task = task_claims.claim_first(self, agent, iter(listing), task_id)
            if task is None:
                raise task_claims.not_pending(self, task_id)
            return task
        task = task_claims.claim_first(self, agent, task_claims.candidates(self), None)
        if task is None and task_reaper.auto_reap(self):  # bounded work in a normal call: no daemon
            task = task_claims.claim_first(self, agent, task_claims.candidates(self), None)
        return task

    # -- the claim holder's operations -----------------------------------------------------

    @contextlib.contextmanager
    def _holding(
        self, task_id: str, agent: str, generation: int | None, action: str
    ) -> Iterator[tuple[Task, Path]]:
        where = locate(self.paths, task_id)
        if where is None:
            raise UnknownTaskError(task_id)
        path = self.state_path("claimed") / where[1].name
        with _atomic.flocked(lock_path(self.paths, task_id)):
            try:
                task = read_task(path, "claimed")
            except FileNotFoundError:
                now = locate(self.paths, task_id)
                state = now[0] if now else "gone"
                raise RefusedError(
                    f"cannot {action} task {task_id}: it is {state}, not claimed by {agent}"
                ) from None
            except ValueError as exc:
                self.quarantine(path, str(exc))
                raise CorruptRecordError(f"task {task_id}", str(exc)) from None
            lease = task.lease
            if lease is None or lease.agent != agent:
                holder = lease.agent if lease else "nobody (no lease yet)"
                raise RefusedError(f"cannot {action} task {task_id}: it is claimed by {holder}")
            if generation is not None and lease.generation != generation:
                raise RefusedError(
                    f"cannot {action} task {task_id}: claim generation {generation} was lost "
                    f"(now {lease.generation}); it was reaped and claimed again"
                )
            yield task, path

    def heartbeat(self, task_id: str, agent: str, *, generation: int | None = None) -> Task:
        """Push our lease's expiry to now + ``task_lease_seconds``."""
        with self._holding(task_id, agent, generation, "heartbeat") as (task, path):
            assert task.lease is not None
            expires = self.swarm.clock() + self.swarm.settings.task_lease_seconds
            task = replace(task, lease=replace(task.lease, expires=expires))
            store_lease(self.paths, task, path)
            return task

    def complete(
        self,
        task_id: str,
        agent: str,
        *,
        artifacts: Iterable[str | ArtifactSpec] = (),
        note: str = "",
        generation: int | None = None,
    ) -> Task:
        """Verify every artifact, store the manifest, move the task to ``done/``.

        Refused (:class:`RefusedError`, task unchanged) when the claim is not ours any
        more or any artifact is missing, empty, not a regular file, outside the project or
        has another sha256 than expected.
        """
        extra = artifacts_specs(self.paths.root, artifacts)
        with self._holding(task_id, agent, generation, "complete") as (task, path):
            specs = tuple(_artifacts.merge(task.specs, extra))
            try:
                manifest = _artifacts.verify(self.paths.root, specs)
            except ArtifactError as exc:
                raise ArtifactError(exc.path, exc.problem, task_id=task_id) from None
            done = self.commit(
                task,
                path,
                "done",
                Transition("done", agent, self._ts(), note),
                specs=specs,
                artifacts=tuple(s.path for s in specs),
                manifest=manifest,
                reason=None,
            )
        self.event("done", done, agent, f"{len(manifest)} artifacts verified")
        return done

    def fail(self, task_id: str, agent: str, reason: str, *, generation: int | None = None) -> Task:
        """Give up on a task we hold: move it to ``failed/`` with ``reason``."""
        if not reason.strip():
            raise UsageError("a failure needs a reason")
        with self._holding(task_id, agent, generation, "fail") as (task, path):
            entry = Transition("failed", agent, self._ts(), reason)
            failed = self.commit(task, path, "failed", entry, reason=reason)
        self.event("failed", failed, agent, reason)
        return failed

    def release(
        self, task_id: str, agent: str, *, note: str = "", generation: int | None = None
    ) -> Task:
        """Hand a task we hold back to ``pending/`` (attempts unchanged)."""
        with self._holding(task_id, agent, generation, "release") as (task, path):
            entry = Transition("pending", agent, self._ts(), note or "released")
            pending = self.commit(task, path, "pending", entry, lease=None)
        self.event("released", pending, agent, note)
        return pending

    # -- scripted workers and reaping -------------------------------------------------------

    def working(
        self, task: Task, *, interval: float | None = None
    ) -> contextlib.AbstractContextManager[Task]:
        """Heartbeat ``task`` from a background thread while the block runs; release it
        if the block raises or ends without completing it (see :func:`task_claims.working`)."""
        return task_claims.working(self, task, interval)

    def reap(self, agent: str = SYSTEM_SENDER) -> builtins.list[Task]:
        """Return claims of dead owners, expired leases and long leaseless claims to
        ``pending/`` with ``attempts + 1``, or to ``failed/`` at ``task_max_attempts``."""
        return task_reaper.reap(self, agent)


def check_agent(agent: str) -> str:
    """``agent`` if it is a valid agent name, else :class:`UsageError`."""
    try:
        return check_name(agent)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def artifacts_specs(root: Path, items: Iterable[str | ArtifactSpec]) -> list[ArtifactSpec]:
    """Parse CLI-style artifact strings (specs pass through)."""
    return [i if isinstance(i, ArtifactSpec) else _artifacts.parse_spec(root, i) for i in items]
