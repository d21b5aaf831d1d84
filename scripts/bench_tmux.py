#!/usr/bin/env python3
"""Benchmark discovery, broadcast nudges and send -> read latency on a private tmux server.

    .venv/bin/python scripts/bench_tmux.py [--panes 100] [--broadcast 50] [--messages 1000]

1. ``discover`` with N panes (half agents, half bash): the library scan, the scan plus
   registry merge, and the CLI as a fresh process. Target <= 150 ms.
2. ``broadcast`` to M fake agents: time from starting the command until tmux accepted
   the last nudge (from ``nudges.jsonl``). Target: all within 0.5 s.
3. K messages to one fake agent that runs ``claudeswarm inbox`` when nudged: share read
   and send -> read latency.
4. ``send`` wall time as a fresh process, with a recipient pane (budget 100 ms).

Prints a table and writes JSON to ``bench-results/tmux.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _bench import stats  # noqa: E402

from claudeswarm.agents import discovery, identity  # noqa: E402
from claudeswarm.messages import service as messaging  # noqa: E402
from claudeswarm.messages.record import parse_ts  # noqa: E402
from claudeswarm.swarm import open_swarm  # noqa: E402
from claudeswarm.tmux import delivery  # noqa: E402
from claudeswarm.tmux.client import Tmux, socket_for_name  # noqa: E402

KINDS = ("claude", "codex", "aider", "gemini", "opencode")
FAKE = REPO / "scripts" / "fake_agent.py"


class Bench:
    """A temp project and a private tmux server."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.project = tmp / "proj"
        (self.project / ".git").mkdir(parents=True)
        self.state = self.project / ".claudeswarm"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.records = tmp / "records"
        self.records.mkdir()
        self.tm = Tmux(socket_path=socket_for_name(f"csbench{os.getpid()}"))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CLAUDESWARM_", "TMUX"))},
            "PYTHONPATH": str(REPO),
            "CLAUDESWARM_HOME": str(self.state),
            "CLAUDESWARM_RATE_PER_SENDER": "1000000",
            "CLAUDESWARM_RATE_PER_PAIR": "1000000",
            "CLAUDESWARM_RATE_REPEAT": "1000000",
            "TMUX": f"{self.tm.socket},0,0",
        }
        os.environ.update(self.env)
        os.environ.pop("TMUX_PANE", None)

    def start(self, part: str) -> None:
        """A fresh server per part (a killed server takes a moment to go away)."""
        self.tm = Tmux(socket_path=socket_for_name(f"csbench{os.getpid()}{part}"))
        self.env["TMUX"] = os.environ["TMUX"] = f"{self.tm.socket},0,0"
        self.state = self.project / f".claudeswarm-{part}"  # a fresh registry too
        self.env["CLAUDESWARM_HOME"] = os.environ["CLAUDESWARM_HOME"] = str(self.state)
        self.tm.run("new-session", "-d", "-s", "bench", "-x", "200", "-y", "50")

    def stop(self) -> None:
        subprocess.run(self.tm.argv("kill-server"), capture_output=True, check=False)

    def window(self, command: str) -> str:
        flags = [a for k, v in self.env.items() if k != "TMUX" for a in ("-e", f"{k}={v}")]
        out = self.tm.run(
            "new-window", "-d", "-P", "-F", "#{pane_id}", "-t", "bench", "-c", str(self.project),
            *flags, command,
        )  # fmt: skip
        return out.strip()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claudeswarm", *args],
            cwd=self.project, env=self.env, capture_output=True, text=True, check=True,
        )  # fmt: skip

    def fake(self, kind: str, tag: str, *flags: str) -> Path:
        link = self.bin / f"{kind}"
        if not link.exists():
            link.symlink_to(FAKE)
        base = self.records / tag
        self.window(f"{sys.executable} {link} --record {base} {' '.join(flags)}")
        return base


def wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def bench_discover(b: Bench, panes: int) -> list[dict[str, Any]]:
    for kind in KINDS:  # an agent CLI as a script, the way npm and pipx install them
        script = b.bin / f"sh-{kind}" / kind
        script.parent.mkdir()
        script.write_text("#!/bin/sh\nwhile :; do sleep 3600; done\n")
        script.chmod(0o755)
    agents = panes // 2
    for i in range(panes):
        kind = KINDS[i % len(KINDS)]
        b.window(str(b.bin / f"sh-{kind}" / kind) if i < agents else "bash --norc --noprofile")
    wait(lambda: len(discovery.scan(b.tm).found) == agents, 60, f"{agents} agents")
    swarm = open_swarm(str(b.state))
    scan_t, refresh_t, cli_t = [], [], []
    for _ in range(30):
        t = time.perf_counter()
        found = discovery.scan(b.tm).found
        scan_t.append(time.perf_counter() - t)
        assert len(found) == agents
        t = time.perf_counter()
        identity.refresh(swarm, b.tm)
        refresh_t.append(time.perf_counter() - t)
    for _ in range(10):
        t = time.perf_counter()
        out = b.cli("discover", "--json")
        cli_t.append(time.perf_counter() - t)
        assert len(json.loads(out.stdout)) == agents
    return [
        stats(f"discover scan, {panes} panes (library)", scan_t, found=agents),
        stats(f"discover scan + registry, {panes} panes", refresh_t),
        stats(f"claudeswarm discover, {panes} panes (CLI)", cli_t),
    ]


def bench_broadcast(b: Bench, count: int, rounds: int = 5) -> dict[str, Any]:
    for i in range(count):
        b.fake(KINDS[i % 4], f"bc-{i}", "--ignore")
    wait(lambda: len(list(b.records.glob("bc-*.jsonl"))) == count, 120, "fake agents")
    b.cli("discover")
    b.cli("join", "boss")
    swarm = open_swarm(str(b.state))
    totals, walls = [], []
    for r in range(rounds):
        t0 = time.time()
        mid = json.loads(b.cli("broadcast", "--as", "boss", f"round {r}", "--json").stdout)["id"]
        walls.append(time.time() - t0)

        def done(m: str = mid) -> bool:
            return sum(e.id == m for e in delivery.nudges(swarm)) >= count

        wait(done, 60, "broadcast nudges")
        mine = [e for e in delivery.nudges(swarm) if e.id == mid]
        assert all(e.outcome == "nudged" for e in mine), {(e.outcome, e.reason) for e in mine}
        totals.append(max(parse_ts(e.ts).timestamp() for e in mine) - t0)
    row = stats(f"broadcast to {count} panes: last nudge accepted", totals, panes=count)
    row["cli_wall_p50_ms"] = statistics.median(walls) * 1000
    return row


def bench_messages(b: Bench, count: int, rate: float) -> tuple[dict[str, Any], ...]:
    base = b.fake("claude", "reader", "--join", "reader")
    events = base.with_suffix(".jsonl")
    wait(lambda: events.exists() and "ready" in events.read_text(), 60, "reader")
    swarm = open_swarm(str(b.state))
    sent: dict[str, float] = {}
    for i in range(count):
        t = time.time()
        rec = messaging.send(swarm, "boss", ["reader"], f"message {i} of {count}")
        delivery.after_send(swarm, rec)
        sent[rec.id] = t
        time.sleep(max(0.0, 1 / rate - (time.time() - t)))

    def reads() -> dict[str, float]:
        out = {}
        for line in base.with_suffix(".jsonl").read_text().splitlines():
            ev = json.loads(line)
            for mid in ev.get("ids", []) if ev["kind"] == "read" else ():
                out.setdefault(mid, ev["t"])
        return out

    deadline = time.monotonic() + 120
    while len(set(reads()) & set(sent)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    got = reads()
    lat = [got[m] - t for m, t in sent.items() if m in got]
    events = [json.loads(ln) for ln in base.with_suffix(".jsonl").read_text().splitlines()]
    nudgers = sum(e["kind"] == "line" for e in events)  # lines typed into the agent
    row = stats(
        f"{count} messages to a fake agent: send -> read",
        lat or [0.0],
        read_pct=100.0 * len(lat) / count,
        send_rate=rate,
        nudge_lines=nudgers,
    )
    return row, *bench_send(b)


def bench_send(b: Bench, n: int = 30) -> tuple[dict[str, Any], dict[str, Any]]:
    """``send`` as a fresh process, to a pane (starts a nudger) and to a paneless agent.
    A pause between sends lets the previous nudger and inbox finish: this measures the
    sender's wait, not the machine's backlog."""
    b.cli("join", "nopane")
    walls: dict[str, list[float]] = {"reader": [], "nopane": []}
    for i in range(n):
        for to in walls:
            time.sleep(0.3)
            t = time.perf_counter()
            b.cli("send", "--as", "boss", to, f"timed send {i}")
            walls[to].append(time.perf_counter() - t)
    return (
        stats("claudeswarm send, recipient in a pane (CLI)", walls["reader"]),
        stats("claudeswarm send, recipient without pane (CLI)", walls["nopane"]),
    )


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'benchmark':<52} {'n':>5} {'ops/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<52} {r['n']:>5} {r['ops_per_s']:>8.1f} {r['p50_ms']:>8.1f} "
            f"{r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--panes", type=int, default=100)
    ap.add_argument("--broadcast", type=int, default=50)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50.0, help="messages per second in part 3")
    ap.add_argument("--out", default=str(REPO / "bench-results" / "tmux.json"))
    ns = ap.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("bench: tmux is not installed")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="csbench") as tmp:
        b = Bench(Path(tmp))
        try:
            b.start("a")
            rows += bench_discover(b, ns.panes)
            b.stop()
            b.start("b")
            rows.append(bench_broadcast(b, ns.broadcast))
            rows += bench_messages(b, ns.messages, ns.rate)
        finally:
            b.stop()
    print(table(rows))
    extra = {r["name"]: {k: v for k, v in r.items() if k not in ("name", "n")} for r in rows}
    print(json.dumps(extra, indent=1))
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bench": "tmux", "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
