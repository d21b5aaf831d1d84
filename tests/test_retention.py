"""Retention never loses a live agent's unread mail without a word (issue 9, item 6).

Real processes: the slow reader is a registered agent bound to a real running process,
the senders are separate processes racing through rotations, and the inbox is read by
the real CLI. Counts are small by default; ``CLAUDESWARM_STRESS=N`` multiplies them.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_env, register, run_cli

from claudeswarm.config import load
from claudeswarm.messages import service as messaging
from claudeswarm.storage.files.log import archives
from claudeswarm.storage.paths import StatePaths
from claudeswarm.swarm import Swarm

STRESS = max(1, int(os.environ.get("CLAUDESWARM_STRESS", "0") or 0))
FORK = mp.get_context("fork")
WRITERS = 4
ROTATE = 2048  # ~8 messages per archive: many rotations in a few hundred messages
KEEP = 2
UNLIMITED = {
    "CLAUDESWARM_ROTATE_BYTES": str(ROTATE),
    "CLAUDESWARM_ARCHIVE_KEEP": str(KEEP),
    "CLAUDESWARM_RATE_PER_SENDER": "1000000",
    "CLAUDESWARM_RATE_PER_PAIR": "1000000",
    "CLAUDESWARM_RATE_REPEAT": "1000000",
    "CLAUDESWARM_NUDGE": "never",
}
LOSS_RE = re.compile(
    r"^claudeswarm: (at least )?(\d+) messages? to (\S+) (?:was|were) deleted by retention "
    r"before (?:it was|they were) read \(sent (\S+) to (\S+)\)"
)


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real process standing in for an agent (its pid and start time are registered)."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def _settings_env(**extra: str) -> dict[str, str]:
    return {**UNLIMITED, **extra}


def _writer(paths: StatePaths, env: dict[str, str], name: str, count: int, out: Path) -> None:
    """Send ``count`` messages to ``slow`` and record each acknowledged (id, ts). The
    writer is an agent that keeps up with its own inbox, so it pins nothing."""
    swarm = Swarm(paths, load(paths, env=env).settings)
    with open(out, "w") as fh:
        for i in range(count):
            rec = messaging.send(swarm, name, ["slow"], f"{name} message {i} " + "x" * 100)
            fh.write(f"{rec.id} {rec.ts}\n")
            messaging.inbox(swarm, name)
    swarm.close()


def _flood(paths: StatePaths, env: dict[str, str], tmp: Path, per: int) -> dict[str, str]:
    """``WRITERS`` processes send ``per`` messages each to slow; returns id -> ts."""
    procs = []
    for w in range(WRITERS):
        out = tmp / f"w{w}.acks"
        procs.append((FORK.Process(target=_writer, args=(paths, env, f"w{w}", per, out)), out))
    for proc, _ in procs:
        proc.start()
    sent: dict[str, str] = {}
    for proc, out in procs:
        proc.join(120)
        assert proc.exitcode == 0
        for line in out.read_text().splitlines():
            mid, ts = line.split()
            sent[mid] = ts
    return sent


def _team(paths: StatePaths, slow_pid: int) -> None:
    register(paths, "slow", pid=slow_pid)
    for w in range(WRITERS):
        register(paths, f"w{w}")


def _inbox(project: Path, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Run ``inbox --as slow --json`` as a fresh process: (ids shown, stderr lines)."""
    out = run_cli(project, "inbox", "--as", "slow", "--json", env=cli_env(project, **env))
    assert out.returncode == 0, out.stderr
    shown = [m["id"] for m in json.loads(out.stdout)["messages"]]
    return shown, [ln for ln in out.stderr.splitlines() if ln.strip()]


def _settle(swarm: Swarm) -> None:
    """The writers read their inboxes (they may have lagged a rotation behind), then one
    more rotation runs retention (an empty log does not rotate: one record first, and if
    that one rotated the log, retention has run already)."""
    for w in range(WRITERS):
        messaging.inbox(swarm, f"w{w}")
    messaging.announce(swarm, "settle")
    swarm.log.rotate()


def _read_once(project: Path, swarm: Swarm, env: dict[str, str]) -> None:
    """slow reads what is there now: its cursor is saved in the live log."""
    messaging.send(swarm, "w0", ["slow"], "before the flood")
    shown, err = _inbox(project, env)
    assert len(shown) == 1 and err == []


def test_live_reader_far_behind_loses_nothing_below_the_cap(
    project: Path, paths: StatePaths, tmp_path: Path, live_process: subprocess.Popen[bytes]
) -> None:
    """The issue's case: small rotate_bytes and archive_keep, a live agent that read once
    and then fell dozens of rotations behind. Every message must still be in its inbox."""
    env = _settings_env()
    swarm = Swarm(paths, load(paths, env=env).settings)
    _team(paths, live_process.pid)
    _read_once(project, swarm, env)
    sent = _flood(paths, env, tmp_path, 40 * STRESS)
    assert archives(paths)[-1][0] > 4 * KEEP  # rotated far past archive_keep
    shown, err = _inbox(project, env)
    assert err == []
    assert sorted(shown) == sorted(sent)  # nothing lost, nothing twice
    _settle(swarm)  # once every live agent has read, nothing is pinned
    assert len(archives(paths)) <= KEEP


def test_past_the_cap_inbox_reports_exactly_what_was_lost(
    project: Path, paths: StatePaths, tmp_path: Path, live_process: subprocess.Popen[bytes]
) -> None:
    """With archive/ capped at a few archives, the oldest unread ones go; the inbox shows
    what remains, and one stderr line gives the exact number lost and when they were
    sent. The report is made once: the next inbox is quiet."""
    env = _settings_env(CLAUDESWARM_ARCHIVE_MAX_BYTES=str(4 * ROTATE))
    swarm = Swarm(paths, load(paths, env=env).settings)
    _team(paths, live_process.pid)
    _read_once(project, swarm, env)
    sent = _flood(paths, env, tmp_path, 40 * STRESS)
    shown, err = _inbox(project, env)
    assert set(shown) <= set(sent) and len(set(shown)) == len(shown)
    lost = sorted(set(sent) - set(shown))
    assert lost, "the cap should have forced a loss"
    assert len(err) == 1, err
    m = LOSS_RE.match(err[0])
    assert m, err[0]
    assert m.group(1) is None  # exact, not a lower bound
    assert int(m.group(2)) == len(lost) and m.group(3) == "slow"
    assert (m.group(4), m.group(5)) == (min(sent[i] for i in lost), max(sent[i] for i in lost))
    again, err = _inbox(project, env)
    assert again == [] and err == []


def test_a_gone_agent_does_not_pin_and_hears_of_its_loss_when_back(
    project: Path, paths: StatePaths, tmp_path: Path, live_process: subprocess.Popen[bytes]
) -> None:
    """An agent whose process died pins nothing: archive/ stays at archive_keep. When its
    name comes back (a rejoin), the first inbox says that mail was lost, never silently."""
    env = _settings_env()
    swarm = Swarm(paths, load(paths, env=env).settings)
    dead = subprocess.Popen(["sleep", "600"])
    _team(paths, dead.pid)
    _read_once(project, swarm, env)
    dead.kill()
    dead.wait()
    sent = _flood(paths, env, tmp_path, 40 * STRESS)
    _settle(swarm)
    assert len(archives(paths)) <= KEEP
    register(paths, "slow", pid=live_process.pid)  # back, in a new process
    shown, err = _inbox(project, env)
    lost = set(sent) - set(shown)
    assert lost
    assert len(err) == 1, err
    m = LOSS_RE.match(err[0])
    assert m, err[0]
    count = int(m.group(2))
    assert 0 < count <= len(lost)
    assert m.group(1) or count == len(lost)  # a lower bound says so


def test_loss_is_reported_once_through_the_library(
    paths: StatePaths, live_process: subprocess.Popen[bytes]
) -> None:
    """``InboxResult.lost`` carries the count (for ``--json`` and the hooks); a peek
    reports it without consuming it."""
    env = _settings_env(CLAUDESWARM_ARCHIVE_MAX_BYTES=str(2 * ROTATE))
    swarm = Swarm(paths, load(paths, env=env).settings)
    _team(paths, live_process.pid)
    messaging.send(swarm, "w0", ["slow"], "first")
    assert len(messaging.inbox(swarm, "slow").messages) == 1
    ids = [messaging.send(swarm, "w1", ["slow"], f"m{i} " + "z" * 200).id for i in range(60)]
    peeked = messaging.inbox(swarm, "slow", peek=True)
    assert peeked.lost is not None and peeked.lost.count > 0
    got = messaging.inbox(swarm, "slow")
    assert got.lost == peeked.lost
    assert got.lost is not None and got.lost.exact
    assert got.lost.count + len(got.messages) == len(ids)
    assert messaging.inbox(swarm, "slow").lost is None


# -- the rule, one process, deterministic -------------------------------------------------


def _log_swarm(paths: StatePaths, **extra: str) -> Swarm:
    return Swarm(paths, load(paths, env=_settings_env(**extra)).settings)


def _rotate_n(swarm: Swarm, n: int) -> None:
    for i in range(n):
        messaging.announce(swarm, f"filler {i}")
        swarm.log.rotate()


def test_an_agent_that_never_read_pins_until_it_reads(
    paths: StatePaths, live_process: subprocess.Popen[bytes]
) -> None:
    """No cursor yet: everything kept is unread for it (its inbox would show it all)."""
    swarm = _log_swarm(paths)
    register(paths, "slow", pid=live_process.pid)
    _rotate_n(swarm, 6)
    assert [s for s, _ in archives(paths)] == [1, 2, 3, 4, 5, 6]
    assert len(messaging.inbox(swarm, "slow").messages) == 6
    _rotate_n(swarm, 1)
    assert [s for s, _ in archives(paths)] == [6, 7]


def test_seq_numbers_never_repeat_when_archive_is_emptied(paths: StatePaths) -> None:
    """With archive_keep = 0 every archive goes at once; the next one must not take the
    seq of a deleted one (readers and the ledger go by seq)."""
    from claudeswarm.storage.files.retention_ledger import read_ledger

    swarm = _log_swarm(paths, CLAUDESWARM_ARCHIVE_KEEP="0")
    _rotate_n(swarm, 3)
    assert archives(paths) == []
    assert sorted(read_ledger(paths)) == [1, 2, 3]


def test_a_fifo_cursor_does_not_hang_rotation(
    paths: StatePaths, live_process: subprocess.Popen[bytes]
) -> None:
    """Rotation holds the lock every sender waits on: a FIFO planted as a cursor is not
    read (the agent counts as never having read: it pins)."""
    swarm = _log_swarm(paths)
    register(paths, "slow", pid=live_process.pid)
    os.mkfifo(paths.cursors / "slow.json")
    _rotate_n(swarm, 4)
    assert len(archives(paths)) == 4


def test_retention_that_fails_does_not_fail_the_append(paths: StatePaths) -> None:
    """The record is committed before rotation: an error in retention (here the ledger
    cannot be written) keeps the archives and the send succeeds."""
    swarm = _log_swarm(paths)
    (paths.archive / "pruned.jsonl").mkdir()
    _rotate_n(swarm, 4)
    assert len(archives(paths)) == 4
    assert len(messaging.recent(swarm, 10)) == 4


def test_the_cap_bounds_what_a_live_reader_keeps(
    paths: StatePaths, live_process: subprocess.Popen[bytes]
) -> None:
    """Pinned archives stay only while archive/ holds at most archive_max_bytes."""
    swarm = _log_swarm(paths, CLAUDESWARM_ARCHIVE_MAX_BYTES="1000")
    register(paths, "slow", pid=live_process.pid)
    messaging.inbox(swarm, "slow")
    for i in range(10):
        messaging.announce(swarm, f"filler {i} " + "f" * 300)
        swarm.log.rotate()
        kept = [p.stat().st_size for _, p in archives(paths)]
        assert len(kept) <= KEEP or sum(kept) <= 1000
    got = messaging.inbox(swarm, "slow")
    assert got.lost is not None and got.lost.exact
    assert got.lost.count + len(got.messages) == 10


# -- followers of the whole log ------------------------------------------------------------


def _drop_under(swarm: Swarm) -> None:
    """With the follower's file open: m2 goes into it, then three rotations delete the
    archive holding it and the next one (m3); m4 and m5 are kept."""
    messaging.announce(swarm, "m2")
    for body in ("m3", "m4", "m5"):
        swarm.log.rotate()
        messaging.announce(swarm, body)


def test_follow_reports_logs_deleted_before_it_read_them(paths: StatePaths) -> None:
    """The gap is reported where it is, between the records around it."""
    swarm = _log_swarm(paths, CLAUDESWARM_ARCHIVE_KEEP="1")
    messaging.announce(swarm, "m0")
    events: list[str] = []
    deadline = time.monotonic() + 60  # a missing record fails the test, never hangs it
    follower = messaging.follow(
        swarm,
        lambda r: True,
        cursor=messaging.end_cursor(swarm),
        poll=0.01,
        stop=lambda: time.monotonic() > deadline,
        on_gap=lambda lost: events.append(lost.sentence()),
    )
    messaging.announce(swarm, "m1")  # after the end cursor: the follower must see it
    events.append(next(follower).body)
    _drop_under(swarm)
    for _ in range(3):
        events.append(next(follower).body)
    assert events[:2] == ["m1", "m2"] and events[3:] == ["m4", "m5"]
    assert events[2].startswith("claudeswarm: skipped 1 rotated log (sent ")


class Lines:
    """Whole lines from a pipe, each waited for with a timeout (a failure, never a hang).
    Reads the raw fd: a buffered reader may hold several lines that ``select`` cannot
    see."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, b""

    def next(self, timeout: float = 60) -> str:
        import select

        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            assert ready, "no output within the timeout"
            chunk = os.read(self.fd, 65536)
            assert chunk, "the follower ended"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def test_log_follow_says_so_on_stderr(project: Path, paths: StatePaths) -> None:
    """``log --follow`` as a real process, stopped (SIGSTOP) while retention deletes the
    file it reads and the next one: it prints the records it still can, and one line."""
    import signal

    env = cli_env(project, CLAUDESWARM_ARCHIVE_KEEP="1")
    swarm = _log_swarm(paths, CLAUDESWARM_ARCHIVE_KEEP="1")
    messaging.announce(swarm, "m0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", "log", "-n", "1", "--follow", "--json"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Lines(proc.stdout.fileno()), Lines(proc.stderr.fileno())
    try:
        assert json.loads(out.next())["body"] == "m0"  # it holds its position
        messaging.announce(swarm, "m1")
        assert json.loads(out.next())["body"] == "m1"  # its file is open
        os.kill(proc.pid, signal.SIGSTOP)
        _drop_under(swarm)
        os.kill(proc.pid, signal.SIGCONT)
        assert [json.loads(out.next())["body"] for _ in range(3)] == ["m2", "m4", "m5"]
        assert err.next().startswith("claudeswarm: skipped 1 rotated log (sent ")
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


def test_the_prompt_hook_tells_the_agent_once(
    project: Path, paths: StatePaths, live_process: subprocess.Popen[bytes]
) -> None:
    """The prompt hook reads the inbox for the agent (and moves past the gap), so it is
    the one that must say what was lost: in the context, above the messages left."""
    env = _settings_env(CLAUDESWARM_ARCHIVE_MAX_BYTES=str(2 * ROTATE))
    swarm = Swarm(paths, load(paths, env=env).settings)
    register(paths, "me", pane="%901", pid=live_process.pid)
    register(paths, "other")

    def prompt() -> str:
        out = subprocess.run(
            [sys.executable, "-m", "claudeswarm", "hook", "prompt"],
            cwd=project,
            env=cli_env(project, TMUX_PANE="%901", **env),
            input=b"{}",
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert (out.returncode, out.stderr) == (0, b"")
        return out.stdout.decode()

    messaging.send(swarm, "other", ["me"], "first")
    assert "first" in prompt()
    for i in range(40):
        messaging.send(swarm, "other", ["me"], f"note {i} " + "n" * 150)
    text = prompt()
    lines = text.splitlines()
    m = LOSS_RE.match(lines[0])
    assert m and m.group(1) is None and m.group(3) == "me", lines[0]
    shown = int(lines[1].split()[1])  # "claudeswarm: N messages from other agents ..."
    assert int(m.group(2)) + shown + int(_more(text)) == 40
    assert not LOSS_RE.match((prompt().splitlines() or [""])[0])  # said once


def _more(text: str) -> str:
    found = re.search(r"(\d+) more unread", text)
    return found.group(1) if found else "0"


# -- the monitor ---------------------------------------------------------------------------


def test_monitor_once_shows_what_each_agent_lost(
    project: Path, paths: StatePaths, live_process: subprocess.Popen[bytes]
) -> None:
    """``monitor --once`` (a real process, read-only) shows the loss the agent's next
    inbox will report, in the agents panel; gone once that inbox has said it."""
    env = _settings_env(CLAUDESWARM_ARCHIVE_MAX_BYTES=str(2 * ROTATE))
    swarm = Swarm(paths, load(paths, env=env).settings)
    _team(paths, live_process.pid)
    messaging.send(swarm, "w0", ["slow"], "first")
    messaging.inbox(swarm, "slow")
    for i in range(60):
        messaging.send(swarm, "w1", ["slow"], f"m{i} " + "z" * 200)

    def once(*args: str) -> str:
        out = run_cli(project, "monitor", "--once", *args, env=cli_env(project, **env))
        assert (out.returncode, out.stderr) == (0, "")
        return out.stdout

    rows = {r["name"]: r for r in json.loads(once("--json"))["agents"]["rows"]}
    peek = messaging.inbox(swarm, "slow", peek=True).lost
    assert peek is not None and peek.exact
    assert rows["slow"]["lost"] == str(peek.count) and rows["w0"]["lost"] == ""
    table = once().split("\n\n")[0].splitlines()
    assert table[1].split()[-1] == "lost"
    assert [ln.split()[-1] for ln in table if ln.startswith("slow")] == [str(peek.count)]
    messaging.inbox(swarm, "slow")
    rows = {r["name"]: r for r in json.loads(once("--json"))["agents"]["rows"]}
    assert rows["slow"]["lost"] == ""


def test_the_monitor_notes_logs_deleted_before_it_read_them(paths: StatePaths) -> None:
    """The monitor's own tail: the gap comes with the poll that jumps it (between the
    records around it), and the message panel's title says so."""
    import asyncio

    from claudeswarm.monitor.app import create_app
    from claudeswarm.monitor.feed import Feed

    swarm = _log_swarm(paths, CLAUDESWARM_ARCHIVE_KEEP="1")
    messaging.announce(swarm, "m0")
    feed = Feed(swarm, ring_size=100)
    assert [r.body for r in feed.start()] == ["m0"]
    messaging.announce(swarm, "m1")
    assert [r.body for r in feed.poll().records] == ["m1"]
    _drop_under(swarm)
    upd = feed.poll()
    feed.close()
    assert [r.body for r in upd.records] == ["m2", "m4", "m5"]
    assert [lost.files for lost in upd.gaps] == [1]

    async def scenario() -> None:
        app = create_app(swarm, poll=0.01)
        async with app.run_test(size=(120, 36)):
            app._apply(upd)
            assert "1 rotated log deleted before read" in str(app.messages.border_subtitle)

    asyncio.run(scenario())


@pytest.mark.parametrize("peek", [False, True])
def test_inbox_follow_says_it_once(
    project: Path, paths: StatePaths, live_process: subprocess.Popen[bytes], peek: bool
) -> None:
    """``inbox --follow`` reads again every quarter second: the loss line comes once (with
    ``--peek`` the gap is found again on every round, and still said once)."""
    import select

    env = _settings_env(CLAUDESWARM_ARCHIVE_MAX_BYTES=str(2 * ROTATE))
    swarm = Swarm(paths, load(paths, env=env).settings)
    _team(paths, live_process.pid)
    messaging.send(swarm, "w0", ["slow"], "first")
    messaging.inbox(swarm, "slow")
    for i in range(40):
        messaging.send(swarm, "w1", ["slow"], f"m{i} " + "z" * 200)
    args = ["inbox", "--as", "slow", "--follow", *(["--peek"] if peek else [])]
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudeswarm", *args],
        cwd=project,
        env=cli_env(project, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Lines(proc.stdout.fileno()), Lines(proc.stderr.fileno())
    try:
        assert LOSS_RE.match(err.next())
        messaging.send(swarm, "w0", ["slow"], "marker")
        while "marker" not in out.next():
            pass  # a later round has run
        if peek:
            while "marker" not in out.next():
                pass  # and, peeking, another one after it
        ready, _, _ = select.select([proc.stderr.fileno()], [], [], 0.5)
        assert not ready and err.buf == b""
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize(
    "form", ["garbage", "wrong types", "fifo"], ids=["garbage", "wrong-types", "fifo"]
)
def test_a_hostile_ledger_breaks_nothing(
    paths: StatePaths, live_process: subprocess.Popen[bytes], form: str
) -> None:
    """Bad ledger lines are skipped (the good ones still count exactly); a FIFO planted as
    the ledger is never opened: retention deletes nothing and every send succeeds."""
    ledger = paths.archive / "pruned.jsonl"
    if form == "fifo":
        os.mkfifo(ledger)
    else:
        bad = b"\x00not json\xff" if form == "garbage" else b'{"seq":"1","lost":3,"file":7}'
        ledger.write_bytes(b"\n" + bad + b"\n")
    swarm = _log_swarm(paths, CLAUDESWARM_ARCHIVE_MAX_BYTES=str(2 * ROTATE))
    register(paths, "slow", pid=live_process.pid)
    messaging.announce(swarm, "first")
    messaging.inbox(swarm, "slow")
    for i in range(30):
        messaging.announce(swarm, f"m{i} " + "z" * 200)
    got = messaging.inbox(swarm, "slow")
    if form == "fifo":
        assert got.lost is None and len(got.messages) == 30
    else:
        assert got.lost is not None and got.lost.exact
        assert got.lost.count + len(got.messages) == 30


def test_a_send_that_does_not_rotate_imports_no_reader_or_retention(
    project: Path, paths: StatePaths
) -> None:
    """``send`` is a fresh process per call: retention and the tailer are imported only
    by a rotation past archive_keep (or by readers)."""
    register(paths, "alice")
    register(paths, "bob")
    code = (
        "import sys\n"
        "sys.argv = ['claudeswarm', 'send', '--as', 'alice', 'bob', 'hi']\n"
        "from claudeswarm.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "readers = ('claudeswarm.storage.files.retention', 'claudeswarm.storage.files.tailer')\n"
        "print(sorted(m for m in sys.modules if m.startswith(readers)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=cli_env(project, CLAUDESWARM_NUDGE="never"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.splitlines()[-1] == "[]", (out.stdout, out.stderr)
