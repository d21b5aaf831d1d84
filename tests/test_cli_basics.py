"""The CLI as agents use it: real processes, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import cli_env, register, run_cli

from claudeswarm.errors import EXIT_USAGE
from claudeswarm.storage.paths import StatePaths


def test_version_and_help(project: Path) -> None:
    out = run_cli(project, "--version")
    assert out.returncode == 0
    assert out.stdout.startswith("claudeswarm ")
    helped = run_cli(project, "--help")
    assert "send" in helped.stdout and "inbox" in helped.stdout


def test_init_is_idempotent_and_private(project: Path) -> None:
    first = run_cli(project, "init", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["created_config"] is True
    state = project / ".claudeswarm"
    config = (state / "config.toml").read_bytes()
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "config.toml").stat().st_mode & 0o777 == 0o600
    second = run_cli(project, "init", "--json")
    assert json.loads(second.stdout)["created_config"] is False
    assert (state / "config.toml").read_bytes() == config


def test_send_then_inbox_round_trip(project: Path) -> None:
    for name in ("alice", "bob"):
        assert run_cli(project, "join", name).returncode == 0
    sent = run_cli(project, "send", "--as", "alice", "bob", "hello bob", "--json")
    assert sent.returncode == 0, sent.stderr
    rec = json.loads(sent.stdout)
    got = run_cli(project, "inbox", "--as", "bob", "--json")
    assert [m["id"] for m in json.loads(got.stdout)["messages"]] == [rec["id"]]
    again = run_cli(project, "inbox", "--as", "bob", "--json")
    assert json.loads(again.stdout)["messages"] == []


def test_unknown_recipient_is_one_line_usage_error(project: Path) -> None:
    run_cli(project, "join", "alice")
    out = run_cli(project, "send", "--as", "alice", "carol", "hi")
    assert out.returncode == EXIT_USAGE
    assert out.stderr.count("\n") == 1 and "carol" in out.stderr
    assert "Traceback" not in out.stderr


def test_ctrl_c_ends_a_command_with_130_and_no_traceback(project: Path, paths: StatePaths) -> None:
    """``inbox --follow`` waits until interrupted: the boundary turns the interrupt into
    exit 130, with nothing on stderr."""
    register(paths, "bob")
    assert run_cli(project, "send", "--as", "alice", "bob", "first").returncode == 0
    follower = subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", "inbox", "--as", "bob", "--follow"],
        cwd=project,
        env=cli_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert "alice -> bob" in follower.stdout.readline()  # it is in its waiting loop now
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert (follower.returncode, err) == (130, "")
