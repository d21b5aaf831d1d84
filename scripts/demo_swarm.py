#!/usr/bin/env python3
"""Start a demo swarm: a throw-away project, agents in tmux panes, a live log pane.

Run through ``scripts/demo`` (which sets everything up first).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOCKET = "claudeswarm-demo"
SESSION = "demo"
BIN = Path(sys.executable).parent

# A scripted agent: joins, then talks to the others through claudeswarm only.
AGENT_SCRIPT = r"""
set -u
me=$1; peer=$2
claudeswarm join "$me" --role "$3" >/dev/null
sleep 1
claudeswarm send "$peer" "hi $peer, $me here: I am on $3" --type info
sleep 1
claudeswarm broadcast "$me: starting work on $3" --type info
sleep 2
claudeswarm inbox
claudeswarm send "$peer" "question from $me: is main green?" --type question
sleep 2
claudeswarm inbox
echo "--- $me is idle; try: claudeswarm inbox | claudeswarm log | claudeswarm agents"
exec bash --norc -i
"""


def tmux(*args: str) -> str:
    out = subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0 and "no server" not in out.stderr:
        raise SystemExit(f"demo: tmux {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="without a terminal: how long to run before printing the panes",
    )
    ap.add_argument("--no-attach", action="store_true", help="never attach")
    args = ap.parse_args()

    project = Path(tempfile.mkdtemp(prefix="claudeswarm-demo."))
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    script = project / "agent.sh"
    script.write_text(AGENT_SCRIPT)
    env_path = f"{BIN}:{os.environ.get('PATH', '')}"
    subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True, check=False)
    init = f"cd {shlex.quote(str(project))} && export PATH={shlex.quote(env_path)} && "
    tmux(
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        "200",
        "-y",
        "50",
        "-c",
        str(project),
        f"{init}claudeswarm init >/dev/null && claudeswarm log -n 50 --follow",
    )
    agents = [
        ("alice", "bob", "auth refactor"),
        ("bob", "carol", "API tests"),
        ("carol", "alice", "docs"),
    ]
    for me, peer, role in agents:
        cmd = f"{init}bash {shlex.quote(str(script))} {me} {peer} {shlex.quote(role)}"
        tmux("split-window", "-t", SESSION, "-c", str(project), cmd)
        tmux("select-layout", "-t", SESSION, "tiled")
    print(f"demo project: {project}")
    if sys.stdin.isatty() and sys.stdout.isatty() and not args.no_attach:
        os.execvp("tmux", ["tmux", "-L", SOCKET, "attach", "-t", SESSION])
    time.sleep(args.seconds)
    for pane in tmux("list-panes", "-t", SESSION, "-F", "#{pane_id}").split():
        print(f"===== pane {pane}")
        print(tmux("capture-pane", "-p", "-t", pane).rstrip())
    tmux("kill-server")
    shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
