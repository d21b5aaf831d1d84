"""Real processes for the lock tests: workers started with multiprocessing (spawn) and a
scripted holder driven over stdin (``python tests/lockprocs.py hold ...``)."""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from claudeswarm.config import load  # noqa: E402
from claudeswarm.errors import RefusedError  # noqa: E402
from claudeswarm.locks.manager import Holder, LockManager  # noqa: E402
from claudeswarm.locks.patterns import matches  # noqa: E402
from claudeswarm.storage.paths import StatePaths  # noqa: E402
from claudeswarm.swarm import Swarm  # noqa: E402


def open_swarm(root: str) -> Swarm:
    paths = StatePaths(Path(root), Path(root) / ".claudeswarm")
    return Swarm(paths, load(paths, env={}).settings)


def _marker(markers: str, path: str) -> str:
    return os.path.join(markers, path.replace("/", "%"))


def stress_worker(
    root: str, name: str, rounds: int, patterns: list[str], universe: list[str], seed: int
) -> dict[str, Any]:
    """Acquire/hold/release ``rounds`` times; inside every hold, claim an occupancy marker
    (``mkdir``, which fails if it exists) for every universe path the pattern covers."""
    import random

    rng = random.Random(seed)
    sw = open_swarm(root)
    mgr = LockManager(sw, Holder.for_process(name))
    markers = os.path.join(root, "markers")
    overlaps = 0
    for _ in range(rounds):
        pattern = rng.choice(patterns)
        lease = mgr.acquire([pattern], reason="stress", wait=120)
        covered = [p for p in universe if matches(lease.patterns[0], p)]
        made = []
        for path in covered:
            try:
                os.mkdir(_marker(markers, path))
                made.append(path)
            except FileExistsError:
                overlaps += 1
        time.sleep(rng.random() * 0.002)
        for path in made:
            os.rmdir(_marker(markers, path))
        mgr.release(generation=lease.generation)
    sw.close()
    return {"name": name, "overlaps": overlaps, "done": rounds}


def race_worker(root: str, name: str, pattern: str, rounds: int, barrier: Any, out: Any) -> None:
    """One side of the glob-versus-file race: every round both sides try at once."""
    sw = open_swarm(root)
    mgr = LockManager(sw, Holder.for_process(name))
    for r in range(rounds):
        barrier.wait(timeout=60)
        try:
            lease = mgr.acquire([pattern])
            out.put((r, name, True))
        except RefusedError:
            lease = None
            out.put((r, name, False))
        barrier.wait(timeout=60)  # both attempts made (and recorded) before any release
        if lease is not None:
            mgr.release(generation=lease.generation)
        barrier.wait(timeout=60)
    sw.close()


def flock_and_die(lock_path: str, journal: str, fragment: bytes) -> None:
    """Take the sidecar lock, write half a record, then wait to be SIGKILLed."""
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    jd = os.open(journal, os.O_WRONLY | os.O_APPEND)
    os.write(jd, fragment)
    print("holding", flush=True)
    time.sleep(600)


def hold(root: str, name: str, pattern: str, ttl: float) -> None:
    """Acquire, say so, then obey stdin commands (refresh, release) and report results."""
    sw = open_swarm(root)
    mgr = LockManager(sw, Holder.for_process(name))
    lease = mgr.acquire([pattern], ttl=ttl, reason="held by a test process")
    print(f"granted {lease.generation}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        try:
            if cmd == "refresh":
                mgr.refresh(ttl=ttl)
            elif cmd == "release":
                mgr.release([pattern])
            else:
                break
            print("ok", flush=True)
        except RefusedError as exc:
            print(f"refused: {exc}", flush=True)
        except OSError as exc:  # pragma: no cover - reported to the test
            print(f"error: {errno.errorcode.get(exc.errno or 0)}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif sys.argv[1] == "flock-and-die":
        flock_and_die(sys.argv[2], sys.argv[3], sys.argv[4].encode())
