"""Bad arguments end in one line and a documented exit code, and nothing is half done.

Every case runs the CLI as a real process. Invalid UTF-8 reaches ``argv`` as bytes (a
shell's ``$'\\xff'``); Python hands it to us as lone surrogates (``os.fsdecode``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, register

from claudeswarm.errors import EXIT_OK, EXIT_USAGE
from claudeswarm.storage.paths import StatePaths
from claudeswarm.swarm import Swarm

BAD = os.fsdecode(b"\xff")  # the surrogate-escaped form of one invalid byte


def run(
    project: Path, *args: str, agent: str = "fuzzer", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run as ``agent``; stdout/stderr decoded with replacement (never raises)."""
    out = subprocess.run(
        [sys.executable, "-m", "claudeswarm", *(os.fsencode(a) for a in args)],
        cwd=project,
        env=cli_env(project, CLAUDESWARM_AGENT=agent, **(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        out.args,
        out.returncode,
        out.stdout.decode("utf-8", "replace"),
        out.stderr.decode("utf-8", "replace"),
    )


def one_line(out: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert exit ``code`` with exactly one stderr line and no traceback; return it."""
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == code, (out.returncode, out.stderr)
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("claudeswarm: "), out.stderr
    return out.stderr


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


INVALID_UTF8 = [
    ("lock", f"{BAD}.py"),
    ("lock", "a.py", "--reason", BAD),
    ("lock", "a.py", f"--reason={BAD}"),
    ("join", "x", "--role", BAD),
    ("join", "--kind", BAD),
    ("join", f"x{BAD}"),
    ("task", "add", BAD),
    ("task", "add", "t", "--body", BAD),
    ("task", "add", "t", "--artifact", BAD),
    ("task", "fail", "01JD0000000000000000000000", "--reason", BAD),
    ("send", "bob", f"hi {BAD}"),
    ("broadcast", BAD),
    ("log", "--grep", BAD),
    ("who", BAD),
    ("--state-dir", BAD, "init"),
    ("hook", "install", "--settings", BAD),
]


@pytest.mark.parametrize("argv", INVALID_UTF8, ids=lambda a: " ".join(a).replace(BAD, "\\xff"))
def test_invalid_utf8_is_refused_before_anything_is_created(
    paths: StatePaths, argv: tuple[str, ...]
) -> None:
    register(paths, "bob")
    before = files_under(paths.root)
    err = one_line(run(paths.root, *argv), EXIT_USAGE)
    assert "UTF-8" in err and "\\xff" in err  # names the bad bytes, escaped
    assert files_under(paths.root) == before  # not even a 0-byte file in tasks/tmp


OUT_OF_RANGE = [
    ("log", "--since", "99999999999d"),
    ("log", "--since", "9999-12-31T23:59:59-14:00"),
    ("log", "--since", "0001-01-01"),
    ("log", "--since", "nan"),
    ("log", "-n", "99999999999999999999999"),
    ("monitor", "--once", "-n", "99999999999999999999999"),
    ("monitor", "--once", "--ring", "99999999999999999999999"),
    ("inbox", "--limit", "99999999999999999999999"),
    ("lock", "a.py", "--ttl", "99999999999d"),
    ("lock", "a.py", "--wait", "99999999999999999999999999999999999d"),
    ("refresh", "--ttl", "1e400"),
    ("discover", "--interval", "nan"),
    ("discover", "--interval", "inf"),
    ("discover", "--interval", "-1"),
    ("task", "add", "t", "-p", "99999999999999999999999"),
]


@pytest.mark.parametrize("argv", OUT_OF_RANGE, ids=" ".join)
def test_out_of_range_durations_times_and_counts(paths: StatePaths, argv: tuple[str, ...]) -> None:
    before = files_under(paths.root)
    one_line(run(paths.root, *argv), EXIT_USAGE)
    assert files_under(paths.root) == before


USAGE = [
    ("log", "-n", "-1"),
    ("discover", "--interval", "abc"),
    ("lock",),
    ("send", "--nope", "bob", "hi"),
    ("frobnicate",),
    ("task", "frobnicate"),
    ("task", "add"),
    ("monitor", "--once", "-n", "x"),
]


@pytest.mark.parametrize("argv", USAGE, ids=" ".join)
def test_usage_errors_are_one_line(paths: StatePaths, argv: tuple[str, ...]) -> None:
    err = one_line(run(paths.root, *argv), EXIT_USAGE)
    assert "--help" in err  # says where to look


@pytest.mark.parametrize("kind", ["../../x", "a\nb", "a\x1b[31mb", "Claude", "x" * 40, "all"])
def test_kinds_obey_a_strict_rule(paths: StatePaths, kind: str) -> None:
    from claudeswarm.agents import registry

    err = one_line(run(paths.root, "join", "--kind", kind), EXIT_USAGE)
    assert "\x1b" not in err and "kind" in err
    assert registry.load(paths) == {}


def test_kinds_from_agent_patterns_obey_the_same_rule() -> None:
    from claudeswarm.agents.discovery import parse_patterns
    from claudeswarm.errors import UsageError

    assert parse_patterns(["cursor=cursor-agent"])[0].kind == "cursor"
    for entry in ("../x=agent", "a\x1bb=agent", "Cursor=agent"):
        with pytest.raises(UsageError, match="kind"):
            parse_patterns([entry])


def test_success_output_echoing_input_is_inert(paths: StatePaths) -> None:
    out = run(paths.root, "task", "add", "t\x1b]0;pwned\x07\x9b", "--json")
    assert out.returncode == EXIT_OK, out.stderr
    task_id = json.loads(out.stdout)["id"]
    human = run(paths.root, "task", "add", "u\x1b[2J")
    assert human.returncode == EXIT_OK and "\x1b" not in human.stdout, human.stdout
    assert "u\\x1b[2J" in human.stdout
    run(paths.root, "task", "claim", task_id)
    failed = run(paths.root, "task", "fail", task_id, "--reason", "r\x1b[2J\x9b")
    assert failed.returncode == EXIT_OK, failed.stderr
    assert "\x1b" not in failed.stdout and "\x9b" not in failed.stdout
    locked = run(paths.root, "lock", "a\x1b[2J.py")
    assert "\x1b" not in locked.stdout + locked.stderr


# -- a command reports failure only when its effect was not committed ----------------------


def test_task_add_succeeds_once_committed_even_if_the_mark_cannot_be_bumped(
    paths: StatePaths,
) -> None:
    """A retry after a false failure would duplicate the task."""
    (paths.state / "tasks").mkdir()
    (paths.state / "tasks" / "pending.mark").mkdir()  # bumping it fails
    out = run(paths.root, "task", "add", "once", "--json")
    assert out.returncode == EXIT_OK, out.stderr
    assert "warning" in out.stderr and out.stderr.count("\n") == 1
    listed = json.loads(run(paths.root, "task", "list", "--json").stdout)
    assert [t["title"] for t in listed] == ["once"]
    claimed = run(paths.root, "task", "claim", "--json")
    assert claimed.returncode == EXIT_OK, claimed.stderr
    task_id = json.loads(claimed.stdout)["id"]
    released = run(paths.root, "task", "release", task_id)
    assert released.returncode == EXIT_OK, released.stderr  # moved back: committed


def test_send_succeeds_once_logged_even_if_the_nudge_cannot_be_queued(paths: StatePaths) -> None:
    """The log is the truth; a nudge is best effort after it."""
    register(paths, "bob", pane="%1")
    (paths.state / "panes").write_text("not a directory")
    out = run(paths.root, "send", "bob", "hello", "--json")
    assert out.returncode == EXIT_OK, out.stderr
    assert "warning" in out.stderr and out.stderr.count("\n") == 1
    log = run(paths.root, "log", "--json")
    assert [json.loads(line)["body"] for line in log.stdout.splitlines()] == ["hello"]
    out = run(paths.root, "broadcast", "all of you")
    assert out.returncode == EXIT_OK, out.stderr


def test_inbox_shows_what_it_marked_read_even_if_receipts_fail(paths: StatePaths) -> None:
    """The cursor moved past the messages: failing now would lose them for good."""
    register(paths, "fuzzer")
    register(paths, "bob")
    assert run(paths.root, "send", "fuzzer", "for you", agent="bob").returncode == EXIT_OK
    (paths.state / "receipts.jsonl").mkdir()
    out = run(paths.root, "inbox")
    assert out.returncode == EXIT_OK, out.stderr
    assert "for you" in out.stdout
    assert "warning" in out.stderr and out.stderr.count("\n") == 1


def test_state_idle_succeeds_once_recorded(paths: StatePaths) -> None:
    from claudeswarm.agents import registry

    register(paths, "fuzzer")
    (paths.state / "nudges.jsonl").mkdir()  # waiting nudges cannot be read
    out = run(paths.root, "state", "idle")
    assert out.returncode == EXIT_OK, out.stderr
    assert "warning" in out.stderr and out.stderr.count("\n") == 1
    assert registry.load(paths)["fuzzer"].state == "idle"


def test_a_task_that_cannot_be_encoded_leaves_no_temp_file(swarm: Swarm) -> None:
    """The library's own guarantee, below the CLI check: encode first, then create."""
    from claudeswarm.errors import UsageError
    from claudeswarm.tasks.board import TaskBoard

    board = TaskBoard(swarm)
    for text in ({"title": f"t{BAD}"}, {"title": "t", "body": BAD}):
        with pytest.raises(UsageError, match="UTF-8"):
            board.add(created_by="alice", **text)  # type: ignore[arg-type]
    assert board.list() == []
    assert list((swarm.paths.state / "tasks" / "tmp").iterdir()) == []


def test_the_cli_priority_range_is_the_boards() -> None:
    from claudeswarm.cli.tasks import PRIORITY_LIMIT
    from claudeswarm.storage.files.tasks import PRIORITY_MAX, PRIORITY_MIN

    assert (-PRIORITY_LIMIT, PRIORITY_LIMIT) == (PRIORITY_MIN, PRIORITY_MAX)


def test_hook_install_fails_before_it_writes_the_settings(paths: StatePaths) -> None:
    """The state directory is made first: failing there leaves the settings untouched."""
    import shutil

    shutil.rmtree(paths.quarantine)
    paths.quarantine.write_text("not a directory")
    out = run(paths.root, "hook", "install")
    one_line(out, 1)
    assert not (paths.root / ".claude").exists()


def test_a_send_fails_only_if_nothing_was_logged_when_rotation_fails(paths: StatePaths) -> None:
    """Rotation is housekeeping: done before the append, never after it. Here every
    rotation fails at its retention step (an archive that cannot be unlinked)."""
    register(paths, "bob")
    (paths.archive / "messages.000001.jsonl").mkdir()  # retention cannot unlink it
    env = {"CLAUDESWARM_ROTATE_BYTES": "1", "CLAUDESWARM_ARCHIVE_KEEP": "1"}
    codes = {}
    for body in ("one", "two", "three"):
        out = run(paths.root, "send", "bob", body, env=env)
        assert "Traceback" not in out.stderr and out.stderr.count("\n") <= 1, out.stderr
        codes[body] = out.returncode
    files = [paths.log, *(p for p in paths.archive.iterdir() if p.is_file())]
    lines = [line for f in files for line in f.read_text().splitlines() if line]
    logged = {json.loads(line)["body"] for line in lines}
    assert codes["one"] == EXIT_OK
    assert {b for b, code in codes.items() if code == EXIT_OK} == logged, (codes, logged)
