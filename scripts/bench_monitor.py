#!/usr/bin/env python3
"""Benchmark the monitor against its targets, running the real app headless.

1. first screen: time from ``create_app`` until the first screen shows the newest messages,
   on a log of ``--log-mb`` MB (target: < 1 s on 100 MB).
2. RSS: resident memory growth while ``--n`` messages stream through the running app,
   appended by another process (target: < 10 MB for 1,000,000).
3. keeping up: ``--writers`` processes append ``--rate`` messages/s in total for
   ``--seconds``; per-record delay from append to the app's ring, first half against
   second half, and the backlog when the writers stop (target: no growing backlog).

Usage: ``.venv/bin/python scripts/bench_monitor.py [--n 1000000] [--log-mb 100]``.
Prints a table and writes ``bench-results/bench_monitor.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _bench import pct  # noqa: E402

from claudeswarm.agents import registry  # noqa: E402
from claudeswarm.config import Settings  # noqa: E402
from claudeswarm.messages.record import MessageRecord, format_ts, new_id, parse_ts  # noqa: E402
from claudeswarm.monitor.app import FeedUpdated, MonitorApp, create_app  # noqa: E402
from claudeswarm.monitor.widgets.messages import MessageList  # noqa: E402
from claudeswarm.storage.files.log import MessageLog, frame  # noqa: E402
from claudeswarm.storage.paths import StatePaths, ensure_state  # noqa: E402
from claudeswarm.swarm import Swarm  # noqa: E402

SIZE = (120, 36)
BODY = "benchmark message body with some words in it to look like a real note " * 2


def rss_kb() -> int:
    """Resident set size of this process (kB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def new_swarm(root: Path, **settings: Any) -> Swarm:
    (root / ".git").mkdir(parents=True, exist_ok=True)
    paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
    swarm = Swarm(paths, replace(Settings(), **settings))
    for name in ("alice", "bob", "carol"):
        agent = registry.AgentRecord(name, kind="claude", state="idle", last_seen=format_ts(0))

        def change(cur: registry.Agents, a: registry.AgentRecord = agent) -> Any:
            return {**cur, a.name: a}, None

        registry.update(paths, change)
    return swarm


def record(i: int, prefix: str = "m") -> MessageRecord:
    now = time.time()
    to = ("bob",) if i % 3 else ("all",)
    return MessageRecord(new_id(now), format_ts(now), "alice", to, "info", f"{prefix}{i} {BODY}")


# -- writer process -----------------------------------------------------------------------


def writer(state: str, count: int, rate: float, prefix: str) -> None:
    """Append ``count`` records at ``rate``/s (0: as fast as possible), batches of 1000
    when unpaced, one at a time when paced."""
    paths = StatePaths(Path(state).parent, Path(state))
    log = MessageLog(paths, Settings())
    start = time.perf_counter()
    if rate <= 0:
        for base in range(0, count, 1000):
            log.append_many([record(i, prefix) for i in range(base, min(count, base + 1000))])
        return
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        log.append(record(i, prefix))


def spawn(swarm: Swarm, count: int, rate: float, prefix: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, __file__, "--writer", str(swarm.paths.state), str(count)]
    return subprocess.Popen([*args, str(rate), prefix])


# -- 1. first screen ----------------------------------------------------------------------


def build_log(swarm: Swarm, megabytes: int) -> int:
    """Write ``megabytes`` of framed records straight into the live log (setup only)."""
    target, count = megabytes * 1024 * 1024, 0
    with open(swarm.paths.log, "ab") as fh:
        while fh.tell() < target:
            fh.write(b"".join(frame(record(count + i)) for i in range(2000)))
            count += 2000
    return count


async def first_screen_once(swarm: Swarm) -> float:
    """Seconds from ``create_app`` until the message panel has drawn a message row."""
    drawn: list[float] = []
    original = MessageList.render_line

    def render_line(self: MessageList, y: int) -> Any:
        if not drawn and self.shown:
            drawn.append(time.perf_counter())
        return original(self, y)

    MessageList.render_line = render_line  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        app = create_app(swarm)
        async with app.run_test(size=SIZE) as pilot:
            while not drawn:
                await pilot.pause(0.005)
            return drawn[0] - t0
    finally:
        MessageList.render_line = original  # type: ignore[method-assign]


def bench_first_screen(base: Path, megabytes: int, runs: int) -> dict[str, Any]:
    swarm = new_swarm(base / "first", rotate_bytes=2 * megabytes * 1024 * 1024)
    count = build_log(swarm, megabytes)
    size = swarm.paths.log.stat().st_size
    times = [asyncio.run(first_screen_once(swarm)) for _ in range(runs)]
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "claudeswarm", "monitor", "--once", "--json"],
        env=dict(os.environ, CLAUDESWARM_HOME=str(swarm.paths.state), PYTHONPATH=str(ROOT)),
        capture_output=True,
        check=True,
    )
    once = time.perf_counter() - t0
    assert json.loads(out.stdout)["messages"]
    t0 = time.perf_counter()  # what a cold start adds before create_app: the imports
    subprocess.run([sys.executable, "-c", "import claudeswarm.monitor.app"], check=True)
    imports = time.perf_counter() - t0
    return {
        "log_bytes": size,
        "records": count,
        "runs": runs,
        "p50_s": statistics.median(times),
        "p95_s": pct(times, 0.95),
        "max_s": max(times),
        "once_json_s": once,
        "cold_import_s": imports,
    }


# -- 2. RSS while N messages stream through -----------------------------------------------


async def stream(swarm: Swarm, n: int) -> dict[str, Any]:
    app = create_app(swarm, poll=0.02)
    async with app.run_test(size=SIZE) as pilot:
        warm = min(50_000, max(n // 20, 2_000))
        w = spawn(swarm, warm, 0, "warm")
        while app.messages.seen < warm:
            await pilot.pause(0.05)
        w.wait()
        base = rss_kb()
        t0 = time.perf_counter()
        w = spawn(swarm, n, 0, "s")
        peak, samples = base, []
        while app.messages.seen < warm + n:
            await pilot.pause(0.1)
            now = rss_kb()
            peak = max(peak, now)
            samples.append(now)
        elapsed = time.perf_counter() - t0
        w.wait()
        await pilot.pause(0.3)
        final = rss_kb()
        assert len(app.messages.ring) <= app.ring_size
        return {
            "n": n,
            "seconds": elapsed,
            "msgs_per_s": n / elapsed,
            "rss_base_kb": base,
            "rss_final_kb": final,
            "rss_peak_kb": peak,
            "growth_mb": (final - base) / 1024,
            "peak_growth_mb": (peak - base) / 1024,
            "ring": len(app.messages.ring),
        }


# -- 3. keeping up with writers -----------------------------------------------------------


async def keep_up(swarm: Swarm, rate: float, seconds: float, writers: int) -> dict[str, Any]:
    delays: list[tuple[float, float]] = []  # (arrival time, delay)
    written: list[float] = []  # append times, from the records themselves
    original = MonitorApp.on_feed_updated

    def timed(self: MonitorApp, event: FeedUpdated) -> None:
        now = time.time()
        for rec in event.update.records:
            sent = parse_ts(rec.ts).timestamp()
            written.append(sent)
            delays.append((now, now - sent))
        original(self, event)

    MonitorApp.on_feed_updated = timed  # type: ignore[method-assign]
    try:
        app = create_app(swarm)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            start_seen = app.messages.seen
            total = int(rate * seconds)
            each = total // writers
            t0 = time.time()
            procs = [spawn(swarm, each, rate / writers, f"w{k}-") for k in range(writers)]
            while any(p.poll() is None for p in procs):
                await pilot.pause(0.1)
            stopped = time.time()
            backlog_at_stop = each * writers - (app.messages.seen - start_seen)
            while app.messages.seen - start_seen < each * writers:
                await pilot.pause(0.02)
            drain = time.time() - stopped
    finally:
        MonitorApp.on_feed_updated = original  # type: ignore[method-assign]
    mid = t0 + (stopped - t0) / 2
    first = [d for t, d in delays if t < mid]
    second = [d for t, d in delays if t >= mid]
    return {
        "rate": rate,
        "writers": writers,
        "seconds": stopped - t0,
        "achieved_rate": len(written) / max(max(written) - min(written), 1e-9),
        "records": each * writers,
        "p50_ms": pct([d for _, d in delays], 0.5) * 1000,
        "p95_ms": pct([d for _, d in delays], 0.95) * 1000,
        "p99_ms": pct([d for _, d in delays], 0.99) * 1000,
        "first_half_p95_ms": pct(first, 0.95) * 1000,
        "second_half_p95_ms": pct(second, 0.95) * 1000,
        "backlog_at_stop": backlog_at_stop,
        "drain_s": drain,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="messages for the RSS run")
    parser.add_argument("--log-mb", type=int, default=100, help="log size for first screen")
    parser.add_argument("--runs", type=int, default=5, help="first-screen repetitions")
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s in total")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the rate run")
    parser.add_argument("--writers", type=int, default=4, help="writer processes")
    parser.add_argument("--writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        state, count, rate, prefix = args.writer
        writer(state, int(count), float(rate), prefix)
        return
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        base = Path(tmp)
        first = bench_first_screen(base, args.log_mb, args.runs)
        rss = asyncio.run(stream(new_swarm(base / "rss"), args.n))
        rate = asyncio.run(keep_up(new_swarm(base / "rate"), args.rate, args.seconds, args.writers))
    report(first, rss, rate)


def report(first: dict[str, Any], rss: dict[str, Any], rate: dict[str, Any]) -> None:
    rows = [
        ("first screen", f"{first['log_bytes'] / 2**20:.0f} MB", "-",
         f"{first['p50_s'] * 1000:.0f} ms", f"{first['p95_s'] * 1000:.0f} ms",
         f"{first['max_s'] * 1000:.0f} ms", f"--once --json {first['once_json_s'] * 1000:.0f} ms,"
         f" cold import +{first['cold_import_s'] * 1000:.0f} ms"),
        ("stream (RSS)", f"{rss['n']:,}", f"{rss['msgs_per_s']:,.0f}", "-", "-", "-",
         f"growth {rss['growth_mb']:.1f} MB, peak +{rss['peak_growth_mb']:.1f} MB"),
        ("keep up", f"{rate['records']:,}", f"{rate['achieved_rate']:,.0f}",
         f"{rate['p50_ms']:.0f} ms", f"{rate['p95_ms']:.0f} ms", f"{rate['p99_ms']:.0f} ms",
         f"p95 1st/2nd half {rate['first_half_p95_ms']:.0f}/{rate['second_half_p95_ms']:.0f} ms,"
         f" backlog {rate['backlog_at_stop']}, drain {rate['drain_s'] * 1000:.0f} ms"),
    ]  # fmt: skip
    header = ("bench", "n", "ops/s", "p50", "p95", "p99", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    result = {"first_screen": first, "stream": rss, "keep_up": rate}
    (out / "bench_monitor.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
