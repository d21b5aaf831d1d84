"""The tmux area's commands at their edges: bad input, no tmux needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, register, run_cli

from claudeswarm.errors import EXIT_USAGE
from claudeswarm.storage.paths import StatePaths


def test_bad_state_unknown_agent_and_unknown_message_are_usage_errors(
    project: Path, paths: StatePaths
) -> None:
    register(paths, "ann")  # a process of its own: this test's calls are not ann's
    for args in (
        ["state", "sleepy", "--as", "ann"],
        ["state", "idle", "--as", "nobody"],
        ["status", "01JD0000000000000000000000"],
    ):
        out = run_cli(project, *args)
        assert out.returncode == EXIT_USAGE, (args, out.stderr)
        assert out.stderr.count("\n") == 1
        assert "Traceback" not in out.stderr


def test_join_outside_tmux_defaults_to_kind_name_and_state_is_recorded(project: Path) -> None:
    first = json.loads(run_cli(project, "join", "--json").stdout)
    second = json.loads(run_cli(project, "join", "--kind", "codex", "--json").stdout)
    assert (first["name"], first["pane"]) == ("shell-1", None)
    assert second["name"] == "codex-1"
    out = run_cli(project, "state", "busy", "--as", "codex-1", "--json")
    assert json.loads(out.stdout)["state"] == "busy"
    agents = json.loads(run_cli(project, "agents", "--json").stdout)
    assert {a["name"]: a["state"] for a in agents}["codex-1"] == "busy"


def test_send_to_a_paneless_agent_starts_no_nudger(project: Path) -> None:
    for name in ("ann", "bob"):
        run_cli(project, "join", name)
    rec = json.loads(run_cli(project, "send", "--as", "bob", "ann", "hi", "--json").stdout)
    st = json.loads(run_cli(project, "status", rec["id"], "--json").stdout)
    (row,) = st["recipients"]
    assert (row["agent"], row["nudged"], row["read"]) == ("ann", None, None)
    assert not (project / ".claudeswarm" / "panes").exists()  # no queue, no nudger


def test_nudger_refuses_bad_arguments(project: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "claudeswarm.tmux.nudger", "what"],
        env=cli_env(project),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("usage:")


def test_bad_nudge_setting_refuses_before_logging(project: Path) -> None:
    for name in ("ann", "bob"):
        run_cli(project, "join", name)
    env = cli_env(project, CLAUDESWARM_NUDGE="sometimes")
    out = run_cli(project, "send", "--as", "bob", "ann", "hi", env=env)
    assert out.returncode == EXIT_USAGE
    assert "nudge" in out.stderr
    assert (
        not (project / ".claudeswarm" / "messages.jsonl").exists()
        or not (project / ".claudeswarm" / "messages.jsonl").read_text().strip()
    )


def test_a_pane_id_on_another_server_is_not_this_pane() -> None:
    from claudeswarm.agents.registry import AgentRecord, by_pane

    agents = {"ann": AgentRecord("ann", pane="%3", socket="/tmp/tmux-0/a")}
    assert by_pane(agents, "%3", socket="/tmp/tmux-0/a") == agents["ann"]
    assert by_pane(agents, "%3", socket="/tmp/tmux-0/b") is None
    assert by_pane(agents, "%4", socket="/tmp/tmux-0/a") is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CLAUDESWARM_BUSY_SCREEN_PATTERNS", "esc to (interrupt"),
        ("CLAUDESWARM_AGENT_PATTERNS", "bot=[unclosed"),
        ("CLAUDESWARM_IDLE_HEURISTIC", "vibes"),
    ],
)
def test_bad_tmux_settings_are_refused_before_logging(project: Path, key: str, value: str) -> None:
    for name in ("ann", "bob"):
        run_cli(project, "join", name)
    out = run_cli(project, "send", "--as", "bob", "ann", "hi", env=cli_env(project, **{key: value}))
    assert out.returncode == EXIT_USAGE, out.stderr
    assert out.stderr.count("\n") == 1
    log = project / ".claudeswarm" / "messages.jsonl"
    assert not log.exists() or not log.read_text().strip()
