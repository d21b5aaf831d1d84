"""A hypothesis state machine drives the board against a model of what must be true.

Rules: create (with an assignee or a dependency, or neither), claim (by a live or a dead
process), heartbeat, complete (with or without its artifact written), crash (the worker
forgets its claim), expire (the fake clock jumps past the lease), reap, release. After
every step: each task is in exactly one state directory, the one the model predicts, with
the predicted attempts and owner, and every done task has a manifest that still verifies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from claudeswarm.config import Settings
from claudeswarm.errors import RefusedError
from claudeswarm.storage.files.tasks import STATES, names, state_dir
from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.swarm import Swarm
from claudeswarm.tasks.board import TaskBoard, list_tasks
from tests.conftest import FakeClock

TTL = 100.0
MAX_ATTEMPTS = 3
AGENTS = ("ann", "bob", "cy")


@cache
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@dataclass
class Model:
    priority: int
    assignee: str | None = None
    after: tuple[str, ...] = ()
    state: str = "pending"
    attempts: int = 0
    generation: int = 0
    owner: str | None = None
    dead: bool = False
    expires: float = 0.0
    written: bool = False


@dataclass(frozen=True)
class Handle:
    task_id: str
    agent: str
    generation: int
    dead: bool


class BoardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="board-"))
        root = self.tmp / "proj"
        (root / ".git").mkdir(parents=True)
        paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
        self.clock = FakeClock()
        conf = replace(
            Settings(),
            task_lease_seconds=TTL,
            task_max_attempts=MAX_ATTEMPTS,
            task_auto_reap_seconds=0.0,
        )
        self.swarm = Swarm(paths, conf, self.clock)
        self.live = TaskBoard(self.swarm, announce=False)
        self.dead = TaskBoard(self.swarm, pid=dead_pid(), announce=False)
        self.model: dict[str, Model] = {}
        self.handles: list[Handle] = []

    def teardown(self) -> None:
        self.swarm.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _expected_claim(self, agent: str) -> str | None:
        pending = [
            (-m.priority, tid)
            for tid, m in self.model.items()
            if m.state == "pending"
            and m.assignee in (None, agent)
            and all(self.model[d].state == "done" for d in m.after)
        ]
        return min(pending)[1] if pending else None

    def _ours(self, h: Handle) -> bool:
        m = self.model[h.task_id]
        return m.state == "claimed" and m.generation == h.generation

    # -- rules --------------------------------------------------------------------------

    @rule(
        priority=st.integers(-2, 2),
        assignee=st.sampled_from((None, None, *AGENTS)),
        dep=st.none() | st.integers(0, 10**6),
    )
    def create(self, priority: int, assignee: str | None, dep: int | None) -> None:
        n = len(self.model)
        ids = list(self.model)
        after = (ids[dep % len(ids)],) if dep is not None and ids else ()
        task = self.live.add(
            f"t{n}",
            created_by="lead",
            priority=priority,
            assignee=assignee,
            after=after,
            artifacts=[f"o/{n}"],
        )
        self.model[task.id] = Model(priority, assignee, after)

    @rule(agent=st.sampled_from(AGENTS), dead=st.booleans())
    def claim(self, agent: str, dead: bool) -> None:
        expected = self._expected_claim(agent)
        if expected is None:  # claim reaps once when nothing is claimable
            self._model_reap()
            expected = self._expected_claim(agent)
        task = (self.dead if dead else self.live).claim(agent)
        assert (task.id if task else None) == expected
        if task is None:
            return
        m = self.model[task.id]
        assert task.generation == m.generation + 1
        m.state, m.generation, m.owner, m.dead = "claimed", task.generation, agent, dead
        m.expires = self.clock.now + TTL
        self.handles.append(Handle(task.id, agent, task.generation, dead))

    @precondition(lambda self: self.handles)
    @rule(pick=st.integers(0, 10**6))
    def heartbeat(self, pick: int) -> None:
        h = self.handles[pick % len(self.handles)]
        if not self._ours(h):
            self._refused(lambda: self.live.heartbeat(h.task_id, h.agent, generation=h.generation))
            return
        self.live.heartbeat(h.task_id, h.agent, generation=h.generation)
        self.model[h.task_id].expires = self.clock.now + TTL

    @precondition(lambda self: self.handles)
    @rule(pick=st.integers(0, 10**6), write=st.booleans())
    def complete(self, pick: int, write: bool) -> None:
        h = self.handles[pick % len(self.handles)]
        m = self.model[h.task_id]
        task = self.live.get(h.task_id)
        if write and not m.written:
            target = self.swarm.paths.root / task.artifacts[0]
            target.parent.mkdir(exist_ok=True)
            target.write_text(f"output of {h.task_id}")
            m.written = True
        if not (self._ours(h) and m.written):
            self._refused(lambda: self.live.complete(h.task_id, h.agent, generation=h.generation))
            return
        done = self.live.complete(h.task_id, h.agent, generation=h.generation)
        assert done.status == "done"
        m.state, m.owner = "done", None
        self.handles.remove(h)

    @precondition(lambda self: self.handles)
    @rule(pick=st.integers(0, 10**6))
    def crash(self, pick: int) -> None:
        self.handles.pop(pick % len(self.handles))  # the worker is gone; its lease stays

    @precondition(lambda self: self.handles)
    @rule(pick=st.integers(0, 10**6))
    def release(self, pick: int) -> None:
        h = self.handles[pick % len(self.handles)]
        if not self._ours(h):
            self._refused(lambda: self.live.release(h.task_id, h.agent, generation=h.generation))
            return
        self.live.release(h.task_id, h.agent, generation=h.generation)
        m = self.model[h.task_id]
        m.state, m.owner = "pending", None
        self.handles.remove(h)

    @rule(seconds=st.sampled_from([1.0, TTL / 2, TTL + 1]))
    def expire(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def _model_reap(self) -> set[str]:
        expected = set()
        for tid, m in self.model.items():
            if m.state == "claimed" and (m.dead or m.expires <= self.clock.now):
                expected.add(tid)
                m.attempts += 1
                m.state = "failed" if m.attempts >= MAX_ATTEMPTS else "pending"
                m.owner = None
        return expected

    @rule()
    def reap(self) -> None:
        moved = {t.id: t for t in self.live.reap()}
        expected = self._model_reap()
        assert set(moved) == expected
        for tid in expected:
            assert moved[tid].status == self.model[tid].state
            assert moved[tid].attempts == self.model[tid].attempts

    def _refused(self, call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except RefusedError:
            return
        raise AssertionError("expected a refusal")

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def each_task_in_exactly_its_predicted_state(self) -> None:
        found: dict[str, list[str]] = {}
        for state in STATES:
            for n in names(state_dir(self.swarm.paths, state)):
                found.setdefault(n[6:32], []).append(state)
        assert found == {tid: [m.state] for tid, m in self.model.items()}
        assert os.listdir(state_dir(self.swarm.paths, "tmp")) == []

    @invariant()
    def attempts_owners_and_manifests_match(self) -> None:
        for task in list_tasks(self.swarm, verify=True):
            m = self.model[task.id]
            assert (task.attempts, task.owner) == (m.attempts, m.owner)
            if task.status == "claimed":
                assert task.generation == m.generation
            if task.status == "done":
                assert task.manifest is not None
                assert len(task.manifest) == 1
                assert not task.ghost
            else:
                assert task.manifest is None
            if task.status == "failed":
                assert task.reason is not None
                assert task.reason.startswith(f"gave up after {MAX_ATTEMPTS} lost claims")


STRESS = bool(os.environ.get("CLAUDESWARM_STRESS"))
TestBoardMachine = BoardMachine.TestCase
TestBoardMachine.settings = settings(
    max_examples=300 if STRESS else 40,
    stateful_step_count=40 if STRESS else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
