"""``log --follow`` and ``inbox --follow`` as long-running real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_env, run_cli


def _spawn(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", *args],
        cwd=project,
        env=cli_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_json_lines(
    proc: subprocess.Popen[str], count: int, timeout: float = 60
) -> list[dict[str, object]]:
    """Read ``count`` JSON lines from the follower, failing (never hanging) after
    ``timeout`` seconds."""
    import select

    assert proc.stdout is not None
    out = []
    deadline = time.monotonic() + timeout
    for _ in range(count):
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        assert ready, f"no output from the follower within {timeout}s"
        line = proc.stdout.readline()
        assert line, f"follower ended early: {proc.stderr.read() if proc.stderr else ''}"
        out.append(json.loads(line))
    return out


def test_log_follow_prints_new_messages_across_rotation(project: Path) -> None:
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    run_cli(project, "send", "--as", "alice", "bob", "old", "--type", "question")
    proc = _spawn(project, "log", "-n", "1", "--follow", "--json", "--type", "question")
    try:
        # the backlog line proves the follower has taken its position: nothing sent
        # from here on may be missed, and the backlog is not repeated
        assert [m["body"] for m in _read_json_lines(proc, 1)] == ["old"]
        run_cli(project, "send", "--as", "alice", "bob", "q1", "--type", "question")
        run_cli(project, "send", "--as", "alice", "bob", "skip me")
        from claudeswarm.config import Settings
        from claudeswarm.storage.files.log import MessageLog
        from claudeswarm.storage.paths import resolve

        MessageLog(resolve(str(project / ".claudeswarm")), Settings()).rotate()
        run_cli(project, "send", "--as", "bob", "alice", "q2", "--type", "question")
        got = _read_json_lines(proc, 2)
        assert [m["body"] for m in got] == ["q1", "q2"]
    finally:
        proc.kill()
        proc.wait(10)


def test_inbox_follow_marks_read_as_it_shows(project: Path) -> None:
    run_cli(project, "join", "alice")
    run_cli(project, "join", "bob")
    proc = _spawn(project, "inbox", "--as", "bob", "--follow", "--json")
    try:
        run_cli(project, "send", "--as", "alice", "bob", "one")
        first = _read_json_lines(proc, 1)[0]
        assert [m["body"] for m in first["messages"]] == ["one"]  # type: ignore[index]
        run_cli(project, "send", "--as", "alice", "bob", "two")
        second = _read_json_lines(proc, 1)[0]
        assert [m["body"] for m in second["messages"]] == ["two"]  # type: ignore[index]
    finally:
        proc.kill()
        proc.wait(10)
    left = json.loads(run_cli(project, "inbox", "--as", "bob", "--json").stdout)
    assert left["messages"] == []
