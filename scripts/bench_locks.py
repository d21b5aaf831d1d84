#!/usr/bin/env python3
"""Benchmark the lease table: conflict-check cost at 100 / 1,000 / 10,000 held leases, and
acquire + release pairs per second with 1,000 held (durable: fsync on every grant/release).

Also measures the rejected alternative (rewrite one JSON file per change) at the same size,
the measurement that chose the journal format. Prints a table and writes
``bench-results/locks.json``.

Usage: ``.venv/bin/python scripts/bench_locks.py [--sizes 100,1000,10000] [--pairs 1000]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _bench import pct  # noqa: E402

from claudeswarm.config import load  # noqa: E402
from claudeswarm.locks.lease import grant_record  # noqa: E402
from claudeswarm.locks.manager import Holder, LockManager  # noqa: E402
from claudeswarm.storage.files import atomic as _atomic  # noqa: E402
from claudeswarm.storage.paths import StatePaths, ensure_state  # noqa: E402
from claudeswarm.swarm import Swarm  # noqa: E402


def make_swarm(base: Path) -> Swarm:
    root = Path(tempfile.mkdtemp(prefix="bench-locks-", dir=base))
    (root / ".git").mkdir()
    paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
    return Swarm(paths, load(paths, env={}).settings)


def fill(swarm: Swarm, n: int) -> list[str]:
    """Hold ``n`` leases: 90% single files, 10% globs, over 100 packages."""
    holders = [LockManager(swarm, Holder.for_process(f"agent{k}"), durable=False) for k in range(8)]
    held = []
    for i in range(n):
        pkg = f"pkg{i % 100}"
        pattern = f"{pkg}/sub{i}/*.py" if i % 10 == 0 else f"{pkg}/mod{i}.py"
        holders[i % 8].acquire([pattern])
        held.append(pattern)
    return held


def bench_check(swarm: Swarm, n: int, samples: int) -> dict[str, float]:
    held = fill(swarm, n)
    rng = random.Random(n)
    viewer = LockManager(swarm, Holder.for_process("viewer"))

    def query() -> str:  # half of them hit a held lease, half are free files
        if rng.random() < 0.5:
            return held[rng.randrange(n)].replace("*", "x")
        return f"pkg{rng.randrange(100)}/free{rng.randrange(10**6)}.py"

    queries = [query() for _ in range(samples)]
    viewer.check(queries[0])  # first sync reads the journal once
    check_us, who_us = [], []
    for q in queries:
        t = time.perf_counter()
        viewer.check(q)
        check_us.append((time.perf_counter() - t) * 1e6)
    for q in queries[: samples // 4]:
        t = time.perf_counter()
        viewer.who(q)
        who_us.append((time.perf_counter() - t) * 1e6)
    glob_us = []  # a glob query must visit its whole subtree: here n/100 leases
    for _ in range(samples // 4):
        q = f"pkg{rng.randrange(100)}/*.py"
        t = time.perf_counter()
        viewer.check(q)
        glob_us.append((time.perf_counter() - t) * 1e6)
    return {
        "held": n,
        "check_p50_us": pct(check_us, 0.50),
        "check_p95_us": pct(check_us, 0.95),
        "check_p99_us": pct(check_us, 0.99),
        "who_p50_us": pct(who_us, 0.50),
        "who_p99_us": pct(who_us, 0.99),
        "checks_per_s": len(check_us) / (sum(check_us) / 1e6),
        "glob_check_p50_us": pct(glob_us, 0.50),
        "glob_check_p99_us": pct(glob_us, 0.99),
    }


def bench_pairs(swarm: Swarm, held: int, pairs: int) -> dict[str, float]:
    fill(swarm, held)
    me = LockManager(swarm, Holder.for_process("bencher"), durable=True)
    lat = []
    start = time.perf_counter()
    for i in range(pairs):
        t = time.perf_counter()
        lease = me.acquire([f"pkg{i % 100}/bench{i}.py"])
        me.release(generation=lease.generation)
        lat.append((time.perf_counter() - t) * 1e3)
    total = time.perf_counter() - start
    return {
        "held": held,
        "pairs": pairs,
        "pairs_per_s": pairs / total,
        "pair_p50_ms": pct(lat, 0.5),
        "pair_p95_ms": pct(lat, 0.95),
        "pair_p99_ms": pct(lat, 0.99),
    }


def bench_json_rewrite(swarm: Swarm, held: int, writes: int) -> dict[str, float]:
    """The rejected format: the whole table as one JSON file, rewritten durably per change."""
    table = LockManager(swarm).list()
    doc = {"v": 1, "leases": [grant_record(lease)["lease"] for lease in table]}
    path = swarm.paths.file("locks-alt.json")
    t = time.perf_counter()
    for _ in range(writes):
        _atomic.write_json(path, doc, durable=True)
    per = (time.perf_counter() - t) / writes
    return {"held": held, "rewrite_ms": per * 1e3, "implied_pairs_per_s": 1 / (2 * per)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "locks.json"))
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-"))
    checks = [bench_check(make_swarm(base), int(n), args.samples) for n in args.sizes.split(",")]
    pair_swarm = make_swarm(base)
    pairs = bench_pairs(pair_swarm, 1000, args.pairs)
    alt = bench_json_rewrite(pair_swarm, 1000, 100)
    print(
        f"{'held':>6} {'check p50':>10} {'p95':>8} {'p99':>8} {'checks/s':>10} "
        f"{'who p50':>9} {'glob p50':>10} {'glob p99':>9}"
    )
    for c in checks:
        print(
            f"{c['held']:>6} {c['check_p50_us']:>8.1f}us {c['check_p95_us']:>6.1f}us "
            f"{c['check_p99_us']:>6.1f}us {c['checks_per_s']:>10.0f} {c['who_p50_us']:>7.1f}us "
            f"{c['glob_check_p50_us']:>8.1f}us {c['glob_check_p99_us']:>7.1f}us"
        )
    print(
        f"\nacquire+release with {pairs['held']} held (durable): {pairs['pairs_per_s']:.0f} "
        f"pairs/s  (pair p50 {pairs['pair_p50_ms']:.2f} ms, p95 {pairs['pair_p95_ms']:.2f} ms, "
        f"p99 {pairs['pair_p99_ms']:.2f} ms)"
    )
    print(
        f"rejected alternative, one JSON file rewritten per change at {alt['held']} held: "
        f"{alt['rewrite_ms']:.2f} ms/write -> at most {alt['implied_pairs_per_s']:.0f} pairs/s"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "checks": checks,
        "pairs": pairs,
        "json_rewrite": alt,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "median_check_us": statistics.median(c["check_p50_us"] for c in checks),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
