"""The task board in one process: ordering, restrictions, leases, reaping, corruption."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from claudeswarm.errors import RefusedError, UnknownTaskError, UsageError
from claudeswarm.messages.service import recent
from claudeswarm.storage.files.tasks import STATES, names, state_dir
from claudeswarm.swarm import Swarm
from claudeswarm.tasks import claims as task_claims
from claudeswarm.tasks.board import TaskBoard, list_tasks, state_dirs
from tests.conftest import FakeClock, settings


def board_with(swarm: Swarm, **changes: object) -> TaskBoard:
    swarm.settings = replace(swarm.settings, **changes)  # type: ignore[arg-type]
    return TaskBoard(swarm)


def where(swarm: Swarm, task_id: str) -> list[str]:
    return [s for s in STATES for n in names(state_dir(swarm.paths, s)) if task_id in n]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_order_is_priority_then_age(swarm: Swarm) -> None:
    board = TaskBoard(swarm)
    low = board.add("low", created_by="lead", priority=-1)
    first = board.add("first", created_by="lead")
    high = board.add("high", created_by="lead", priority=5)
    second = board.add("second", created_by="lead")
    got = [board.claim("w") for _ in range(5)]
    assert [t.id if t else None for t in got] == [high.id, first.id, second.id, low.id, None]


def test_assignee_and_dependencies_restrict_claims(swarm: Swarm, project: Path) -> None:
    board = TaskBoard(swarm)
    mine = board.add("for bob", created_by="lead", assignee="bob")
    base = board.add("base", created_by="lead", artifacts=["b.txt"])
    later = board.add("later", created_by="lead", after=[base.id])
    with pytest.raises(RefusedError, match="assigned to bob"):
        board.claim("alice", mine.id)
    with pytest.raises(RefusedError, match="waits for task"):
        board.claim("alice", later.id)
    got = board.claim("alice")
    assert got is not None
    assert got.id == base.id
    assert board.claim("alice") is None  # later waits, mine is bob's
    (project / "b.txt").write_text("base output")
    board.complete(base.id, "alice")
    nxt = board.claim("alice")
    assert nxt is not None
    assert nxt.id == later.id
    bobs = board.claim("bob")
    assert bobs is not None
    assert bobs.id == mine.id


def test_bad_input_is_refused_before_anything_is_written(swarm: Swarm) -> None:
    board = TaskBoard(swarm)
    for kwargs in (
        {"title": ""},
        {"title": "two\nlines"},
        {"title": "x", "priority": 10**6},
        {"title": "x", "assignee": "Bad Name"},
        {"title": "x", "artifacts": ["../escape.txt"]},
        {"title": "x", "artifacts": ["/etc/passwd"]},
        {"title": "x", "artifacts": ["a@sha256:nothex"]},
    ):
        with pytest.raises(UsageError):
            board.add(created_by="lead", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UnknownTaskError):
        board.add("x", created_by="lead", after=["01M82NRGXCCQB9B8WRRFN0M4J7"])
    assert list_tasks(swarm) == []


def test_events_are_announced_as_task_messages(swarm: Swarm, project: Path) -> None:
    board = TaskBoard(swarm)
    t = board.add("report", created_by="lead", artifacts=["r.md"])
    board.claim("w")
    (project / "r.md").write_text("r")
    board.complete(t.id, "w")
    bodies = [m.body.split()[0] for m in recent(swarm, 10) if m.type == "task"]
    assert bodies == ["created", "claimed", "done"]
    assert all(t.id in m.body for m in recent(swarm, 10))


def test_heartbeat_extends_only_our_generation(swarm: Swarm, clock: FakeClock) -> None:
    board = board_with(swarm, task_lease_seconds=100.0)
    t = board.add("t", created_by="lead")
    claim = board.claim("w")
    assert claim is not None
    assert claim.lease is not None
    clock.advance(90)
    beat = board.heartbeat(t.id, "w", generation=claim.generation)
    assert beat.lease is not None
    assert beat.lease.expires == clock.now + 100
    with pytest.raises(RefusedError, match="claimed by w"):
        board.heartbeat(t.id, "intruder")
    with pytest.raises(RefusedError, match="generation 7 was lost"):
        board.heartbeat(t.id, "w", generation=7)
    clock.advance(90)
    assert board.reap() == []  # renewed: not expired yet


def test_expired_lease_returns_to_pending_with_attempts(swarm: Swarm, clock: FakeClock) -> None:
    board = board_with(swarm, task_lease_seconds=60.0, task_max_attempts=3)
    t = board.add("t", created_by="lead")
    first = board.claim("w1")
    assert first is not None
    clock.advance(61)
    reaped = board.reap()
    assert [(r.id, r.status, r.attempts) for r in reaped] == [(t.id, "pending", 1)]
    with pytest.raises(RefusedError, match="pending"):
        board.complete(t.id, "w1", generation=first.generation)
    again = board.claim("w2")
    assert again is not None
    assert again.generation == first.generation + 1
    assert where(swarm, t.id) == ["claimed"]


def test_dead_owner_is_reaped_at_once_and_fails_after_max_attempts(
    swarm: Swarm, clock: FakeClock
) -> None:
    board = board_with(swarm, task_max_attempts=2)
    t = board.add("doomed", created_by="lead")
    ghost_owner = TaskBoard(swarm, pid=dead_pid())
    assert ghost_owner.claim("w1") is not None
    assert TaskBoard(swarm).reap()[0].status == "pending"  # no clock move: proof of death
    assert ghost_owner.claim("w2") is not None
    out = board.reap()
    assert out[0].status == "failed"
    got = board.get(t.id)
    assert (got.status, got.attempts) == ("failed", 2)
    assert got.reason is not None
    assert "gave up after 2 lost claims" in got.reason
    assert "is gone" in got.reason


def test_live_owner_within_lease_is_not_reaped(swarm: Swarm, clock: FakeClock) -> None:
    board = TaskBoard(swarm)
    board.add("t", created_by="lead")
    board.claim("w")
    clock.advance(swarm.settings.task_lease_seconds - 1)
    assert board.reap() == []


def test_leaseless_claim_is_reclaimed_only_after_grace(swarm: Swarm) -> None:
    """A claimer killed between its rename and its lease write leaves exactly this file."""
    board = board_with(swarm, task_leaseless_grace_seconds=3600.0)
    t = board.add("t", created_by="lead")
    name = names(state_dir(swarm.paths, "pending"))[0]
    os.rename(state_dir(swarm.paths, "pending") / name, state_dir(swarm.paths, "claimed") / name)
    assert board.reap() == []
    assert board.get(t.id).owner is None
    with pytest.raises(RefusedError, match="nobody"):
        board.complete(t.id, "w")
    board = board_with(swarm, task_leaseless_grace_seconds=0.0)
    reaped = board.reap()
    assert [(r.id, r.status, r.attempts) for r in reaped] == [(t.id, "pending", 1)]


def test_a_stalled_claimer_does_not_overwrite_a_newer_claim(swarm: Swarm) -> None:
    """The stalled claimer's rename happened, then it was reaped and re-claimed: its lease
    write must see the new inode and give up."""
    board = board_with(swarm, task_leaseless_grace_seconds=0.0)
    t = board.add("t", created_by="lead")
    name = names(state_dir(swarm.paths, "pending"))[0]
    claimed = state_dir(swarm.paths, "claimed") / name
    os.rename(state_dir(swarm.paths, "pending") / name, claimed)
    stalled_saw = board.get(t.id)
    board.reap()
    winner = board.claim("fresh")
    assert winner is not None
    # the stalled claimer now takes the lock and compares with what it read: lost
    assert task_claims.lease_if_unchanged(board, claimed, "stalled", stalled_saw) is None
    assert board.get(t.id).owner == "fresh"


def test_two_claimers_of_one_version_get_one_lease(swarm: Swarm) -> None:
    """Both read the same leaseless version (one renamed it after a reap): one lease only."""
    board = TaskBoard(swarm)
    t = board.add("t", created_by="lead")
    name = names(state_dir(swarm.paths, "pending"))[0]
    claimed = state_dir(swarm.paths, "claimed") / name
    os.rename(state_dir(swarm.paths, "pending") / name, claimed)
    seen = board.get(t.id)
    first = task_claims.lease_if_unchanged(board, claimed, "a", seen)
    assert first is not None
    assert task_claims.lease_if_unchanged(board, claimed, "b", seen) is None
    assert board.get(t.id).owner == "a"


def test_release_and_fail(swarm: Swarm) -> None:
    board = TaskBoard(swarm)
    a = board.add("a", created_by="lead")
    board.claim("w", a.id)
    back = board.release(a.id, "w")
    assert (back.status, back.attempts) == ("pending", 0)
    board.claim("w", a.id)
    with pytest.raises(UsageError):
        board.fail(a.id, "w", " ")
    failed = board.fail(a.id, "w", "cannot build")
    assert (failed.status, failed.reason) == ("failed", "cannot build")
    with pytest.raises(RefusedError, match="it is failed"):
        board.claim("w", a.id)


def test_corrupt_files_are_quarantined_and_the_rest_served(swarm: Swarm) -> None:
    board = TaskBoard(swarm)
    good = [board.add(f"t{i}", created_by="lead") for i in range(3)]
    pending = state_dir(swarm.paths, "pending")
    bad_names = [
        "00000-01M82NRGXCCQB9B8WRRFN0M4J7-o.json",  # sorts first: claimed first
        "00000-01M82NRGXCCQB9B8WRRFN0M4J8-r.json",
        "00000-01M82NRGXCCQB9B8WRRFN0M4J9-o.json",
    ]
    (pending / bad_names[0]).write_bytes(b'{"v": 1, "id": ')
    (pending / bad_names[1]).write_bytes(b"\xff\xfe not utf-8")
    (pending / bad_names[2]).write_text('{"v": 1, "v": 1}')
    assert len(list_tasks(swarm)) == 3  # read-only listing skips, moves nothing
    assert len(os.listdir(pending)) == 6
    warnings: list[str] = []
    board = TaskBoard(swarm, warn=warnings.append)
    claimed = [board.claim("w") for _ in range(4)]
    assert sorted(t.id for t in claimed if t) == sorted(t.id for t in good)
    assert claimed[-1] is None
    assert len(warnings) == 3
    assert all(w.startswith("quarantined corrupt task file") for w in warnings)
    quarantined = os.listdir(swarm.paths.quarantine / "tasks")
    assert sum(n.endswith(".why") for n in quarantined) == 3


def test_list_tasks_contract(swarm: Swarm, project: Path) -> None:
    board = TaskBoard(swarm)
    t = board.add("c", created_by="lead", priority=3, assignee="w", artifacts=["o.txt"])
    board.claim("w")
    (listed,) = list_tasks(swarm)
    assert (listed.id, listed.title, listed.status, listed.priority) == (t.id, "c", "claimed", 3)
    assert (listed.assignee, listed.owner, listed.attempts) == ("w", "w", 0)
    assert listed.artifacts == ("o.txt",)
    assert listed.created == t.created
    assert listed.ghost is False
    (project / "o.txt").write_text("out")
    board.complete(t.id, "w")
    assert list_tasks(swarm, verify=True)[0].ghost is False
    (project / "o.txt").write_text("tampered")
    assert list_tasks(swarm)[0].ghost is False  # only a verifying listing looks
    assert list_tasks(swarm, verify=True)[0].ghost is True
    assert state_dirs(swarm.paths) == [state_dir(swarm.paths, s) for s in STATES]


def test_working_heartbeats_and_releases_on_error(swarm: Swarm) -> None:
    board = board_with(swarm, task_lease_seconds=30.0)
    t = board.add("t", created_by="lead")
    claim = board.claim("w")
    assert claim is not None
    beats: list[float] = []
    real_heartbeat = board.heartbeat
    done = threading.Event()

    def counting(task_id: str, agent: str, *, generation: int | None = None):  # type: ignore[no-untyped-def]
        out = real_heartbeat(task_id, agent, generation=generation)
        beats.append(out.lease.expires)
        done.set()
        return out

    board.heartbeat = counting  # type: ignore[method-assign]

    def work() -> None:
        with board.working(claim, interval=0.01):
            assert done.wait(30)
            raise RuntimeError("worker crashed")

    with pytest.raises(RuntimeError):
        work()
    assert beats
    assert board.get(t.id).status == "pending"


def test_settings_are_read_from_env(swarm: Swarm) -> None:
    from claudeswarm.config import load

    env = {"CLAUDESWARM_TASK_MAX_ATTEMPTS": "7", "CLAUDESWARM_TASK_LEASE_SECONDS": "5"}
    loaded = load(swarm.paths, env=env).settings
    assert (loaded.task_max_attempts, loaded.task_lease_seconds) == (7, 5.0)
    assert settings().task_leaseless_grace_seconds == 30.0


def test_without_xattrs_the_lease_lives_in_the_json(
    swarm: Swarm, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a filesystem without user xattrs (setxattr fails with ENOTSUP)."""
    import errno

    def no_xattr(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", no_xattr)
    board = TaskBoard(swarm)
    t = board.add("t", created_by="lead")
    got = board.claim("w")
    assert got is not None
    again = board.get(t.id)
    assert (again.owner, again.generation) == ("w", 1)
    assert [h.state for h in again.history] == ["pending", "claimed"]
    clock.advance(10)
    assert board.heartbeat(t.id, "w").lease is not None
    back = board.release(t.id, "w")
    assert [h.state for h in back.history] == ["pending", "claimed", "pending"]
    assert board.get(t.id).lease is None


def test_history_records_each_claim_once(swarm: Swarm, project: Path) -> None:
    board = TaskBoard(swarm)
    t = board.add("t", created_by="lead", artifacts=["o.txt"])
    board.claim("a")
    board.heartbeat(t.id, "a")
    board.release(t.id, "a")
    board.claim("b")
    (project / "o.txt").write_text("o")
    done = board.complete(t.id, "b", note="ok")
    assert [(h.state, h.agent) for h in done.history] == [
        ("pending", "lead"),
        ("claimed", "a"),
        ("pending", "a"),
        ("claimed", "b"),
        ("done", "b"),
    ]
    assert board.get(t.id).history == done.history


def test_one_board_shared_by_agents_keeps_blocked_tasks_in_view(swarm: Swarm) -> None:
    """The cached pending listing must not forget a task one agent was not allowed to take."""
    board = TaskBoard(swarm)
    bobs = board.add("for bob", created_by="lead", assignee="bob", priority=1)
    first = board.add("anyone", created_by="lead")
    board.add("anyone else", created_by="lead")
    got = board.claim("alice")
    assert got is not None
    assert got.id == first.id
    mine = board.claim("bob")  # his task outranks the open one still queued
    assert mine is not None
    assert mine.id == bobs.id


def test_scripted_worker_loop_from_the_readme(swarm: Swarm, project: Path) -> None:
    board = TaskBoard(swarm)
    for i in range(3):
        board.add(f"t{i}", created_by="lead", artifacts=[f"out/{i}.txt"])
    (project / "out").mkdir()
    finished = []
    while (task := board.claim("worker-1")) is not None:
        with board.working(task):
            (project / task.artifacts[0]).write_text(task.title)
            board.complete(task.id, "worker-1", generation=task.generation)
        finished.append(task.title)
    assert finished == ["t0", "t1", "t2"]
    assert {t.status for t in list_tasks(swarm, verify=True)} == {"done"}


def test_planted_symlink_directory_and_fifo_do_not_stop_the_board(
    swarm: Swarm, project: Path
) -> None:
    board = TaskBoard(swarm)
    good = board.add("good", created_by="lead")
    pending = state_dir(swarm.paths, "pending")
    secret = project.parent / "secret.json"
    secret.write_text("{}")
    (pending / "00000-01M82NRGXCCQB9B8WRRFN0M4J7-o.json").symlink_to(secret)
    (pending / "00000-01M82NRGXCCQB9B8WRRFN0M4J8-o.json").mkdir()
    os.mkfifo(pending / "00000-01M82NRGXCCQB9B8WRRFN0M4J9-o.json")
    assert [t.id for t in list_tasks(swarm)] == [good.id]
    warnings: list[str] = []
    board = TaskBoard(swarm, warn=warnings.append)
    got = board.claim("w")
    assert got is not None
    assert got.id == good.id
    assert len(warnings) == 3
    assert secret.read_text() == "{}"  # the link was moved, never followed
    assert sorted(os.listdir(pending)) == []


def test_claim_reaps_when_nothing_is_claimable_at_most_every_interval(swarm: Swarm) -> None:
    board = board_with(swarm, task_auto_reap_seconds=3600.0)
    a = board.add("a", created_by="lead")
    b = board.add("b", created_by="lead")
    dead = TaskBoard(swarm, pid=dead_pid())
    assert dead.claim("crashed") is not None
    got = board.claim("w")  # "b" is still pending: no reap needed
    assert got is not None
    assert got.id == b.id
    again = board.claim("w")  # nothing pending: reaps the dead owner's claim, then claims
    assert again is not None
    assert (again.id, again.attempts) == (a.id, 1)
    assert dead.claim("crashed") is None  # nothing pending
    assert board.claim("w") is None  # a reap ran just now: not again within the interval
    assert board.get(a.id).owner == "w"
    assert where(swarm, a.id) == ["claimed"]
    assert len(board.reap()) == 0


def test_a_lease_write_shows_in_the_claimed_directory_mtime(swarm: Swarm) -> None:
    """The monitor watches state_dirs() mtimes; the lease lives in an xattr, which by
    itself would change no directory."""
    board = TaskBoard(swarm)
    board.add("t", created_by="lead")
    name = names(state_dir(swarm.paths, "pending"))[0]
    claimed_dir = state_dir(swarm.paths, "claimed")
    os.rename(state_dir(swarm.paths, "pending") / name, claimed_dir / name)
    os.utime(claimed_dir, ns=(0, 0))
    assert task_claims.take(board, name, "w") is not None
    assert os.stat(claimed_dir).st_mtime_ns != 0
    assert claimed_dir in state_dirs(swarm.paths)
