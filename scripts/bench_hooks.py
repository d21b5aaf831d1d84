#!/usr/bin/env python3
"""Wall time of the agent hooks as fresh processes (what Claude Code pays per tool call).

    .venv/bin/python scripts/bench_hooks.py [--runs 30]

A scratch project with two registered agents (``me`` bound to a fake pane, ``other``
holding ``src/**``) and ``me`` holding ``docs/**``. Each case pipes the hook JSON into
``python -m claudeswarm hook EVENT`` and times it from spawn to exit:

- ``post-tool``: refresh own leases + report busy (the call after every tool use)
- ``pre-tool`` allowed / refused: an Edit of an unlocked file, of a file ``other`` locked
- ``prompt`` with nothing unread, ``stop`` with nothing unread (reports idle)
- ``python -c pass`` as the floor of any Python process on this machine

Prints a table and writes JSON to ``bench-results/hooks.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import stats

REPO = Path(__file__).resolve().parent.parent


def env_for(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDESWARM_", "TMUX"))}
    env["PYTHONPATH"] = str(REPO)
    env["CLAUDESWARM_HOME"] = str(project / ".claudeswarm")
    env["CLAUDESWARM_NUDGE"] = "never"
    env.update(extra)
    return env


def time_run(
    argv: list[str], project: Path, env: dict[str, str], data: bytes, runs: int
) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=project, env=env, input=data, capture_output=True, check=False)
        out.append(time.perf_counter() - start)
    return out


def setup(project: Path) -> None:
    sys.path.insert(0, str(REPO))
    from claudeswarm.agents import registry

    (project / ".git").mkdir(parents=True)
    cli = [sys.executable, "-m", "claudeswarm"]
    env = env_for(project)
    subprocess.run([*cli, "init"], cwd=project, env=env, check=True, capture_output=True)
    pid = os.getpid()

    def change(agents: registry.Agents) -> tuple[registry.Agents, None]:
        for name, pane in (("me", "%1"), ("other", "%2")):
            agents[name] = registry.AgentRecord(
                name=name, pane=pane, pid=pid, start_time=registry.process_start_time(pid)
            )
        return agents, None

    from claudeswarm.storage.paths import StatePaths

    registry.update(StatePaths(project, project / ".claudeswarm"), change)
    for who, pattern in (("other", "src/**"), ("me", "docs/**")):
        subprocess.run(
            [*cli, "lock", pattern, "--as", who],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "proj"
        setup(project)
        env = env_for(project, TMUX_PANE="%1")
        hook = [sys.executable, "-m", "claudeswarm", "hook"]

        def edit(path: str) -> bytes:
            return json.dumps({"tool_name": "Edit", "tool_input": {"file_path": path}}).encode()

        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], b""),
            ("hook post-tool", [*hook, "post-tool"], b'{"tool_name": "Bash"}'),
            ("hook pre-tool (allowed)", [*hook, "pre-tool"], edit(str(project / "lib/a.py"))),
            ("hook pre-tool (refused)", [*hook, "pre-tool"], edit(str(project / "src/a.py"))),
            ("hook prompt (nothing unread)", [*hook, "prompt"], b"{}"),
            ("hook stop (nothing unread)", [*hook, "stop"], b"{}"),
        ]
        rows = [
            stats(name, time_run(argv, project, env, data, args.runs)) for name, argv, data in cases
        ]
    print(f"{'case':32} {'n':>4} {'ops/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['name']:32} {r['n']:>4} {r['ops_per_s']:>7.1f} {r['p50_ms']:>8.1f} "
            f"{r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "hooks.json").write_text(
        json.dumps({"runs": args.runs, "results": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
