"""Real threads and real processes racing for real files on the task board.

Counts are small by default; ``CLAUDESWARM_STRESS=1`` runs the sizes the issue names
(10,000 commit-then-signal cycles, >= 200 SIGKILLs). Both sizes can fail: every check
counts what actually happened on disk.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from claudeswarm.config import Settings
from claudeswarm.storage.files.tasks import STATES, locate, names, read_task, state_dir
from claudeswarm.storage.paths import StatePaths
from claudeswarm.swarm import Swarm
from claudeswarm.tasks.board import TaskBoard, list_tasks

STRESS = bool(os.environ.get("CLAUDESWARM_STRESS"))
CTX = mp.get_context("fork")


def scaled(default: int, stress: int) -> int:
    return stress if STRESS else default


def census(paths: StatePaths) -> Counter[str]:
    """How many state directories hold each task id (must be exactly one each)."""
    seen: Counter[str] = Counter()
    for state in STATES:
        for n in names(state_dir(paths, state)):
            seen[n[6:32]] += 1
    return seen


def run_children(
    target: Callable[..., None], args: list[tuple[Any, ...]], go: Path | None = None
) -> None:
    """Fork one child per args tuple, then release them all at once through ``go``.

    No thread may run while forking (3.12+ warns; a forked lock held by a thread would
    deadlock the child), hence a file as the starting gun rather than a timer thread.
    """
    procs = [CTX.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    if go is not None:
        go.touch()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.001)


# -- exactly once -------------------------------------------------------------------------


def test_16_threads_claim_100_tasks_exactly_once(swarm: Swarm) -> None:
    TaskBoard(swarm, announce=False)
    for i in range(100):
        TaskBoard(swarm, announce=False).add(f"t{i}", created_by="lead", priority=i % 4)
    start = threading.Barrier(16)

    def worker(n: int) -> list[str]:
        board = TaskBoard(swarm)  # each thread its own handle, as separate workers would
        start.wait()
        got = []
        while (task := board.claim(f"w{n}")) is not None:
            got.append(task.id)
        return got

    with ThreadPoolExecutor(16) as pool:
        claims = [i for ids in pool.map(worker, range(16)) for i in ids]
    assert len(claims) == 100
    assert len(set(claims)) == 100
    owners = {t.id: t.owner for t in list_tasks(swarm)}
    assert all(t.status == "claimed" for t in list_tasks(swarm))
    assert len(owners) == 100


def _claim_all(
    paths: StatePaths, settings: Settings, name: str, go: Path, out: Path, outs: list[Path]
) -> None:
    board = TaskBoard(Swarm(paths, settings))
    wait_for(go)
    got = []
    while (task := board.claim(name)) is not None:
        got.append(task.id)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(got))
    tmp.rename(out)
    # Stay alive like a real worker until every worker is done: a worker that exits is a
    # dead owner, and the others would rightly reap and re-claim its tasks.
    for other in outs:
        wait_for(other)


def test_8_processes_claim_1000_tasks_exactly_once(swarm: Swarm, tmp_path: Path) -> None:
    n = 1000
    board = TaskBoard(swarm, announce=False)
    made = {board.add(f"t{i}", created_by="lead", priority=i % 5).id for i in range(n)}
    go = tmp_path / "go"
    outs = [tmp_path / f"claims-{i}" for i in range(8)]
    run_children(
        _claim_all,
        [(swarm.paths, swarm.settings, f"w{i}", go, o, outs) for i, o in enumerate(outs)],
        go,
    )
    claims = [line for o in outs for line in o.read_text().split()]
    assert len(claims) == n  # none lost, none twice
    assert set(claims) == made
    per_owner = Counter(t.owner for t in list_tasks(swarm))
    assert sum(per_owner.values()) == n
    assert census(swarm.paths) == Counter(dict.fromkeys(made, 1))


def _create_many(paths: StatePaths, settings: Settings, k: int, count: int, go: Path) -> None:
    board = TaskBoard(Swarm(paths, settings))
    wait_for(go)
    for i in range(count):
        board.add(f"p{k}-{i}", created_by=f"maker{k}")


def test_4_processes_create_1000_tasks_all_exist(swarm: Swarm, tmp_path: Path) -> None:
    go = tmp_path / "go"
    run_children(_create_many, [(swarm.paths, swarm.settings, k, 250, go) for k in range(4)], go)
    tasks = list_tasks(swarm)
    assert len(tasks) == 1000
    assert sorted(t.title for t in tasks) == sorted(
        f"p{k}-{i}" for k in range(4) for i in range(250)
    )
    assert len({t.id for t in tasks}) == 1000
    created = [m for m in _log_bodies(swarm) if m.startswith("created ")]
    assert len(created) == 1000


def _log_bodies(swarm: Swarm) -> list[str]:
    from claudeswarm.messages.service import recent

    return [m.body for m in recent(swarm, 10**6) if m.type == "task"]


# -- commit before signal -----------------------------------------------------------------


def _consume(paths: StatePaths, expect: int, ready: Path, out: Path) -> None:
    """Open each task the moment its "created" announcement appears in the log."""
    from claudeswarm.storage.files.tailer import LogTailer

    found = missing = partial = 0
    with LogTailer(paths, None, start="begin") as tail:
        ready.touch()
        while found + missing + partial < expect:
            for rec in tail:
                if rec.type != "task" or not rec.body.startswith("created "):
                    continue
                task_id = rec.body.split()[1]
                where = locate(paths, task_id)
                if where is None:
                    missing += 1
                    continue
                try:
                    task = read_task(where[1], where[0])
                    found += task.id == task_id
                except FileNotFoundError:
                    found += locate(paths, task_id) is not None  # moved on meanwhile
                except ValueError:
                    partial += 1
            time.sleep(0.0002)
    out.write_text(f"{found} {missing} {partial}")


def _claim_some(paths: StatePaths, settings: Settings, stop: Path) -> None:
    board = TaskBoard(Swarm(paths, settings))
    while not stop.exists():
        if board.claim("mover") is None:
            time.sleep(0.001)


def test_commit_before_signal(swarm: Swarm, tmp_path: Path) -> None:
    """A consumer tails the log and opens every announced task at once, while a claimer
    moves tasks on: zero not-found, zero partial reads."""
    n = scaled(1000, 10_000)
    ready, stop, out = tmp_path / "ready", tmp_path / "stop", tmp_path / "out"
    consumer = CTX.Process(target=_consume, args=(swarm.paths, n, ready, out))
    mover = CTX.Process(target=_claim_some, args=(swarm.paths, swarm.settings, stop))
    consumer.start()
    mover.start()
    wait_for(ready)
    board = TaskBoard(swarm)
    for i in range(n):
        board.add(f"t{i}", created_by="lead")
    consumer.join(timeout=600)
    stop.touch()
    mover.join(timeout=60)
    assert (consumer.exitcode, mover.exitcode) == (0, 0)
    assert out.read_text() == f"{n} 0 0"


# -- SIGKILL chaos --------------------------------------------------------------------------


def _chaos_worker(paths: StatePaths, settings: Settings, name: str, fd: int) -> None:
    """Claim, write the artifact in pieces, complete; report each claim on ``fd``."""
    board = TaskBoard(Swarm(paths, settings), announce=random.random() < 0.5)
    rnd = random.Random(os.getpid())
    while (task := board.claim(name)) is not None:
        os.write(fd, f"claimed {task.id}\n".encode())
        target = paths.root / task.artifacts[0]
        target.parent.mkdir(exist_ok=True)
        data = expected_content(task.id)
        with open(target, "wb") as fh:  # in pieces: a kill can leave it half written
            for i in range(0, len(data), 400):
                fh.write(data[i : i + 400])
                fh.flush()
                time.sleep(rnd.random() * 0.001)
            os.fsync(fh.fileno())
        time.sleep(rnd.random() * 0.002)
        board.complete(task.id, name, generation=task.generation)
        os.write(fd, f"done {task.id}\n".encode())


def expected_content(task_id: str) -> bytes:
    return (task_id + "\n").encode() * 50


def test_sigkill_workers_between_claim_and_done(swarm: Swarm) -> None:
    """Workers are SIGKILLed at random moments after they report a claim; a reaper runs
    throughout. Afterwards every task is in exactly one state, and every done task has
    verified, complete artifacts."""
    kills_wanted = scaled(60, 220)
    settings = replace(swarm.settings, task_max_attempts=10_000, task_leaseless_grace_seconds=0)
    swarm = Swarm(swarm.paths, settings)  # real clock: the workers' leases use it too
    n = kills_wanted * 2 + 20
    board = TaskBoard(swarm, announce=False)
    for i in range(n):
        board.add(f"t{i}", created_by="lead", artifacts=[f"out/t{i}.txt"])
    rnd = random.Random(1234)
    kills = 0
    while kills < kills_wanted:
        r, w = os.pipe()
        proc = CTX.Process(target=_chaos_worker, args=(swarm.paths, swarm.settings, "w", w))
        proc.start()
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            line = pipe.readline()
            if line.startswith(b"claimed"):
                time.sleep(rnd.random() * 0.015)  # claim to done takes ~5-15 ms
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        proc.join(timeout=60)
        board.reap()  # the killed pid is gone: its claim returns at once
        check_board_invariants(swarm, n)  # after every kill, not only at the end
        if not line:
            break  # nothing left to claim
    assert kills >= kills_wanted
    check_board_invariants(swarm, n)
    # a clean worker finishes the rest: nothing was lost on the way
    r, w = os.pipe()
    _chaos_worker(swarm.paths, swarm.settings, "finisher", w)
    os.close(w)
    os.close(r)
    board.reap()
    final = check_board_invariants(swarm, n)
    assert final == {"done": n}


def check_board_invariants(swarm: Swarm, n: int) -> dict[str, int]:
    counts = census(swarm.paths)
    assert len(counts) == n
    assert set(counts.values()) == {1}
    tasks = list_tasks(swarm, verify=True)
    assert len(tasks) == n
    for t in tasks:
        if t.status == "done":
            assert t.manifest is not None
            assert not t.ghost
            data = (swarm.paths.root / t.artifacts[0]).read_bytes()
            assert data == expected_content(t.id)
    return dict(Counter(t.status for t in tasks))


def test_killed_owner_is_recovered_by_another_process(swarm: Swarm, tmp_path: Path) -> None:
    """The plain case: a real worker process claims, is SIGKILLed, and its task returns
    to pending with attempts + 1."""
    swarm = Swarm(swarm.paths, swarm.settings)  # real clock, as the worker's
    board = TaskBoard(swarm)
    t = board.add("t", created_by="lead", artifacts=["out/x.txt"])
    r, w = os.pipe()
    proc = CTX.Process(target=_hold, args=(swarm.paths, swarm.settings, w))
    proc.start()
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        assert pipe.readline().startswith(b"claimed")
    assert board.reap() == []  # alive: its lease holds
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=60)
    (back,) = board.reap()
    assert (back.id, back.status, back.attempts) == (t.id, "pending", 1)
    assert back.reason is not None
    assert "is gone" in back.reason


def _hold(paths: StatePaths, settings: Settings, fd: int) -> None:
    task = TaskBoard(Swarm(paths, settings)).claim("holder")
    os.write(fd, f"claimed {task.id if task else None}\n".encode())
    time.sleep(120)


pytestmark = pytest.mark.timeout(600)


# -- racing owners and reapers ------------------------------------------------------------


def _complete_all(
    paths: StatePaths, settings: Settings, ids: list[str], go: Path, out: Path
) -> None:
    from claudeswarm.errors import RefusedError

    board = TaskBoard(Swarm(paths, settings), announce=False)
    wait_for(go)
    results = []
    for task_id in ids:
        try:
            board.complete(task_id, "w")
            results.append(f"{task_id} ok")
        except RefusedError:
            results.append(f"{task_id} refused")
    out.write_text("\n".join(results))


def _reap_all(paths: StatePaths, settings: Settings, go: Path, out: Path) -> None:
    board = TaskBoard(Swarm(paths, settings), announce=False)
    wait_for(go)
    moved = []
    for _ in range(30):
        moved += [t.id for t in board.reap()]
    out.write_text("\n".join(moved))


def _claimed_with_artifacts(swarm: Swarm, n: int, lease: float) -> list[str]:
    board = TaskBoard(Swarm(swarm.paths, replace(swarm.settings, task_lease_seconds=lease)))
    ids = []
    for i in range(n):
        (swarm.paths.root / f"a{i}.txt").write_text(f"artifact {i}")
        ids.append(board.add(f"t{i}", created_by="lead", artifacts=[f"a{i}.txt"]).id)
    for _ in ids:
        assert board.claim("w") is not None
    return ids


def test_two_completers_of_one_claim_succeed_once(swarm: Swarm, tmp_path: Path) -> None:
    ids = _claimed_with_artifacts(swarm, 60, lease=600.0)
    go = tmp_path / "go"
    outs = [tmp_path / "c1", tmp_path / "c2"]
    run_children(_complete_all, [(swarm.paths, swarm.settings, ids, go, o) for o in outs], go)
    oks = Counter(
        line.split()[0] for o in outs for line in o.read_text().splitlines() if "ok" in line
    )
    assert oks == Counter(dict.fromkeys(ids, 1))
    assert census(swarm.paths) == Counter(dict.fromkeys(ids, 1))
    assert {t.status for t in list_tasks(swarm, verify=True) if not t.ghost} == {"done"}


def test_completer_racing_a_reaper_never_both(swarm: Swarm, tmp_path: Path) -> None:
    """Leases of 0 s: every claim is expired, so the reaper and the owner race for each
    task. Each task ends either done (completion won) or pending (the reaper won), never
    both, never lost, and the completer's answer agrees with where the task is."""
    ids = _claimed_with_artifacts(swarm, 60, lease=0.0)
    go, done_out, reap_out = tmp_path / "go", tmp_path / "done", tmp_path / "reaped"
    procs = [
        CTX.Process(target=_complete_all, args=(swarm.paths, swarm.settings, ids, go, done_out)),
        CTX.Process(target=_reap_all, args=(swarm.paths, swarm.settings, go, reap_out)),
    ]
    for p in procs:
        p.start()
    go.touch()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0]
    completed = {ln.split()[0] for ln in done_out.read_text().splitlines() if ln.endswith(" ok")}
    reaped = set(reap_out.read_text().split())
    assert completed.isdisjoint(reaped)
    assert completed | reaped == set(ids)
    assert census(swarm.paths) == Counter(dict.fromkeys(ids, 1))
    by_state = {t.id: t for t in list_tasks(swarm, verify=True)}
    assert {i for i, t in by_state.items() if t.status == "done"} == completed
    assert all(by_state[i].status == "pending" and by_state[i].attempts == 1 for i in reaped)
    assert not any(t.ghost for t in by_state.values())
