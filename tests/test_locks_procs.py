"""Locks under real processes: contention, races, SIGKILL, SIGSTOP, a writer killed
while it held the sidecar lock."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import lockprocs
import pytest
from conftest import FakeClock

from claudeswarm.errors import RefusedError
from claudeswarm.locks.manager import Holder, LockManager, list_leases
from claudeswarm.messages.service import recent
from claudeswarm.swarm import Swarm

STRESS = max(1, int(os.environ.get("CLAUDESWARM_STRESS", "0") or 0))
HELPER = str(Path(lockprocs.__file__))

GLOBS = ["src/**", "src/*.py", "src/a*", "src/abc.py", "src/*/x.py", "src/d/*", "**/x.py"]
UNIVERSE = ["src/abc.py", "src/b.py", "src/axe.txt", "src/d/x.py", "src/e/x.py", "lib/x.py"]


@pytest.fixture
def ctx() -> mp.context.SpawnContext:
    return mp.get_context("spawn")


@pytest.mark.stress
def test_eight_processes_never_hold_overlapping_locks(
    project: Path, swarm: Swarm, ctx: mp.context.SpawnContext
) -> None:
    """8 processes x N acquire/hold/release on overlapping globs; every hold claims an
    occupancy marker for each path it covers. Zero markers found taken, all finish."""
    rounds = 500 * STRESS if os.environ.get("CLAUDESWARM_STRESS") else 60
    (project / "markers").mkdir()
    with ctx.Pool(8) as pool:
        jobs = [
            pool.apply_async(
                lockprocs.stress_worker,
                (str(project), f"w{i}", rounds, GLOBS, UNIVERSE, i),
            )
            for i in range(8)
        ]
        results = [job.get(timeout=600) for job in jobs]
    assert [r["done"] for r in results] == [rounds] * 8
    assert sum(r["overlaps"] for r in results) == 0
    assert list(os.scandir(project / "markers")) == []
    assert list_leases(swarm) == []


def test_glob_versus_file_race_never_grants_both(
    project: Path, swarm: Swarm, ctx: mp.context.SpawnContext
) -> None:
    """Two processes, one locking ``src/**`` and one ``src/a.py`` at the same moment,
    300 rounds: exactly one wins each round."""
    rounds = 300 * STRESS
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=lockprocs.race_worker, args=(str(project), n, p, rounds, barrier, out))
        for n, p in (("globber", "src/**"), ("filer", "src/a.py"))
    ]
    for p in procs:
        p.start()
    results: dict[int, list[bool]] = {}
    for _ in range(2 * rounds):
        r, _name, won = out.get(timeout=120)
        results.setdefault(r, []).append(won)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(results) == rounds
    assert all(sorted(v) == [False, True] for v in results.values()), results


@pytest.fixture
def holder_proc(project: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def _start_holder(
    project: Path, started: list[subprocess.Popen[str]], name: str, pattern: str, ttl: float
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, HELPER, "hold", str(project), name, pattern, str(ttl)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("granted ")
    return proc


def _ask(proc: subprocess.Popen[str], cmd: str) -> str:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(cmd + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_sigkilled_holder_is_reclaimed_at_once(
    project: Path, swarm: Swarm, clock: FakeClock, holder_proc: list[subprocess.Popen[str]]
) -> None:
    clock.now = time.time()  # the holder stamps its lease with real time
    proc = _start_holder(project, holder_proc, "victim", "src/**", 600)
    me = LockManager(swarm, Holder.for_process("rescuer"))
    with pytest.raises(RefusedError, match="victim"):
        me.acquire(["src/a.py"])
    proc.kill()
    proc.wait(timeout=30)
    lease = me.acquire(["src/a.py"])  # no TTL wait: the fake clock never moved
    assert lease.agent == "rescuer"
    assert [lease.agent for lease in list_leases(swarm)] == ["rescuer"]
    notes = [m.body for m in recent(swarm, 10) if m.type == "system"]
    assert any("victim" in b and "is gone" in b for b in notes), notes


def test_sigstopped_holder_past_ttl_is_broken_and_refused_on_resume(
    project: Path, swarm: Swarm, clock: FakeClock, holder_proc: list[subprocess.Popen[str]]
) -> None:
    """The holder (real time) is stopped; the breaker's fake clock jumps past the TTL."""
    proc = _start_holder(project, holder_proc, "sleeper", "src/a.py", 60)
    assert _ask(proc, "refresh") == "ok"
    os.kill(proc.pid, signal.SIGSTOP)
    me = LockManager(swarm, Holder.for_process("breaker"))
    clock.now = time.time() + 30
    with pytest.raises(RefusedError, match="sleeper"):
        me.acquire(["src/a.py"])  # alive and within its TTL: refused
    clock.now = time.time() + 61
    assert me.acquire(["src/a.py"]).agent == "breaker"
    os.kill(proc.pid, signal.SIGCONT)
    assert _ask(proc, "refresh").startswith("refused: ")
    assert _ask(proc, "release").startswith("refused: ")
    assert [lease.agent for lease in list_leases(swarm)] == ["breaker"]
    notes = [m.body for m in recent(swarm, 10) if m.type == "system"]
    assert any("sleeper" in b and "expired" in b for b in notes), notes


def test_writer_killed_holding_the_sidecar_lock(
    project: Path, swarm: Swarm, holder_proc: list[subprocess.Popen[str]]
) -> None:
    """A writer SIGKILLed while holding ``locks.lock`` after writing half a record: the
    next acquire neither hangs nor grants twice; the fragment goes to quarantine."""
    first = LockManager(swarm, Holder.for_process("first"))
    first.acquire(["src/**"])
    fragment = '\n{"op":"grant","lease":{"agent":"ghost","patterns":["src/a.py"'
    proc = subprocess.Popen(
        [
            sys.executable,
            HELPER,
            "flock-and-die",
            str(swarm.paths.file("locks.lock")),
            str(swarm.paths.file("locks.jsonl")),
            fragment,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    holder_proc.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    proc.kill()
    proc.wait(timeout=30)
    other = LockManager(swarm, Holder.for_process("second"))
    with pytest.raises(RefusedError, match="first"):
        other.acquire(["src/a.py"])
    assert other.acquire(["docs/x.md"]).agent == "second"
    assert sorted(lease.agent for lease in list_leases(swarm)) == ["first", "second"]
    bad = list(swarm.paths.quarantine.glob("locks.jsonl.*.bad"))
    assert len(bad) == 1
    assert "unterminated tail" in bad[0].read_text()
