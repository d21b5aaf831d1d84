"""Hooks in a real tmux pane: a Claude-shaped process runs its SessionStart hook."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from libtmux.test.retry import retry_until
from tmux_lab import WAIT, Lab

from claudeswarm.storage.paths import StatePaths

pytestmark = pytest.mark.tmux
AGENT = REPO / "tests" / "hook_agent.py"


def start_claude(lab: Lab, command: str) -> tuple[str, Path]:
    """A pane running a fake Claude Code that runs ``command`` as its SessionStart hook."""
    link = lab.bin / "claude"
    if not link.exists():
        link.symlink_to(AGENT)
    record = lab.records / f"hook-{lab.count}.json"
    lab.count += 1
    pane = lab.pane(shlex.join([sys.executable, str(link), str(record), command]))
    retry_until(record.exists, WAIT)
    return pane, record


def hook(lab: Lab, pane: str, event: str, payload: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claudeswarm", "hook", event],
        cwd=lab.project,
        env=lab.env(TMUX_PANE=pane),
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_session_start_joins_the_pane_it_runs_in(
    server: Any, session: Any, project: Path, paths: StatePaths
) -> None:
    lab = Lab(
        server, session, project, CLAUDESWARM_PYTHON=sys.executable, CLAUDESWARM_NUDGE="never"
    )
    shim = shlex.quote(str(REPO / "hooks" / "claudeswarm-hook"))
    pane, record = start_claude(lab, f"{shim} session-start")
    ran = json.loads(record.read_text())
    assert ran["rc"] == 0, ran["stderr"]
    assert f"you are agent claude-1 in tmux pane {pane}" in ran["stdout"]
    assert "claudeswarm task claim" in ran["stdout"]
    agents = json.loads(lab.cli("agents", "--json").stdout)
    (me,) = [a for a in agents if a["name"] == "claude-1"]
    assert (me["pane"], me["kind"], me["pid"]) == (pane, "claude", ran["pid"])

    # a second Claude in another pane sees the first as a teammate
    pane2, record2 = start_claude(lab, f"{shim} session-start")
    ran2 = json.loads(record2.read_text())
    assert f"you are agent claude-2 in tmux pane {pane2}" in ran2["stdout"], ran2["stderr"]
    assert "other agents: claude-1" in ran2["stdout"]

    # the pane identity carries over to the other hooks: claude-2's lease refuses claude-1
    lock = lab.cli("lock", "src/**", "--reason", "migrations", pane=pane2)
    assert lock.returncode == 0, lock.stderr
    edit = {"tool_name": "Write", "tool_input": {"file_path": str(project / "src" / "m.py")}}
    refused = hook(lab, pane, "pre-tool", edit)
    assert refused.returncode == 2
    assert "claude-2" in refused.stderr and pane2 in refused.stderr
    assert "migrations" in refused.stderr and refused.stderr.count("\n") == 1
    assert hook(lab, pane2, "pre-tool", edit).returncode == 0
    # and a rerun of session-start (a resumed session) keeps the name
    again = hook(lab, pane, "session-start", {"source": "resume"})
    assert "you are agent claude-1" in again.stdout, again.stderr
