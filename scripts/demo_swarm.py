#!/usr/bin/env python3
"""Start a demo swarm in tmux: fake agents, a lead, leases, tasks, nudges and the monitor.

Run through ``scripts/demo`` (which sets everything up first). In a terminal it attaches
you to the session: the monitor is on the left, three agents (run under the names
``claude``, ``codex`` and ``aider``, so discovery finds them by their process tree) on
the right. Without a terminal it plays the scenario, prints what every part showed, and
cleans up.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "scripts" / "fake_agent.py"
SOCKET = "claudeswarm-demo"
SESSION = "demo"
KINDS = ("claude", "codex", "aider")


class Demo:
    """One throw-away project with its own tmux server."""

    def __init__(self, project: Path) -> None:
        self.project = project
        bin_dir = Path(sys.executable).parent
        self.env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}")
        for var in ("TMUX", "TMUX_PANE", "CLAUDESWARM_HOME", "CLAUDESWARM_AGENT"):
            self.env.pop(var, None)

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False, env=self.env
        )
        if out.returncode != 0 and "no server" not in out.stderr:
            raise SystemExit(f"demo: tmux {args[0]} failed: {out.stderr.strip()}")
        return out.stdout

    def cs(self, *args: str, show: bool = True) -> str:
        """Run one claudeswarm command as the lead, echoing it like a shell would."""
        cmd = ["claudeswarm", *args]
        out = subprocess.run(
            cmd, cwd=self.project, env=self.env, capture_output=True, text=True, check=False
        )
        if show:
            print(f"$ {shlex.join(cmd)}")
            text = (out.stdout + out.stderr).rstrip()
            if text:
                print(text)
        return out.stdout

    def start(self) -> None:
        subprocess.run(["git", "init", "-q", str(self.project)], check=True)
        (self.project / "src" / "auth").mkdir(parents=True)
        (self.project / "src" / "auth" / "login.py").write_text("def login(): ...\n")
        links = self.project / ".demo-bin"
        links.mkdir()
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True, check=False)
        cd = f"cd {shlex.quote(str(self.project))} && export PATH={shlex.quote(self.env['PATH'])}"
        self.tmux(
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            "220",
            "-y",
            "55",
            "-c",
            str(self.project),
            f"{cd} && claudeswarm init >/dev/null && exec claudeswarm monitor",
        )
        for kind in KINDS:
            (links / kind).symlink_to(FAKE)
            agent = shlex.join(
                [
                    sys.executable,
                    str(links / kind),
                    "--record",
                    str(links / f"{kind}.rec"),
                    "--join",
                    "-",
                ]
            )
            self.tmux(
                "split-window",
                "-h" if kind == KINDS[0] else "-v",
                "-t",
                SESSION,
                "-c",
                str(self.project),
                f"{cd} && exec {agent}",
            )
        self.tmux("select-pane", "-t", f"{SESSION}:0.0")

    def wait_for_agents(self, count: int, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        names: list[str] = []
        while time.monotonic() < deadline:
            raw = self.cs("agents", "--json", show=False) or "[]"
            names = sorted(a["name"] for a in json.loads(raw) if a.get("pane"))
            if len(names) >= count:
                return names
            time.sleep(0.2)
        raise SystemExit(f"demo: only {names} joined within {timeout:.0f}s")

    def scenario(self, agents: list[str]) -> None:
        """What a lead does in a real swarm, through the CLI only."""
        claude = next(a for a in agents if a.startswith("claude"))
        self.cs("join", "lead", "--role", "coordinates the swarm")
        socket = self.tmux("display-message", "-p", "#{socket_path}").strip()
        self.cs("discover", "--socket", socket)
        self.cs("lock", "src/auth/**", "--reason", "refactoring auth", "--as", "lead")
        self.cs("who", "src/auth/login.py")
        self.cs(
            "task",
            "add",
            "Write the API docs",
            "--artifact",
            "docs/api.md",
            "--priority",
            "5",
            "--as",
            "lead",
        )
        self.cs(
            "task",
            "add",
            "Fix the login test",
            "--artifact",
            "tests/test_login.py",
            "--priority",
            "9",
            "--as",
            "lead",
        )
        sent = json.loads(
            self.cs(
                "send",
                claude,
                "can you review src/auth after lunch?",
                "--type",
                "question",
                "--as",
                "lead",
                "--json",
                show=False,
            )
        )
        print(
            f"$ claudeswarm send {claude} 'can you review src/auth after lunch?' "
            f"--type question\nsent {sent['id']}"
        )
        self.cs(
            "broadcast", "standup in 5 minutes; I am in src/auth/, stay out please", "--as", "lead"
        )
        claimed = json.loads(self.cs("task", "claim", "--as", "lead", "--json", show=False))
        task_id = claimed["id"] if isinstance(claimed, dict) else claimed[0]["id"]
        print(f"$ claudeswarm task claim\nclaimed {task_id}")
        self.cs("task", "done", task_id, "--as", "lead")  # refused: no artifact yet
        (self.project / "tests").mkdir(exist_ok=True)
        (self.project / "tests" / "test_login.py").write_text("def test_login(): ...\n")
        self.cs("task", "done", task_id, "--as", "lead")
        time.sleep(2.0)  # let the nudged agents read their inboxes
        self.cs("status", sent["id"])
        self.cs("task", "list")
        self.cs("locks")
        self.cs("agents")

    def report(self) -> None:
        print("\n===== what the agents' panes received (one nudge line each, never a body)")
        for pane in self.tmux("list-panes", "-t", SESSION, "-F", "#{pane_id}").split()[1:]:
            print(f"--- pane {pane}")
            print(self.tmux("capture-pane", "-p", "-t", pane).rstrip()[-600:])
        print("\n===== claudeswarm monitor --once")
        self.cs("monitor", "--once", "-n", "8", show=False)
        print(self.cs("monitor", "--once", "-n", "8", show=False).rstrip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-attach", action="store_true", help="never attach, even in a terminal")
    ap.add_argument("--keep", action="store_true", help="leave the session running")
    args = ap.parse_args()
    demo = Demo(Path(tempfile.mkdtemp(prefix="claudeswarm-demo.")))
    print(f"demo project: {demo.project}")
    demo.start()
    demo.scenario(demo.wait_for_agents(len(KINDS)))
    if sys.stdin.isatty() and sys.stdout.isatty() and not args.no_attach:
        print(f"\nattaching (detach: Ctrl-b d; stop: tmux -L {SOCKET} kill-server)")
        time.sleep(1)
        os.execvp("tmux", ["tmux", "-L", SOCKET, "attach", "-t", SESSION])
    demo.report()
    if not args.keep:
        demo.tmux("kill-server")
        shutil.rmtree(demo.project, ignore_errors=True)


if __name__ == "__main__":
    main()
