#!/usr/bin/env python3
"""Benchmark the task board: claims/s from 8 processes, listing memory and time.

Usage: ``.venv/bin/python scripts/bench_tasks.py [--tasks 4000] [--procs 8]
[--list-tasks 10000]``. Prints a table and writes ``bench-results/tasks.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from claudeswarm.config import load  # noqa: E402
from claudeswarm.storage.paths import StatePaths, ensure_state  # noqa: E402
from claudeswarm.swarm import Swarm  # noqa: E402
from claudeswarm.tasks.board import TaskBoard, list_tasks  # noqa: E402


def _swarm(root: Path) -> Swarm:
    paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
    return Swarm(paths, load(paths, env={}).settings)


def _fill(root: Path, n: int, announce: bool) -> None:
    board = TaskBoard(_swarm(root), announce=announce)
    for i in range(n):
        board.add(f"task {i}", created_by="bench", priority=i % 3)


def _claimer(root: str, name: str, go: Any, out: Any, finish: Any) -> None:
    board = TaskBoard(_swarm(Path(root)))
    lat = []
    go.wait()
    while True:
        t0 = time.perf_counter()
        task = board.claim(name)
        if task is None:
            break
        lat.append(time.perf_counter() - t0)
    out.put((name, lat, time.perf_counter()))
    # Stay alive until every worker is done: a worker that exits is a dead owner, and the
    # others would (rightly) reap and re-claim its tasks, counting them twice.
    finish.wait()


def bench_claims(n: int, procs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        _fill(root, n, announce=False)
        ctx = mp.get_context("fork")
        go, out, finish = ctx.Event(), ctx.Queue(), ctx.Event()
        workers = [
            ctx.Process(target=_claimer, args=(str(root), f"w{i}", go, out, finish))
            for i in range(procs)
        ]
        for w in workers:
            w.start()
        time.sleep(0.5)  # let every worker import and wait at the barrier
        start = time.perf_counter()
        go.set()
        results = [out.get(timeout=600) for _ in workers]
        finish.set()
        for w in workers:
            w.join()
        end = max(r[2] for r in results)
        lat = sorted(x for r in results for x in r[1])
    q = statistics.quantiles(lat, n=100)
    return {
        "op": f"claim ({procs} procs)",
        "n": len(lat),
        "ops_per_s": len(lat) / (end - start),
        "p50_ms": q[49] * 1e3,
        "p95_ms": q[94] * 1e3,
        "p99_ms": q[98] * 1e3,
    }


def bench_list(n: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        _fill(root, n, announce=False)
        sw = _swarm(root)
        list_tasks(sw)  # warm the page cache
        t0 = time.perf_counter()
        tasks = list_tasks(sw)
        lib_s = time.perf_counter() - t0
        del tasks
        tracemalloc.start()  # separately: tracing slows the listing ~2x
        tasks = list_tasks(sw)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(tasks) == n
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CLAUDESWARM_HOME": str(root / ".claudeswarm"),
        }
        cli = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "claudeswarm", "task", "list"],
                cwd=root,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cli.append(time.perf_counter() - t0)
    return [
        {"op": f"list_tasks() {n} tasks", "n": n, "seconds": lib_s, "peak_mib": peak / 2**20},
        {"op": f"`task list` CLI {n} tasks", "n": n, "seconds": statistics.median(cli)},
    ]


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "-"


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['op']:<30} {r['n']:>6} {_cell(r, 'ops_per_s', '8.0f'):>8}"
        f" {_cell(r, 'p50_ms', '7.2f'):>7} {_cell(r, 'p95_ms', '7.2f'):>7}"
        f" {_cell(r, 'p99_ms', '7.2f'):>7} {_cell(r, 'seconds', '6.3f'):>6}"
        f" {_cell(r, 'peak_mib', '8.1f'):>8}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=4000)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--list-tasks", type=int, default=10000)
    args = ap.parse_args()
    rows = [bench_claims(args.tasks, args.procs), *bench_list(args.list_tasks)]
    print(
        f"{'operation':<30} {'n':>6} {'ops/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        f" {'secs':>6} {'peak MiB':>8}"
    )
    for r in rows:
        print(_line(r))
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "tasks.json").write_text(json.dumps({"results": rows, "cpus": os.cpu_count()}, indent=2))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
