"""A nudge is typed only while the agent itself reads its terminal, never into an editor.

An agent opening ``$EDITOR`` hands the terminal to it: either the editor stays in the
agent's process group (``spawnSync(..., {stdio: "inherit"})``: the foreground group is
still the agent's) or it takes a group of its own (a job-control shell's way). In both
cases keys typed into the pane reach the editor, so the nudge must wait.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import register
from libtmux.test.retry import retry_until
from tmux_lab import WAIT, FakeAgent, Lab, pid_alive

from claudeswarm.agents import procs
from claudeswarm.messages.record import MessageRecord
from claudeswarm.storage.paths import resolve

pytestmark = pytest.mark.tmux
EDITOR = Path(__file__).resolve().parent / "fake_editor.py"


@pytest.fixture
def session_params() -> dict[str, Any]:
    return {"x": 250, "y": 80}


class Editor:
    """The fake editor's records (``tests/fake_editor.py``)."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def ready(self) -> dict[str, Any] | None:
        path = self.base.with_suffix(".jsonl")
        lines = path.read_text().splitlines() if path.exists() else []
        return json.loads(lines[0]) if lines else None

    def raw(self) -> bytes:
        path = self.base.with_suffix(".bytes")
        return path.read_bytes() if path.exists() else b""


def _agent_with_editor(lab: Lab, own_group: bool) -> tuple[FakeAgent, Editor]:
    editor = Editor(lab.records / f"editor-{own_group}")
    cmd = f"{sys.executable} {EDITOR} {editor.base}" + (" --own-group" if own_group else "")
    ann = lab.fake("claude", join="ann", flags=("--editor", cmd))
    return ann, editor


def _open(lab: Lab, ann: FakeAgent, editor: Editor, own_group: bool) -> int:
    """Type ``/edit`` into the agent; wait until the editor holds the terminal."""
    lab.tm.send_literal(ann.pane, "/edit")
    lab.tm.send_enter(ann.pane)
    retry_until(lambda: editor.ready() is not None, WAIT)
    info = editor.ready()
    assert info is not None
    if own_group:
        retry_until(lambda: _foreground(ann.pid) == info["pgrp"], WAIT)
    return int(info["pid"])


def _foreground(pid: int) -> int:
    proc = procs.read_proc(pid)
    return proc.tpgid if proc else -1


def _close(ann: FakeAgent, pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    retry_until(lambda: not pid_alive(pid), WAIT)
    retry_until(lambda: bool(ann.events("editor")[1:]), WAIT)  # the agent took it back


def _send(lab: Lab, *args: str, **env: str) -> MessageRecord:
    out = lab.cli("send", "--as", "bob", "--json", *args, **env)
    assert out.returncode == 0, out.stderr
    return MessageRecord.from_json(json.loads(out.stdout))


@pytest.mark.parametrize("own_group", [False, True], ids=["same-group", "own-group"])
def test_a_nudge_waits_while_an_editor_holds_the_terminal(
    server: Any, session: Any, project: Path, own_group: bool
) -> None:
    lab = Lab(server, session, project)
    register(resolve(str(project / ".claudeswarm")), "bob")  # the sender: no pane
    ann, editor = _agent_with_editor(lab, own_group)
    before = ann.raw()
    pid = _open(lab, ann, editor, own_group)

    rec = _send(lab, "ann", "while you edit", CLAUDESWARM_NUDGE_BUSY_WAIT="0")
    (entry,) = lab.wait_nudges(1, rec.id)
    assert entry["outcome"] == "pending", entry
    assert f"pid {pid}" in entry["reason"], entry
    assert editor.raw() == b""  # not one byte of the nudge reached the editor
    assert ann.raw() == before + b"/edit\r"

    _close(ann, pid)
    assert lab.cli("state", "idle", "--as", "ann").returncode == 0  # what its hook reports
    retry_until(lambda: rec.id in ann.read_ids(), WAIT)
    assert editor.raw() == b""
    assert [e["outcome"] for e in lab.nudges() if e["id"] == rec.id] == ["pending", "nudged"]


def test_a_nudge_waiting_for_the_terminal_is_typed_once_the_editor_exits(
    server: Any, session: Any, project: Path
) -> None:
    lab = Lab(server, session, project)
    register(resolve(str(project / ".claudeswarm")), "bob")
    ann, editor = _agent_with_editor(lab, own_group=False)
    cid = lab.fake("codex", join="cid")
    pid = _open(lab, ann, editor, own_group=False)
    # one nudger, one look at both panes: once cid has its nudge, ann's pane was judged
    rec = _send(lab, "ann", "cid", "after your edit", "--urgent")  # urgent: no busy wait
    retry_until(lambda: rec.id in cid.read_ids(), WAIT)
    assert editor.raw() == b""
    _close(ann, pid)
    retry_until(lambda: rec.id in ann.read_ids(), WAIT)  # typed by the waiting nudger
    assert editor.raw() == b""
    assert [e["outcome"] for e in lab.nudges() if e["id"] == rec.id] == ["nudged", "nudged"]
