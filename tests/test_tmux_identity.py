"""Stable names on a real tmux server: bound to pane id + pid + start time."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from libtmux.test.retry import retry_until
from tmux_lab import WAIT, Lab, pid_alive

from claudeswarm.errors import EXIT_REFUSED

pytestmark = pytest.mark.tmux


@pytest.fixture
def session_params() -> dict[str, Any]:
    return {"x": 250, "y": 80}


def _agents(lab: Lab) -> dict[str, dict[str, Any]]:
    out = lab.cli("agents", "--json")
    assert out.returncode == 0, out.stderr
    return {a["name"]: a for a in json.loads(out.stdout)}


def _discover(lab: Lab) -> dict[str, dict[str, Any]]:
    out = lab.cli("discover", "--json")
    assert out.returncode == 0, out.stderr
    return {a["name"]: a for a in json.loads(out.stdout)}


def test_join_defaults_to_kind_names_and_binds_the_agent_process(
    server: Any, session: Any, project: Path
) -> None:
    lab = Lab(server, session, project)
    first = lab.fake("claude", join="-")
    second = lab.fake("claude", join="-")
    codex = lab.fake("codex", join="-", under_bash=True)
    named = lab.fake("aider", join="backend")
    assert [first.name, second.name, codex.name, named.name] == [
        "claude-1",
        "claude-2",
        "codex-1",
        "backend",
    ]
    agents = _agents(lab)
    assert agents["codex-1"]["pid"] == codex.pid  # the agent, not the bash it runs under
    assert agents["backend"]["kind"] == "aider"
    assert agents["backend"]["pane"] == named.pane
    who = lab.cli("whoami", "--json", pane=named.pane)
    assert json.loads(who.stdout)["name"] == "backend"


def test_killing_a_middle_pane_keeps_every_other_name(
    server: Any, session: Any, project: Path
) -> None:
    lab = Lab(server, session, project)
    top = lab.fake("claude")
    chain = [top]
    for kind in ("codex", "gemini", "aider"):
        chain.append(lab.fake(kind, split=chain[-1].pane))
    before = _discover(lab)
    assert len(before) == 4
    by_pane = {a["pane"]: a for a in before.values()}
    window = {a["location"].rsplit(".", 1)[0] for a in before.values()}
    assert len(window) == 1  # all four share one window

    victim = chain[1]
    lab.tm.run("kill-pane", "-t", victim.pane)
    retry_until(lambda: victim.pane not in {p.pane_id for p in lab.tm.list_panes()}, WAIT)
    after = _discover(lab)
    gone_name = by_pane[victim.pane]["name"]
    assert after[gone_name]["state"] == "gone"
    for agent in (c for c in chain if c is not victim):
        old = by_pane[agent.pane]
        assert after[old["name"]]["pane"] == agent.pane
        assert after[old["name"]]["pid"] == agent.pid
        assert after[old["name"]]["state"] != "gone"
    # the panes below the victim were renumbered; their names followed the pane ids
    moved = [by_pane[c.pane]["name"] for c in chain[2:]]
    assert all(after[n]["location"] != before[n]["location"] for n in moved)


def test_names_survive_moving_a_pane_to_another_window(
    server: Any, session: Any, project: Path
) -> None:
    lab = Lab(server, session, project)
    a = lab.fake("claude")
    b = lab.fake("codex", split=a.pane)
    before = _discover(lab)
    lab.tm.run("break-pane", "-d", "-s", b.pane)
    after = _discover(lab)
    name_b = next(n for n, r in before.items() if r["pane"] == b.pane)
    assert after[name_b]["pane"] == b.pane
    assert after[name_b]["location"] != before[name_b]["location"]
    assert {r["pane"] for r in after.values()} == {a.pane, b.pane}


def test_dead_process_is_gone_and_rejoin_after_server_restart_takes_the_name_back(
    server: Any, session: Any, project: Path
) -> None:
    lab = Lab(server, session, project)
    agent = lab.fake("claude", join="backend")
    other = lab.fake("claude")
    code, err = lab.typed(lab.bash(), "join", "backend")
    assert code == EXIT_REFUSED, err
    assert "backend" in err

    os.kill(agent.pid, signal.SIGTERM)
    retry_until(lambda: not pid_alive(agent.pid), WAIT)
    assert _discover(lab)["backend"]["state"] == "gone"

    server.kill()  # the whole tmux server goes away, and every pane process with it
    retry_until(lambda: not pid_alive(other.pid), WAIT)
    fresh = server.new_session(session_name=lab.session, x=250, y=80)
    lab.session = fresh.name
    back = lab.fake("claude", join="-")  # same place, same directory: the old name
    assert back.name == "backend"
    assert _agents(lab)["backend"]["pid"] == back.pid

    os.kill(back.pid, signal.SIGTERM)
    retry_until(lambda: not pid_alive(back.pid), WAIT)
    explicit = lab.fake("codex", join="backend")  # an explicit NAME of a dead agent
    assert explicit.name == "backend"
    assert _agents(lab)["backend"]["pid"] == explicit.pid


def test_tmux_pane_alone_does_not_bind_a_caller_to_a_pane(
    server: Any, session: Any, project: Path
) -> None:
    """A process outside a pane that sets ``TMUX_PANE`` to it cannot join there: that
    would rename the pane's agent and take its process."""
    lab = Lab(server, session, project)
    bob = lab.fake("claude", join="bob")
    before = _agents(lab)
    for args in (("join", "mallory"), ("join",)):
        out = lab.cli(*args, pane=bob.pane)
        assert out.returncode == EXIT_REFUSED, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and "does not run in that pane" in out.stderr
    assert _agents(lab) == before
