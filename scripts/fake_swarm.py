#!/usr/bin/env python3
"""Start fake agents in tmux windows of the current server (for the demo and manual tries).

    python3 scripts/fake_swarm.py --kinds claude,codex,aider --dir /tmp/swarm [--session S]

Each agent is ``scripts/fake_agent.py`` run through a symlink named like the agent (so
discovery recognises it by its ordinary rules), joins with its default name (claude-1,
codex-1, ...), and records what it receives under ``--dir``. Prints one line per agent:
``pane name record-base``; with ``--json`` a JSON list. Needs ``$TMUX`` or ``--socket``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from claudeswarm.tmux.client import current  # noqa: E402

FAKE = REPO / "scripts" / "fake_agent.py"


def start(kinds: list[str], folder: Path, session: str | None, socket: str | None) -> list[dict]:
    """Open one window per kind running a fake agent; wait until each has joined."""
    tm = current(socket)
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    started = []
    for i, kind in enumerate(kinds):
        link = folder / "bin" / kind
        if not link.exists():
            link.symlink_to(FAKE)
        base = folder / f"{kind}-{i}"
        cmd = shlex.join([sys.executable, str(link), "--record", str(base), "--join", "-"])
        target = ["-t", f"{session}:"] if session else []
        pane = tm.run("new-window", "-d", "-P", "-F", "#{pane_id}", *target, cmd).strip()
        started.append({"pane": pane, "kind": kind, "record": str(base)})
    deadline = time.monotonic() + 30
    for agent in started:
        events = Path(agent["record"] + ".jsonl")
        while time.monotonic() < deadline and "ready" not in _read(events):
            time.sleep(0.1)
        ready = [json.loads(ln) for ln in _read(events).splitlines() if '"ready"' in ln]
        agent["name"] = ready[0]["name"] if ready else None
    return started


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default="claude,codex,aider,gemini")
    ap.add_argument("--dir", required=True, help="where symlinks and records go")
    ap.add_argument("--session", help="tmux session for the windows (default: current)")
    ap.add_argument("--socket", help="tmux server socket (default: $TMUX)")
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args()
    agents = start(ns.kinds.split(","), Path(ns.dir).resolve(), ns.session, ns.socket)
    if ns.json:
        print(json.dumps(agents))
    else:
        for a in agents:
            print(a["pane"], a["name"], a["record"])
    return 0 if all(a["name"] for a in agents) else 1


if __name__ == "__main__":
    raise SystemExit(main())
