"""The monitor's Textual-free side and its promises: the start-up hand-over between the
backward read and the tail, unread counts, ``--once --json``, and read-only runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env, run_cli
from monitor_support import (
    T0,
    add_agents,
    agent,
    append,
    install_fakes,
    rec,
    sample_fakes,
    tree_digest,
    wait_for,
)

from claudeswarm.errors import EXIT_USAGE
from claudeswarm.messages import service as messaging
from claudeswarm.monitor import feed as feed_module
from claudeswarm.monitor.app import create_app
from claudeswarm.monitor.feed import Feed, snapshot
from claudeswarm.monitor.query import parse_filter
from claudeswarm.monitor.unread import UnreadCounter
from claudeswarm.storage.files import tailer
from claudeswarm.swarm import Swarm

pytestmark = pytest.mark.timeout(120)


def test_records_racing_the_start_are_shown_once(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a writer appends exactly between opening the tail and reading
    backwards (the window a real race hits only sometimes); nothing is lost or doubled."""
    append(swarm, [rec(i) for i in range(10)])
    real = feed_module.read_recent

    def racing_read_recent(*args: object, **kw: object) -> object:
        append(swarm, [rec(i) for i in range(10, 15)])  # lands after the tail's start
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(feed_module, "read_recent", racing_read_recent)
    feed = Feed(swarm, ring_size=100)
    first = feed.start()
    append(swarm, [rec(i) for i in range(15, 20)])
    later = feed.poll().records
    feed.close()
    assert [r.body for r in first + later] == [f"message {i}" for i in range(20)]


def test_a_burst_is_read_in_bounded_batches_keeping_the_newest(swarm: Swarm) -> None:
    feed = Feed(swarm, ring_size=10, batch=100)
    feed.start()
    append(swarm, [rec(i) for i in range(250)])
    polls = [feed.poll() for _ in range(4)]
    feed.close()
    assert [p.seen for p in polls] == [100, 100, 50, 0]
    assert [r.body for r in polls[2].records] == [f"message {i}" for i in range(240, 250)]


def test_polls_that_stop_mid_chunk_lose_nothing(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll stops after ``batch`` records, in the middle of what the tailer has read;
    the next poll must go on from exactly there (regression: three records in 200,000
    were lost when a new iteration was started instead). The tailer's read size is made
    tiny so that every read ends inside a line, the rare case that lost them."""
    monkeypatch.setattr(tailer, "CHUNK", 97)
    feed = Feed(swarm, ring_size=1000, batch=7)
    feed.start()
    append(swarm, [rec(i) for i in range(100)])
    got = []
    for _ in range(30):
        got += [r.body for r in feed.poll().records]
    append(swarm, [rec(i) for i in range(100, 110)])
    got += [r.body for r in feed.poll().records] + [r.body for r in feed.poll().records]
    feed.close()
    assert feed.bad == 0
    assert got == [f"message {i}" for i in range(110)]


def test_unread_counts_from_cursors_and_a_capped_scan(swarm: Swarm) -> None:
    add_agents(swarm, agent("alice"), agent("bob"))
    append(swarm, [rec(i, to=("bob",)) for i in range(30)])
    messaging.inbox(swarm, "bob", limit=10)
    feed = Feed(swarm, ring_size=5)
    feed.start()
    feed.poll()
    assert feed.unread.shown() == {"alice": "0", "bob": "20"}
    counter = UnreadCounter(swarm, scan_limit=5)
    counter.recount(["alice", "bob"], feed._tail.cursor if feed._tail else None)
    feed.close()
    assert counter.shown() == {"alice": "0+", "bob": "5+"}  # lower bounds, said so


def test_parse_filter() -> None:
    f = parse_filter('type:question,answer a:alice from:bob to:carol "two words" x')
    assert f.types == frozenset({"question", "answer"})
    assert f.agents == frozenset({"alice"})
    assert f.senders == frozenset({"bob"})
    assert f.recipients == frozenset({"carol"})
    assert f.text == ("two words", "x")
    with pytest.raises(ValueError, match="unknown type 'bogus'"):
        parse_filter("t:bogus")
    assert parse_filter('unbalanced "quote').text == ("unbalanced", '"quote')


def test_snapshot_has_every_panel(swarm: Swarm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Locks and tasks through fake modules (not on this branch), injected in sys.modules."""
    add_agents(swarm, agent("alice"))
    append(swarm, [rec(i) for i in range(5)])
    install_fakes(monkeypatch, sample_fakes())
    snap = snapshot(swarm, messages=3)
    assert [m.body for m in snap.messages] == ["message 2", "message 3", "message 4"]
    assert [a.name for a in snap.agents.rows] == ["alice"]
    assert snap.agents.rows[0].seen_ago == "42s"
    assert len(snap.locks.rows) == 2
    assert dict(snap.tasks.counts)["ghosts"] == 1
    assert snapshot(swarm, messages=0).messages == ()


def _seed(swarm: Swarm) -> None:
    """A lived-in state dir: agents, cursors, receipts, archives and one corrupt line."""
    add_agents(swarm, agent("alice"), agent("bob"))
    append(swarm, [rec(i, to=("bob",)) for i in range(40)])
    swarm.log.rotate()
    append(swarm, [rec(i) for i in range(40, 60)])
    messaging.inbox(swarm, "bob", limit=5)
    with open(swarm.paths.log, "ab") as fh:
        fh.write(b'\n{"v":1,"id":"broken", not json}\n')
    append(swarm, [rec(60, "after the bad line")])


def test_once_json_prints_every_panel_and_changes_nothing(swarm: Swarm, project: Path) -> None:
    _seed(swarm)
    before = tree_digest(swarm.paths)
    out = run_cli(project, "monitor", "--once", "--json", "-n", "5")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"taken_at", "agents", "locks", "tasks", "messages"}
    assert data["locks"]["available"] is True  # the real modules, with nothing held
    assert data["locks"]["rows"] == []
    assert data["tasks"]["available"] is True
    assert data["tasks"]["rows"] == []
    assert {r["name"]: r["unread"] for r in data["agents"]["rows"]} == {
        "alice": "0",
        "bob": "56",
    }  # 61 to bob, 5 read
    assert [m["body"] for m in data["messages"]][-1] == "after the bad line"
    assert tree_digest(swarm.paths) == before
    text = run_cli(project, "monitor", "--once")
    assert text.returncode == 0
    assert "Locks" in text.stdout
    assert "not available yet" not in text.stdout
    assert tree_digest(swarm.paths) == before


def test_once_without_a_state_dir_creates_none(project: Path) -> None:
    out = run_cli(project, "monitor", "--once", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["messages"] == []
    assert not (project / ".claudeswarm").exists()


def test_a_pilot_run_leaves_the_state_dir_byte_for_byte_unchanged(swarm: Swarm) -> None:
    _seed(swarm)
    before = tree_digest(swarm.paths)

    async def scenario() -> None:
        app = create_app(swarm, poll=0.01)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.ready)
            await pilot.press("space", "up", "enter", "escape", "question_mark", "escape")
            await pilot.press("slash", *"agent:bob", "enter", "space")
            await pilot.pause(0.3)
            assert app.bad_lines == 0  # the corrupt line was before the tail's start

    asyncio.run(scenario())
    assert tree_digest(swarm.paths) == before


def test_a_corrupt_line_while_running_is_counted_not_quarantined(swarm: Swarm) -> None:
    _seed(swarm)
    before = tree_digest(swarm.paths)

    async def scenario() -> None:
        app = create_app(swarm, poll=0.01)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.ready)
            with open(swarm.paths.log, "ab") as fh:
                fh.write(b'\n{"v":1,"id":"broken", not json}\n')
            append(swarm, [rec(99, "good after bad")])
            await wait_for(pilot, lambda: app.messages.ring[-1].body == "good after bad")
            assert app.bad_lines == 1
            assert "1 unreadable lines skipped" in str(app.messages.border_subtitle)

    asyncio.run(scenario())
    after = tree_digest(swarm.paths)
    assert after.pop("messages.jsonl") != before.pop("messages.jsonl")  # only the writes
    assert after == before  # no quarantine/ entry: the monitor only counts


def test_json_needs_once(project: Path) -> None:
    out = run_cli(project, "monitor", "--json")
    assert out.returncode == EXIT_USAGE
    assert out.stderr.count("\n") == 1
    assert "--once" in out.stderr
    assert "Traceback" not in out.stderr
    piped = run_cli(project, "monitor")  # stdout is a pipe here, not a terminal
    assert piped.returncode == EXIT_USAGE
    assert "needs a terminal" in piped.stderr
    assert piped.stdout == ""
    help_out = run_cli(project, "monitor", "--help")
    assert "--once" in help_out.stdout


def test_once_imports_neither_textual_nor_tmux(swarm: Swarm, project: Path) -> None:
    append(swarm, [rec(1)])
    code = (
        "import sys\n"
        "sys.argv = ['claudeswarm', 'monitor', '--once', '--json']\n"
        "from claudeswarm.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'libtmux')]\n"
        "print('IMPORTED', bad, file=sys.stderr)\n"
    )
    env = cli_env(project, TMUX="/tmp/fake-tmux-socket,1,0", TMUX_PANE="%99")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True
    )
    assert "IMPORTED []" in out.stderr
    assert json.loads(out.stdout)["messages"][0]["body"] == "message 1"


def test_time_is_the_swarm_clock(swarm: Swarm) -> None:
    add_agents(swarm, agent("alice", last_seen="2027-01-15T07:00:00.000Z"))
    assert snapshot(swarm, messages=0).agents.rows[0].seen_ago == "1h"
    assert swarm.clock() == T0


def test_a_corrupt_registry_is_a_note_not_a_crash(swarm: Swarm, project: Path) -> None:
    swarm.paths.file("agents.json").write_text('{"v": 1, "agents": {"a": 1, "a": 2}}')
    before = tree_digest(swarm.paths)
    out = run_cli(project, "monitor", "--once", "--json")
    assert out.returncode == 0, out.stderr
    agents = json.loads(out.stdout)["agents"]
    assert agents["available"] is False
    assert agents["note"].startswith("cannot read:")
    assert tree_digest(swarm.paths) == before  # not quarantined: the monitor only looks


def test_once_json_shows_real_leases_and_tasks(swarm: Swarm, project: Path) -> None:
    """With the real locks and tasks modules (no stand-ins): a held lease and a claimed
    task appear in the snapshot, and looking changes nothing."""
    from claudeswarm.locks.manager import Holder, LockManager
    from claudeswarm.tasks.board import TaskBoard

    LockManager(swarm, Holder.for_process("alice")).acquire(["src/auth/**"], reason="refactor")
    board = TaskBoard(swarm)
    board.add("write the docs", created_by="alice", priority=2)
    claimed = board.add("fix the login test", created_by="alice", priority=5)
    assert board.claim("bob") is not None
    before = tree_digest(swarm.paths)
    out = run_cli(project, "monitor", "--once", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [r["pattern"] for r in data["locks"]["rows"]] == ["src/auth/**"]
    assert data["locks"]["rows"][0]["holder"] == "alice"
    titles = {r["title"]: r for r in data["tasks"]["rows"]}
    assert set(titles) == {"write the docs", "fix the login test"}
    assert data["tasks"]["counts"]["pending"] == 1
    assert data["tasks"]["counts"]["claimed"] == 1
    assert claimed.id in json.dumps(data["tasks"])
    assert tree_digest(swarm.paths) == before
