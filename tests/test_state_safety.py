"""Regression tests for issue 9, section 4: hostile state must not hang or crash commands.

Each test names the case the issue reported; the exhaustive sweep over every state file
and hostile form is ``tests/test_hostile_state.py``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from claudeswarm.errors import LockTimeout, UnavailableError
from claudeswarm.messages import service as messaging
from claudeswarm.monitor.feed import snapshot
from claudeswarm.storage.files import log as message_log
from claudeswarm.storage.files.tailer import BadLine, LogTailer, max_line_bytes, read_recent
from claudeswarm.swarm import Swarm
from tests.conftest import cli_env, register, settings

HANG = 30.0  # seconds after which a command counts as hung


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "claudeswarm", *args],
            cwd=project,
            env=cli_env(project, HOME=str(project)),
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"claudeswarm {' '.join(args)} hung")


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def outside_tree(tmp: Path) -> Path:
    """A directory beside the project with one file in it, for symlinks to lead to."""
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "keep").write_text("sentinel\n")
    return outside


def two_agents(swarm: Swarm) -> None:
    register(swarm.paths, "a")
    register(swarm.paths, "b")


# -- FIFOs --------------------------------------------------------------------------------


def test_a_fifo_log_blocks_no_sender(swarm: Swarm, project: Path) -> None:
    """A FIFO in place of messages.jsonl used to hang every send: the first one blocked
    opening it while holding messages.lock, and every later one waited for that lock."""
    two_agents(swarm)
    os.mkfifo(swarm.paths.log)
    senders = [
        subprocess.Popen(
            [sys.executable, "-m", "claudeswarm", "send", "--as", "a", "b", f"hello {n}"],
            cwd=project,
            env=cli_env(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for proc in senders:
        try:
            _, err = proc.communicate(timeout=HANG)
        except subprocess.TimeoutExpired:
            for p in senders:
                p.kill()
            pytest.fail("a send hung on a FIFO log")
        assert proc.returncode == 1
        assert "messages.jsonl: it is a FIFO" in err
        assert err.count("\n") == 1
    os.unlink(swarm.paths.log)
    assert cli(project, "send", "--as", "a", "b", "after").returncode == 0


@pytest.mark.parametrize(
    ("rel", "args", "code"),
    [
        ("agents.json", ("agents",), 1),
        ("config.toml", ("agents",), 1),
        ("cursors/b.json", ("inbox", "--as", "b"), 1),
        ("ratelimit.json", ("send", "--as", "a", "b", "hi"), 1),
        ("archive/messages.000001.jsonl", ("log", "-n", "5"), 1),
        # best-effort steps after the commit: the command succeeds and warns
        ("receipts.jsonl", ("inbox", "--as", "b"), 0),
        ("tasks/pending.mark", ("task", "add", "--as", "a", "t"), 0),
    ],
)
def test_a_fifo_state_file_is_refused_at_once(
    swarm: Swarm, project: Path, rel: str, args: tuple[str, ...], code: int
) -> None:
    """Each of these hung a command for ever; now each is a one-line refusal (exit 1), or
    one warning line when the FIFO sits in a step after the command's commit."""
    two_agents(swarm)
    messaging.send(swarm, "a", ["b"], "first")
    swarm.log.rotate()
    (swarm.paths.state / "tasks").mkdir(exist_ok=True)
    path = swarm.paths.state / rel
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    proc = cli(project, *args)
    assert proc.returncode == code, proc.stderr
    assert f"{path.name}: it is a FIFO" in one_line(proc)


def test_a_wedged_log_lock_holder_times_out(swarm: Swarm, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender used to wait for messages.lock with no timeout, so one stopped holder
    blocked every sender for ever; it now gives up after ``LOCK_TIMEOUT`` (exit 4).
    The constant is shortened so the test does not wait 30 s."""
    monkeypatch.setattr(message_log, "LOCK_TIMEOUT", 0.2, raising=False)
    two_agents(swarm)
    fd = os.open(swarm.paths.log_lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a holder that never lets go (stopped, wedged)
    outcome: list[BaseException] = []

    def append() -> None:
        try:
            messaging.send(swarm, "a", ["b"], "hi")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=append, daemon=True)
    worker.start()
    worker.join(HANG)
    still_waiting = worker.is_alive()
    os.close(fd)  # lets a blocked worker finish either way
    worker.join(HANG)
    assert not still_waiting, "the sender waited for messages.lock with no timeout"
    assert len(outcome) == 1 and isinstance(outcome[0], LockTimeout)
    assert isinstance(outcome[0], UnavailableError) and isinstance(outcome[0], TimeoutError)
    assert outcome[0].what == "messages.lock"


# -- wrong-typed JSON ---------------------------------------------------------------------


def test_wrong_typed_rate_limiter_state_is_quarantined(swarm: Swarm, project: Path) -> None:
    """``ratelimit.json = {"zzz": ["x"]}`` made every send raise a TypeError."""
    two_agents(swarm)
    swarm.paths.file("ratelimit.json").write_text('{"zzz": ["x"]}')
    proc = cli(project, "send", "--as", "a", "b", "hi")
    assert proc.returncode == 0, proc.stderr
    kept = [p.read_text() for p in swarm.paths.quarantine.glob("ratelimit.json.*[0-9]")]
    assert kept == ['{"zzz": ["x"]}']


def test_a_wrong_typed_agent_is_skipped_with_one_warning(swarm: Swarm, project: Path) -> None:
    """``"last_seen": 3`` in agents.json made ``agents`` crash; the other agents are
    listed, the bad entry is reported in one line, and a writer keeps a copy of it."""
    two_agents(swarm)
    path = swarm.paths.file("agents.json")
    doc = json.loads(path.read_text())
    doc["agents"]["b"]["last_seen"] = 3
    path.write_text(json.dumps(doc))
    proc = cli(project, "agents")
    assert proc.returncode == 0
    assert "a " in proc.stdout.splitlines()[1]
    line = one_line(proc)
    assert line.startswith("claudeswarm: warning: agents.json")
    assert "'last_seen' is an int, expected a str" in line
    assert cli(project, "join", "c").returncode == 0
    kept = [p.read_text() for p in swarm.paths.quarantine.glob("agents.json.*[0-9]")]
    assert len(kept) == 1 and '"last_seen": 3' in kept[0]
    assert "b" not in json.loads(path.read_text())["agents"]


def test_a_list_typed_cursor_does_not_break_the_monitor(swarm: Swarm, project: Path) -> None:
    """A cursor with list-typed fields raised ``unhashable type`` in ``monitor --once``;
    the monitor now counts that agent from the start and says why in one line."""
    two_agents(swarm)
    messaging.send(swarm, "a", ["b"], "hi")
    (swarm.paths.state / "cursors" / "b.json").write_text(
        '{"dev": [1], "ino": [2], "offset": [3], "last_id": []}'
    )
    proc = cli(project, "monitor", "--once", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["agents"]["rows"]}
    assert rows["b"]["unread"] == "1"
    assert "cursors/b.json" in one_line(proc)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400"])
def test_a_non_finite_setting_is_a_usage_error(project: Path, value: str) -> None:
    """``rotate_bytes = inf`` (or nan) in config.toml made every command raise."""
    state = project / ".claudeswarm"
    state.mkdir()
    (state / "config.toml").write_text(f"rotate_bytes = {value}\n")
    proc = cli(project, "log")
    assert proc.returncode == 2
    assert "rotate_bytes" in one_line(proc)


# -- symlinks inside the state directory ----------------------------------------------------


def test_a_symlinked_tasks_directory_is_refused(
    swarm: Swarm, project: Path, tmp_path: Path
) -> None:
    """``tasks -> /elsewhere`` put every task file elsewhere."""
    outside = outside_tree(tmp_path)
    (swarm.paths.state / "tasks").symlink_to(outside)
    proc = cli(project, "task", "add", "--as", "a", "write docs")
    assert proc.returncode == 1
    assert "tasks: it is a symlink" in one_line(proc)
    assert os.listdir(outside) == ["keep"]


def test_a_symlinked_line_quarantine_receives_nothing(
    swarm: Swarm, project: Path, tmp_path: Path
) -> None:
    """A symlink at quarantine/lines received the quarantined copies of bad lines."""
    two_agents(swarm)
    messaging.send(swarm, "a", ["b"], "good")
    with open(swarm.paths.log, "ab") as fh:
        fh.write(b"\n{not a record}\n")
    outside = outside_tree(tmp_path)
    (swarm.paths.quarantine / "lines").symlink_to(outside)
    proc = cli(project, "inbox", "--as", "b")
    assert proc.returncode == 1
    assert "quarantine/lines: it is a symlink" in one_line(proc)
    assert os.listdir(outside) == ["keep"]


def test_a_symlinked_task_quarantine_receives_nothing(
    swarm: Swarm, project: Path, tmp_path: Path
) -> None:
    """A symlink at quarantine/tasks received corrupt task files."""
    assert cli(project, "task", "add", "--as", "a", "one").returncode == 0
    (task,) = (swarm.paths.state / "tasks" / "pending").iterdir()
    task.write_text("{not json")
    outside = outside_tree(tmp_path)
    (swarm.paths.quarantine / "tasks").symlink_to(outside)
    proc = cli(project, "task", "list")
    assert proc.returncode == 1
    assert "quarantine/tasks: it is a symlink" in one_line(proc)
    assert os.listdir(outside) == ["keep"]
    assert task.read_text() == "{not json"  # refused before anything moved


def test_a_symlinked_quarantine_is_checked_before_anything_moves(
    swarm: Swarm, project: Path, tmp_path: Path
) -> None:
    """With quarantine/ symlinked and ratelimit.json corrupt, the file was moved outside
    the state directory, and only then did send refuse."""
    two_agents(swarm)
    swarm.paths.file("ratelimit.json").write_text("{corrupt")
    outside = outside_tree(tmp_path)
    swarm.paths.quarantine.rmdir()
    (swarm.paths.state / "quarantine").symlink_to(outside)
    proc = cli(project, "send", "--as", "a", "b", "hi")
    assert proc.returncode == 1
    assert "quarantine: it is a symlink" in one_line(proc)
    assert os.listdir(outside) == ["keep"]
    assert (swarm.paths.state / "ratelimit.json").read_text() == "{corrupt"


# -- reading cost -------------------------------------------------------------------------


def test_reading_back_past_garbage_is_bounded_by_the_longest_line(swarm: Swarm) -> None:
    """``log -n 5`` over a log ending in 100 MB of unterminated garbage took 14-19 s and
    420 MB: the backward reader re-split a carry buffer that grew by a chunk each step.
    Now memory stays within a chunk plus the longest accepted line, and the records
    before the garbage are found. (The tail is sparse: NUL bytes cost no disk.)"""
    two_agents(swarm)
    for n in range(3):
        messaging.send(swarm, "a", ["b"], f"before the garbage {n}")
    size = swarm.paths.log.stat().st_size
    with open(swarm.paths.log, "r+b") as fh:
        fh.truncate(size + 48 * 1024 * 1024)
    max_line = max_line_bytes(swarm.settings.body_max_bytes)  # the default
    tracemalloc.start()
    try:
        found = read_recent(swarm.paths, 5, lambda r: True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.body for r in found] == [f"before the garbage {n}" for n in range(3)]
    assert peak < 4 * (256 * 1024 + max_line), f"peak {peak} bytes"


def test_an_oversize_line_is_reported_once(swarm: Swarm) -> None:
    """A forward reader meeting one long line reported it once per chunk it spanned
    (one quarantine file per 256 KiB of garbage); it is one bad line."""
    two_agents(swarm)
    with open(swarm.paths.log, "ab") as fh:
        fh.write(b"\n" + b"x" * (3 * 1024 * 1024) + b"\n")
    messaging.send(swarm, "a", ["b"], "after")
    bad: list[BadLine] = []
    with LogTailer(swarm.paths, on_bad=bad.append) as tail:
        assert [r.body for r in tail] == ["after"]
    assert len(bad) == 1


def test_a_pass_over_many_archives_lists_archive_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With many archives (raised ``archive_keep``) ``monitor --once`` took ~10 s: the
    tailer re-listed archive/ for every file it opened, O(N^2) for N archives.

    ``os.listdir`` is wrapped to count calls (it still lists): the number of listings
    is the behaviour under test, and a timing assert would fail on a slow machine."""
    from claudeswarm.config import load
    from claudeswarm.storage.paths import StatePaths, ensure_state

    paths = ensure_state(StatePaths(project, project / ".claudeswarm"))
    limits = {"rate_per_sender": 10**6, "rate_per_pair": 10**6}
    sw = Swarm(paths, settings(archive_keep=10**6, rotate_bytes=1, **limits))
    try:
        register(paths, "a")
        register(paths, "b")
        for n in range(120):
            messaging.send(sw, "a", ["b"], f"message {n}")  # each rotates
    finally:
        sw.close()
    assert len(message_log.archives(paths)) >= 100
    listings: list[str] = []
    real = os.listdir

    def counting(path: object = ".") -> list[str]:
        listings.append(str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "listdir", counting)
    with LogTailer(paths) as tail:
        assert len(list(tail)) == 120
    assert sum(p == str(paths.archive) for p in listings) <= 4
    listings.clear()
    snap = snapshot(Swarm(paths, load(paths, env={}).settings), messages=5)
    assert len(snap.messages) == 5
    assert sum(p == str(paths.archive) for p in listings) <= 8


def test_the_cli_sees_the_same_records(swarm: Swarm, project: Path) -> None:
    """End to end: ``log -n 5`` past a garbage tail answers with the good records."""
    two_agents(swarm)
    messaging.send(swarm, "a", ["b"], "kept")
    with open(swarm.paths.log, "r+b") as fh:
        fh.truncate(swarm.paths.log.stat().st_size + 8 * 1024 * 1024)
    proc = cli(project, "log", "-n", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["body"] for line in proc.stdout.splitlines()] == ["kept"]


def test_the_live_monitor_reports_an_unreadable_log_and_goes_on(swarm: Swarm) -> None:
    """The live monitor hung on a FIFO log (and, once opens stopped blocking, its reader
    thread died on the refusal). It now shows why in the messages panel, keeps polling,
    and follows the log again once it is a regular file."""
    import asyncio

    from claudeswarm.monitor.app import create_app
    from tests.monitor_support import wait_for

    two_agents(swarm)
    os.mkfifo(swarm.paths.log)

    async def scenario() -> None:
        app = create_app(swarm, ring_size=100, poll=0.02)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: "messages.jsonl: it is a FIFO" in app.messages.note)
            os.unlink(swarm.paths.log)
            await wait_for(pilot, lambda: app.messages.note == "")
            messaging.send(swarm, "a", ["b"], "back")
            await wait_for(pilot, lambda: [r.body for r in app.messages.ring] == ["back"])

    asyncio.run(scenario())


# -- the same causes elsewhere --------------------------------------------------------------


def test_the_reaper_leaves_a_planted_directory_in_tmp(swarm: Swarm, project: Path) -> None:
    """``task reap`` clears temp files of dead writers from tasks/tmp/; a directory with
    such a name made it fail with "Is a directory". It is left alone now."""
    assert cli(project, "task", "add", "--as", "a", "one").returncode == 0
    planted = swarm.paths.state / "tasks" / "tmp" / "x.4194301.0bad"  # a pid no one has
    planted.mkdir()
    proc = cli(project, "task", "reap", "--json")
    assert proc.returncode == 0, proc.stderr
    assert planted.is_dir()


def test_an_agent_name_that_is_a_path_is_skipped(swarm: Swarm, project: Path) -> None:
    """Registry names become file names (``cursors/<name>.json``); an entry named
    ``../../x`` made the monitor read a cursor outside the state directory."""
    two_agents(swarm)
    path = swarm.paths.file("agents.json")
    doc = json.loads(path.read_text())
    doc["agents"]["../../x"] = {"name": "../../x"}
    path.write_text(json.dumps(doc))
    (project / "x.json").write_text('{"dev": 1, "ino": 2, "offset": 0}')
    proc = cli(project, "monitor", "--once", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["name"] for r in json.loads(proc.stdout)["agents"]["rows"]] == ["a", "b"]
    assert "invalid agent name '../../x'" in one_line(proc)


# -- the helper itself ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "socket"])
@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREAT])
def test_open_state_refuses_what_is_not_a_regular_file(
    tmp_path: Path, kind: str, flags: int
) -> None:
    """Every kind of non-regular file is refused in one line, for reading and for
    appending alike, and a FIFO with a reader waiting receives nothing."""
    import socket

    from claudeswarm.errors import StateError
    from claudeswarm.storage.files.atomic import open_state

    path = tmp_path / "state.json"
    reader = None
    if kind == "symlink":
        path.symlink_to(tmp_path / "elsewhere")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a writer's open would succeed
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    with pytest.raises(StateError, match=r"state\.json: it is a (symlink|directory|FIFO|socket)"):
        open_state(path, flags)
    if reader is not None:
        assert os.read(reader, 1) == b""  # no writer ever: nothing was written into it
        os.close(reader)
    if kind == "socket":
        sock.close()


def test_a_reader_past_an_oversize_tail_keeps_its_place(swarm: Swarm, project: Path) -> None:
    """Found by the stress fuzz: an inbox that skipped an unterminated oversize tail saved
    a cursor inside it; the next reader could not prove that position (``monitor --once``
    crashed on it, an inbox would re-show every retained message). The cursor stays at
    the end of the last whole line read, so the next inbox shows nothing twice."""
    two_agents(swarm)
    messaging.send(swarm, "a", ["b"], "before the garbage")
    with open(swarm.paths.log, "r+b") as fh:
        fh.truncate(swarm.paths.log.stat().st_size + 3 * 1024 * 1024)
    first = cli(project, "inbox", "--as", "b", "--json")
    assert first.returncode == 0, first.stderr
    assert [m["body"] for m in json.loads(first.stdout)["messages"]] == ["before the garbage"]
    again = cli(project, "inbox", "--as", "b", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["messages"] == []
    snap = cli(project, "monitor", "--once", "--json")
    assert snap.returncode == 0, snap.stderr
    assert "Traceback" not in snap.stderr
