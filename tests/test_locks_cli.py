"""The lock commands as agents run them: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_env, register, run_cli

from claudeswarm.errors import EXIT_ERROR, EXIT_REFUSED, EXIT_UNAVAILABLE
from claudeswarm.storage.paths import resolve


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


def test_refused_lock_names_holder_pane_pattern_and_reason(project: Path) -> None:
    pane = cli_env(project, TMUX_PANE="%3")
    register(resolve(str(project / ".claudeswarm")), "backend", pane="%3")
    got = run_cli(project, "lock", "src/**/*.py", "--reason", "refactor auth", env=pane)
    assert got.returncode == 0, got.stderr
    out = run_cli(project, "lock", "--as", "frontend", "src/auth/login.py")
    assert out.returncode == EXIT_REFUSED
    line = one_line(out.stderr)
    assert line.startswith(
        "claudeswarm: lock on 'src/**/*.py' held by backend (pane %3) for 0s: refactor auth"
    )
    listed = json.loads(run_cli(project, "locks", "--json").stdout)
    assert listed[0]["lease"]["pane"] == "%3"
    assert listed[0]["state"] == "live"
    assert run_cli(project, "unlock", "--all", env=pane).returncode == 0
    assert run_cli(project, "lock", "--as", "frontend", "src/auth/login.py").returncode == 0


def test_aliases_are_one_lock_from_the_shell(project: Path) -> None:
    (project / "src").mkdir()
    (project / "src" / "a.py").write_text("x\n")
    (project / "link").symlink_to("src")
    assert run_cli(project, "lock", "--as", "alice", "src/a.py").returncode == 0
    for alias in ("./src/a.py", str(project / "src" / "a.py"), "link/a.py", "src"):
        out = run_cli(project, "lock", "--as", "bob", alias)
        assert out.returncode == EXIT_REFUSED, alias
        assert "held by alice" in one_line(out.stderr)
    who = json.loads(run_cli(project, "who", "link/a.py", "--json").stdout)
    assert who["path"] == "src/a.py"
    assert [h["lease"]["agent"] for h in who["holders"]] == ["alice"]


def test_who_and_locks_change_nothing(project: Path) -> None:
    assert run_cli(project, "lock", "--as", "alice", "docs/*.md", "--ttl", "1s").returncode == 0
    journal = project / ".claudeswarm" / "locks.jsonl"
    before = journal.read_bytes()
    text = run_cli(project, "locks")
    assert "docs/*.md" in text.stdout
    assert "alice" in text.stdout
    who = run_cli(project, "who", "docs/readme.md")
    assert who.returncode == 0
    assert "alice" in who.stdout
    assert run_cli(project, "who", "src/x.py").stdout.strip() == "src/x.py: free"
    assert journal.read_bytes() == before
    assert not (project / ".claudeswarm" / "messages.jsonl").exists()


def test_unlock_refresh_and_errors(project: Path) -> None:
    assert run_cli(project, "lock", "--as", "alice", "a.py", "b.py").returncode == 0
    refused = run_cli(project, "unlock", "--as", "bob", "a.py")
    assert refused.returncode == EXIT_REFUSED
    assert "bob holds no lock on 'a.py' (held by alice)" in one_line(refused.stderr)
    fresh = run_cli(project, "refresh", "--as", "alice", "--ttl", "20m", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)[0]["ttl"] == 1200
    gone = run_cli(project, "unlock", "--as", "alice", "a.py", "--json")
    assert json.loads(gone.stdout)[0]["patterns"] == ["a.py", "b.py"]
    assert run_cli(project, "who", "a.py").stdout.strip() == "a.py: free"
    waited = run_cli(project, "lock", "--as", "bob", "b.py", "--wait", "300ms")
    assert waited.returncode == EXIT_UNAVAILABLE
    assert "timed out" in one_line(waited.stderr)
    assert run_cli(project, "refresh", "--as", "bob").returncode == EXIT_REFUSED


def test_planted_symlink_is_one_line_error(project: Path, tmp_path: Path) -> None:
    state = project / ".claudeswarm"
    assert run_cli(project, "init").returncode == 0
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    (state / "locks.jsonl").symlink_to(target)
    for args in (("lock", "--as", "alice", "x.py"), ("locks",), ("who", "x.py")):
        out = run_cli(project, *args)
        assert out.returncode == EXIT_ERROR, args
        assert "symlink" in one_line(out.stderr)
    assert target.read_text() == "keep me\n"


def test_wait_is_granted_when_the_holder_unlocks(project: Path) -> None:
    assert run_cli(project, "lock", "--as", "alice", "src/**").returncode == 0
    waiter = subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", "lock", "--as", "bob", "src/a.py", "--wait", "60s"],
        cwd=project,
        env=cli_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # give it time to be refused once: it must still be waiting
        assert waiter.poll() is None
        assert run_cli(project, "unlock", "--as", "alice", "--all").returncode == 0
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert "locked src/a.py" in out


def test_corrupt_table_is_refused_until_repaired(project: Path) -> None:
    assert run_cli(project, "lock", "--as", "alice", "a.py").returncode == 0
    journal = project / ".claudeswarm" / "locks.jsonl"
    journal.write_bytes(b"garbage\x00\n")
    for args in (("lock", "--as", "bob", "a.py"), ("locks",), ("who", "a.py")):
        out = run_cli(project, *args)
        assert out.returncode == EXIT_ERROR, args
        assert "unlock --repair" in one_line(out.stderr)
    fixed = run_cli(project, "unlock", "--repair", "--json")
    assert fixed.returncode == 0, fixed.stderr
    moved = Path(json.loads(fixed.stdout)["quarantined"])
    assert moved.read_bytes() == b"garbage\x00\n"
    assert run_cli(project, "lock", "--as", "bob", "a.py").returncode == 0
