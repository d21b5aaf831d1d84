#!/usr/bin/env python3
"""Benchmark the message path: append (plain, and rotating with retention at work), send via
the API, inbox, tail+parse, filter, and ``claudeswarm send`` as a fresh process. Prints a
table and writes JSON.

    .venv/bin/python scripts/bench_messaging.py [--scale 1.0] [--out bench-results/messaging.json]

Targets (issue 2): append >= 50,000/s; inbox of 10 new from a 10,000-message log <= 1 ms;
tail+parse >= 300,000 lines/s; ``claudeswarm send`` <= 100 ms wall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from _bench import pct

from claudeswarm.agents import identity
from claudeswarm.config import Settings
from claudeswarm.messages import service as messaging
from claudeswarm.messages.filters import MessageFilter
from claudeswarm.messages.record import MessageRecord, format_ts, new_id
from claudeswarm.storage.files.log import MessageLog
from claudeswarm.storage.files.tailer import LogTailer
from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.swarm import Swarm

REPO = Path(__file__).resolve().parent.parent
UNLIMITED = replace(
    Settings(), rate_per_sender=10**9, rate_per_pair=10**9, rate_repeat=10**9, rotate_bytes=1 << 40
)


def fresh(tmp: Path, name: str) -> Swarm:
    root = tmp / name
    (root / ".git").mkdir(parents=True)
    return Swarm(ensure_state(StatePaths(root, root / ".claudeswarm")), UNLIMITED)


def record(i: int) -> MessageRecord:
    now = time.time()
    return MessageRecord(
        new_id(now),
        format_ts(now),
        "alice",
        ("bob",),
        "info",
        f"status update {i}: tests green on feature branch, moving on",
    )


def row(
    name: str, n: int, total: float, lat: list[float], unit: str = "ops/s"
) -> dict[str, object]:
    return {
        "name": name,
        "n": n,
        "rate": n / total if total else 0.0,
        "unit": unit,
        "p50_ms": pct(lat, 0.5) * 1e3,
        "p95_ms": pct(lat, 0.95) * 1e3,
        "p99_ms": pct(lat, 0.99) * 1e3,
    }


def timed(n: int, op: Callable[[int], object]) -> tuple[float, list[float]]:
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        op(i)
        lat.append(time.perf_counter() - t)
    return time.perf_counter() - start, lat


def bench_append(tmp: Path, n: int) -> dict[str, object]:
    sw = fresh(tmp, "append")
    recs = [record(i) for i in range(n)]
    with MessageLog(sw.paths, UNLIMITED) as log:
        total, lat = timed(n, lambda i: log.append(recs[i]))
    return row("append (MessageLog, one process)", n, total, lat)


def bench_rotate(tmp: Path, n: int, *, pinned: bool) -> dict[str, object]:
    """Appends that rotate every 64 KiB past ``archive_keep`` = 4, so retention runs on
    every rotation. ``pinned``: a live agent (a real process) read once and then fell
    behind, so past ``archive_max_bytes`` every deletion is counted for it."""
    from claudeswarm.agents import registry

    sw = fresh(tmp, f"rotate-{pinned}")
    s = replace(UNLIMITED, rotate_bytes=64 * 1024, archive_keep=4, archive_max_bytes=512 * 1024)
    recs = [record(i) for i in range(n)]
    agent = subprocess.Popen(["sleep", "600"]) if pinned else None
    try:
        if agent is not None:
            bob = registry.AgentRecord(
                "bob", pid=agent.pid, start_time=registry.process_start_time(agent.pid)
            )
            registry.update(sw.paths, lambda a: ({**a, "bob": bob}, None))
            messaging.inbox(replace(sw, settings=s), "bob")
        with MessageLog(sw.paths, s) as log:
            total, lat = timed(n, lambda i: log.append(recs[i]))
    finally:
        if agent is not None:
            agent.kill()
            agent.wait()
    what = "reader behind past cap" if pinned else "nobody behind"
    out = row(f"append+rotate 64K, {what}", n, total, lat)
    out["max_ms"] = max(lat) * 1e3  # the appends that rotated and pruned
    return out


class StepClock:
    """Advances 10 ms per reading: the rate windows stay as full as in real use (a sender
    at the default limit), instead of growing without bound in a tight loop."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def bench_send_api(tmp: Path, n: int) -> dict[str, object]:
    sw = fresh(tmp, "send")
    sw.clock = StepClock()
    sw.settings = replace(
        Settings(),
        rate_window_seconds=0.5,
        rate_per_sender=10**6,
        rate_per_pair=10**6,
        rate_repeat=10**6,
    )
    identity.join(sw, "alice")
    identity.join(sw, "bob")
    total, lat = timed(n, lambda i: messaging.send(sw, "alice", ["bob"], f"hello {i}"))
    return row("send via API (validate+ratelimit+append)", n, total, lat)


def bench_inbox(tmp: Path, rounds: int) -> dict[str, object]:
    sw = fresh(tmp, "inbox")
    with MessageLog(sw.paths, UNLIMITED) as log:
        log.append_many(record(i) for i in range(10_000))
    messaging.inbox(sw, "bob")  # cursor at the end of a 10,000-message log
    lat = []
    for r in range(rounds):
        with MessageLog(sw.paths, UNLIMITED) as log:
            log.append_many(record(r * 10 + i) for i in range(10))
        t = time.perf_counter()
        got = messaging.inbox(sw, "bob")
        lat.append(time.perf_counter() - t)
        assert len(got.messages) == 10
    return row("inbox: 10 new from a 10,000+ log", rounds, sum(lat), lat)


def bench_tail(tmp: Path, n: int) -> tuple[dict[str, object], dict[str, object], float]:
    sw = fresh(tmp, "tail")
    with MessageLog(sw.paths, UNLIMITED) as log:
        for start in range(0, n, 10_000):
            log.append_many(record(i) for i in range(start, min(n, start + 10_000)))
    size_mb = sw.paths.log.stat().st_size / 1e6
    t = time.perf_counter()
    with LogTailer(sw.paths) as tail:
        count = sum(1 for _ in tail)
    total = time.perf_counter() - t
    assert count == n
    tracemalloc.start()  # a separate pass: tracing slows every allocation
    with LogTailer(sw.paths) as tail:
        for _ in tail:
            pass
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    filt = MessageFilter(
        types=frozenset({"info", "question"}), agents=frozenset({"bob"}), text=("green",)
    )
    with LogTailer(sw.paths) as tail:
        recs = list(tail)
    t = time.perf_counter()
    kept = sum(1 for r in recs if filt.matches(r))
    ftotal = time.perf_counter() - t
    assert kept == n
    return (
        {
            "name": f"tail+parse ({size_mb:.0f} MB log)",
            "n": n,
            "rate": n / total,
            "unit": "lines/s",
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
        },
        {
            "name": "filter (type+agent+text)",
            "n": n,
            "rate": n / ftotal,
            "unit": "records/s",
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
        },
        peak,
    )


def bench_cli_send(tmp: Path, n: int) -> dict[str, object]:
    sw = fresh(tmp, "cli")
    identity.join(sw, "alice")
    identity.join(sw, "bob")
    exe = Path(sys.executable).with_name("claudeswarm")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "claudeswarm"]
    env = dict(
        os.environ,
        CLAUDESWARM_HOME=str(sw.paths.state),
        CLAUDESWARM_RATE_PER_SENDER="1000000",
        CLAUDESWARM_RATE_PER_PAIR="1000000",
    )
    env.pop("TMUX", None)
    env.pop("TMUX_PANE", None)

    def one(i: int) -> None:
        subprocess.run(
            [*cmd, "send", "--as", "alice", "bob", f"cli message {i}"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    one(-1)  # warm the page cache
    total, lat = timed(n, one)
    return row("`claudeswarm send` fresh process (wall)", n, total, lat, "calls/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every n")
    ap.add_argument("--out", default=str(REPO / "bench-results" / "messaging.json"))
    args = ap.parse_args()
    s = args.scale
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows.append(bench_append(tmp, int(50_000 * s)))
        rows.append(bench_rotate(tmp, int(50_000 * s), pinned=False))
        rows.append(bench_rotate(tmp, int(50_000 * s), pinned=True))
        rows.append(bench_send_api(tmp, int(3_000 * s)))
        rows.append(bench_inbox(tmp, int(300 * s)))
        tail, filt, peak = bench_tail(tmp, int(300_000 * s))
        rows += [tail, filt]
        rows.append(bench_cli_send(tmp, int(40 * s)))
    print(f"{'benchmark':46} {'n':>8} {'rate':>14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for r in rows:
        lat = [
            f"{r[k]:8.3f}" if r[k] is not None else f"{'-':>8}"
            for k in ("p50_ms", "p95_ms", "p99_ms")
        ]
        print(f"{r['name']:46} {r['n']:>8} {r['rate']:>12,.0f}/s {' '.join(lat)}")
    for r in rows:
        if "max_ms" in r:
            print(f"{r['name']}: slowest append {r['max_ms']:.1f} ms (a rotation)")
    print(f"tail+parse tracemalloc peak: {peak:.2f} MB (log is read in fixed chunks)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "rows": rows,
                "tail_peak_mb": peak,
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
