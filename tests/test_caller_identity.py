"""Identity comes from process ancestry, not from the environment.

Agents are stand-in processes (``tests/stand_in.py``) registered like ``join`` would; the
CLI runs as their child, the way an agent's tool calls do. Editing the environment
(dropping ``TMUX_PANE``, setting ``CLAUDESWARM_AGENT``, passing ``--as``) must not let
one agent act as another.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_env, register, run_cli
from stand_in import StandIn

from claudeswarm.errors import EXIT_REFUSED
from claudeswarm.storage.paths import StatePaths

ALICE, BOB = "%901", "%902"


class Team:
    """Two registered agents, each a live process the CLI can run under."""

    def __init__(self, project: Path, paths: StatePaths) -> None:
        self.project, self.paths = project, paths
        self.alice, self.bob = StandIn(), StandIn()
        register(paths, "alice", pane=ALICE, pid=self.alice.pid)
        register(paths, "bob", pane=BOB, pid=self.bob.pid)

    def under(
        self, agent: StandIn, *args: str, stdin: str = "", **env: str
    ) -> tuple[int, str, str]:
        """Run the CLI as a child of ``agent``'s process (TMUX_PANE unset unless given)."""
        full = cli_env(self.project, CLAUDESWARM_NUDGE="never", **env)
        out = agent.run([sys.executable, "-m", "claudeswarm", *args], full, self.project, stdin)
        assert "Traceback" not in out.stderr, out.stderr
        return out.returncode, out.stdout, out.stderr

    def ok(self, agent: StandIn, *args: str, **env: str) -> str:
        code, out, err = self.under(agent, *args, **env)
        assert code == 0, (args, err)
        return out

    def close(self) -> None:
        self.alice.close()
        self.bob.close()


@pytest.fixture
def team(project: Path, paths: StatePaths) -> Iterator[Team]:
    t = Team(project, paths)
    yield t
    t.close()


def _bob_has_things(team: Team) -> str:
    """Bob (in his own pane) holds a lease and a claimed task; mail waits for him."""
    team.ok(team.bob, "lock", "src/b.py", "--reason", "bob's work", TMUX_PANE=BOB)
    team.ok(team.bob, "task", "add", "bob's task", TMUX_PANE=BOB)
    task = json.loads(team.ok(team.bob, "task", "claim", "--json", TMUX_PANE=BOB))["id"]
    out = run_cli(team.project, "send", "--as", "carol", "bob", "for bob only")
    assert out.returncode == 0, out.stderr
    return str(task)


def _bodies(messages: list[dict[str, str]]) -> list[str]:
    return [m["body"] for m in messages if m["type"] != "task"]


def _nothing_changed(team: Team, task: str) -> None:
    leases = json.loads(run_cli(team.project, "locks", "--json").stdout)
    assert [(lease["lease"]["agent"], lease["state"]) for lease in leases] == [("bob", "live")]
    shown = json.loads(run_cli(team.project, "task", "show", task, "--json").stdout)
    assert (shown["status"], shown["owner"]) == ("claimed", "bob")
    names = {a["name"] for a in json.loads(run_cli(team.project, "agents", "--json").stdout)}
    assert names == {"alice", "bob"}
    log = [json.loads(ln) for ln in run_cli(team.project, "log", "--json").stdout.splitlines()]
    assert [r["from"] for r in log if r["type"] != "task"] == ["carol"]
    mail = json.loads(team.ok(team.bob, "inbox", "--json", TMUX_PANE=BOB))["messages"]
    assert _bodies(mail) == ["for bob only"]  # still unread


def _attacks(task: str) -> list[tuple[str, ...]]:
    return [
        ("unlock", "src/b.py"),
        ("unlock", "--all"),
        ("refresh",),
        ("lock", "src/b.py"),
        ("task", "done", task),
        ("task", "release", task),
        ("task", "fail", task, "--reason", "x"),
        ("task", "heartbeat", task),
        ("inbox",),
        ("leave",),
        ("state", "idle"),
        ("send", "alice", "sent as bob"),
        ("broadcast", "sent as bob"),
    ]


def test_dropping_tmux_pane_does_not_let_an_agent_act_as_another(team: Team) -> None:
    task = _bob_has_things(team)
    for args in _attacks(task):
        code, out, err = team.under(team.alice, *args, "--as", "bob")
        assert code == EXIT_REFUSED, (args, code, out, err)
        assert err.count("\n") == 1 and err.startswith("claudeswarm: "), err
        assert "alice" in err and "'bob'" in err, err
    _nothing_changed(team, task)


def test_claudeswarm_agent_naming_another_agent_is_refused_too(team: Team) -> None:
    task = _bob_has_things(team)
    for args in _attacks(task):
        code, _, err = team.under(team.alice, *args, CLAUDESWARM_AGENT="bob")
        assert code == EXIT_REFUSED, (args, err)
        assert err.count("\n") == 1, err
    # another pane's id in TMUX_PANE does not make alice's process bob either
    code, _, _ = team.under(team.alice, "unlock", "--all", TMUX_PANE=BOB)
    who = json.loads(team.ok(team.alice, "whoami", "--json", TMUX_PANE=BOB))["name"]
    assert (code, who) == (0, "alice")
    _nothing_changed(team, task)


def test_the_process_is_its_agent_without_tmux_pane(team: Team) -> None:
    assert json.loads(team.ok(team.alice, "whoami", "--json"))["name"] == "alice"
    sent = json.loads(team.ok(team.alice, "send", "bob", "from alice", "--json"))
    again = json.loads(team.ok(team.alice, "send", "bob", "again", "--as", "alice", "--json"))
    assert (sent["from"], again["from"]) == ("alice", "alice")
    team.ok(team.alice, "lock", "docs/**")
    leases = json.loads(run_cli(team.project, "locks", "--json").stdout)
    assert [(x["lease"]["agent"], x["lease"]["pid"]) for x in leases] == [("alice", team.alice.pid)]


def test_join_under_an_agent_neither_unbinds_it_nor_takes_another_name(team: Team) -> None:
    before = json.loads(run_cli(team.project, "agents", "--json").stdout)
    for args in (("join",), ("join", "alice"), ("join", "carol"), ("join", "bob")):
        code, _, err = team.under(team.alice, *args)
        assert code == EXIT_REFUSED, (args, err)
        assert err.count("\n") == 1 and "alice" in err, err
    assert json.loads(run_cli(team.project, "agents", "--json").stdout) == before


def test_a_hook_acts_for_the_agent_whose_process_runs_it(team: Team) -> None:
    assert run_cli(team.project, "send", "--as", "carol", "bob", "for bob").returncode == 0
    assert run_cli(team.project, "send", "--as", "carol", "alice", "for alice").returncode == 0
    for env in ({}, {"CLAUDESWARM_AGENT": "bob"}):
        out = team.ok(team.alice, "hook", "prompt", "--json", **env)
        assert json.loads(out)["agent"] == "alice", env
    mail = json.loads(team.ok(team.bob, "inbox", "--json"))["messages"]
    assert _bodies(mail) == ["for bob"]  # bob's mail was not shown to alice


def test_a_caller_outside_every_agent_may_still_name_itself(team: Team) -> None:
    """Scripts and people (not under any agent's process) keep ``--as`` (README)."""
    _bob_has_things(team)
    peek = run_cli(team.project, "inbox", "--as", "bob", "--peek", "--json")
    assert _bodies(json.loads(peek.stdout)["messages"]) == ["for bob only"]
    sent = run_cli(team.project, "send", "--as", "ops", "alice", "from a script", "--json")
    assert sent.returncode == 0, sent.stderr
    # in a registered pane the pane's agent is still the caller (as before)
    env = cli_env(team.project, TMUX_PANE=ALICE, CLAUDESWARM_NUDGE="never")
    spoof = run_cli(team.project, "send", "--as", "bob", "alice", "x", env=env)
    assert spoof.returncode == EXIT_REFUSED
