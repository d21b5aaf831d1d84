"""A small lab for tmux tests: real panes on libtmux's private test server, fake agents.

Fake agents are ``scripts/fake_agent.py`` run through a symlink named like the agent
(``python bin/claude ...``): the shape an npm-installed CLI has (``node /usr/bin/claude``),
so discovery recognises them by its ordinary rules, nothing test-specific.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import REPO, cli_env, run_cli
from libtmux.test.retry import retry_until

from claudeswarm.agents.registry import process_start_time
from claudeswarm.tmux.client import Tmux, for_server

FAKE = REPO / "scripts" / "fake_agent.py"
WAIT = 45.0  # generous: two busy cores, other suites running


@dataclass
class FakeAgent:
    """A fake agent running in ``pane``; its records live at ``base``.*."""

    pane: str
    base: Path
    name: str | None

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = (self.base.with_suffix(".jsonl")).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(ln) for ln in lines if ln.strip()]
        return [e for e in out if kind is None or e["kind"] == kind]

    def raw(self) -> bytes:
        try:
            return self.base.with_suffix(".bytes").read_bytes()
        except FileNotFoundError:
            return b""

    def read_ids(self) -> list[str]:
        return [i for e in self.events("read") for i in e["ids"]]

    @property
    def pid(self) -> int:
        return int(self.events("ready")[0]["pid"])


class Lab:
    """Panes, fake agents and CLI calls against one test tmux server and one project."""

    def __init__(self, server: Any, session: Any, project: Path, **env: str) -> None:
        self.tm: Tmux = for_server(server)
        self.session = session.name
        self.project = project
        self.bin = project.parent / "bin"
        self.bin.mkdir(exist_ok=True)
        self.records = project.parent / "records"
        self.records.mkdir(exist_ok=True)
        self.extra = env
        self.count = 0

    def env(self, **more: str) -> dict[str, str]:
        """Environment of a process "inside" this tmux server."""
        env = cli_env(self.project, **self.extra, **more)
        env["TMUX"] = f"{self.tm.socket},0,0"
        return env

    def cli(self, *args: str, pane: str | None = None, **env: str) -> Any:
        extra = {"TMUX_PANE": pane} if pane else {}
        return run_cli(self.project, *args, env=self.env(**extra, **env))

    def pane(self, command: str, *, split: str | None = None) -> str:
        """A new pane running ``command`` (a new window, or split from pane ``split``)."""
        flags = []
        for key, value in cli_env(self.project, **self.extra).items():
            if key.startswith("CLAUDESWARM_") or key in ("PYTHONPATH", "PATH", "HOME"):
                flags += ["-e", f"{key}={value}"]
        where = ["split-window", "-t", split] if split else ["new-window", "-t", self.session]
        out = self.tm.run(
            *where, "-d", "-P", "-F", "#{pane_id}", "-c", str(self.project), *flags, command
        )
        return out.strip()

    def agent_cmd(
        self, kind: str, *, join: str | None = None, flags: tuple[str, ...] = ()
    ) -> tuple[str, Path]:
        link = self.bin / kind
        if not link.exists():
            link.symlink_to(FAKE)
        self.count += 1
        base = self.records / f"{kind}-{self.count}"
        args = [sys.executable, str(link), "--record", str(base)]
        if join:
            args += ["--join", join]
        args += flags
        return shlex.join(args), base

    def fake(
        self,
        kind: str = "claude",
        *,
        join: str | None = None,
        flags: tuple[str, ...] = (),
        split: str | None = None,
        under_bash: bool = False,
    ) -> FakeAgent:
        """Start a fake agent (directly, or typed into a bash pane) and wait until ready."""
        cmd, base = self.agent_cmd(kind, join=join, flags=flags)
        if under_bash:
            pane = self.bash(split=split)
            self.tm.send_literal(pane, cmd)
            self.tm.send_enter(pane)
        else:
            pane = self.pane(cmd, split=split)
        agent = FakeAgent(pane, base, None)
        retry_until(lambda: bool(agent.events("ready")), WAIT)
        agent.name = agent.events("ready")[0]["name"]
        return agent

    def bash(self, split: str | None = None) -> str:
        pane = self.pane("bash --norc --noprofile -i", split=split)
        retry_until(lambda: bool(self.tm.capture(pane).strip()), WAIT)
        return pane

    def typed(self, pane: str, *args: str) -> tuple[int, str]:
        """Type ``claudeswarm ARGS`` into the bash ``pane`` (a process really in that
        pane, unlike :meth:`cli`); its exit code and stderr."""
        self.count += 1
        out = self.records / f"typed-{self.count}"
        cmd = shlex.join([sys.executable, "-m", "claudeswarm", *args])
        self.tm.send_literal(pane, f"{cmd} 2>{out}.err; echo $? >{out}.tmp; mv {out}.tmp {out}")
        self.tm.send_enter(pane)
        retry_until(out.exists, WAIT)
        return int(out.read_text()), out.with_suffix(".err").read_text()

    def screen(self, pane: str) -> str:
        return self.tm.capture(pane, 50)

    def statuses(self, mid: str) -> dict[str, dict[str, Any]]:
        out = self.cli("status", mid, "--json")
        assert out.returncode == 0, out.stderr
        return {r["agent"]: r for r in json.loads(out.stdout)["recipients"]}

    def nudges(self) -> list[dict[str, Any]]:
        path = self.project / ".claudeswarm" / "nudges.jsonl"
        if not path.exists():
            return []
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]

    def wait_nudges(self, count: int, mid: str | None = None) -> list[dict[str, Any]]:
        def enough() -> bool:
            return len([n for n in self.nudges() if mid in (None, n["id"])]) >= count

        retry_until(enough, WAIT)
        return [n for n in self.nudges() if mid in (None, n["id"])]


def pid_alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by tmux, counts as dead)."""
    return process_start_time(pid) is not None
