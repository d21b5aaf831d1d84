"""The CLI as agents use it: real processes, real files."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

from claudeswarm.errors import EXIT_USAGE


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
