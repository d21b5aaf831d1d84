"""The nudge queue under real concurrency: many senders, a taker, nothing lost or doubled."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.tmux import queue as nudge_queue

STRESS = int(os.environ.get("CLAUDESWARM_STRESS", "1") or 1)


def _sender(state: str, who: int, count: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    paths = StatePaths(Path(state).parent, Path(state))
    owned = sum(nudge_queue.enqueue(paths, "ann", f"{who}-{i}") for i in range(count))
    out.put(owned)


def _taker(state: str, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    paths = StatePaths(Path(state).parent, Path(state))
    batches = []
    while not stop.is_set():
        got = nudge_queue.take(paths, "ann")
        if got:
            batches.append(got)
    out.put(batches)


@pytest.mark.stress
def test_every_id_is_taken_exactly_once(paths: StatePaths) -> None:
    ensure_state(paths)
    ctx = mp.get_context("spawn")
    owners, taken = ctx.Queue(), ctx.Queue()
    stop = ctx.Event()
    count = 400 * STRESS
    taker = ctx.Process(target=_taker, args=(str(paths.state), stop, taken))
    taker.start()
    senders = [
        ctx.Process(target=_sender, args=(str(paths.state), w, count, owners)) for w in range(4)
    ]
    for p in senders:
        p.start()
    owned = sum(owners.get(timeout=120) for _ in senders)
    for p in senders:
        p.join(60)
    stop.set()
    batches = taken.get(timeout=120)
    taker.join(60)
    batches.append(nudge_queue.take(paths, "ann"))
    ids = [i for b in batches for i in b]
    assert sorted(ids) == sorted(f"{w}-{i}" for w in range(4) for i in range(count))
    # each owner opened its own queue, and every queue taken had been opened by someone
    assert 1 <= owned <= sum(1 for b in batches if b)


def test_an_orphaned_queue_is_replaced(paths: StatePaths) -> None:
    ensure_state(paths)
    assert nudge_queue.enqueue(paths, "ann", "a") is True
    nudge_queue.set_owner(paths, "ann", 2**22 + 12345)  # a pid that does not run
    assert nudge_queue.enqueue(paths, "ann", "b") is True  # stale: adopted by a new owner
    nudge_queue.set_owner(paths, "ann", os.getpid())
    assert nudge_queue.enqueue(paths, "ann", "c") is False  # the owner lives: just queued
    assert nudge_queue.take(paths, "ann") == ["a", "b", "c"]
    assert nudge_queue.take(paths, "ann") == []
