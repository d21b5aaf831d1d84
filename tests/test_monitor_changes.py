"""The monitor notices every change of a state file, also a replacement that looks the same
to ``lstat`` (issue 9, item 1, audit): ext4 gives a freed inode number to the next new
file at once and mtime moves once per clock tick, so a file replaced twice in quick
succession can come back with the inode number, size and mtime the monitor last saw."""

from __future__ import annotations

import os
import time
from pathlib import Path

from monitor_support import add_agents, agent, append, rec

from claudeswarm.messages import service as messaging
from claudeswarm.monitor.data import ChangeWatcher
from claudeswarm.monitor.feed import Feed
from claudeswarm.swarm import Swarm


def look_alike(path: Path, data: bytes, like: os.stat_result) -> None:
    """Put ``data`` into the inode ``like`` describes, at ``path``, with ``like``'s mtime:
    what a second quick replacement that got the first one's inode number leaves."""
    aside = path.with_name(path.name + ".aside")
    with aside.open("r+b") as fh:
        fh.write(data)
        fh.truncate()
    os.utime(aside, ns=(like.st_atime_ns, like.st_mtime_ns))
    os.replace(aside, path)
    now = path.stat()
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (
        like.st_ino,
        like.st_size,
        like.st_mtime_ns,
    )


def test_a_lookalike_replacement_within_a_clock_tick_is_noticed(tmp_path: Path) -> None:
    """The look that hid the replacement was taken less than 0.2 s after the mtime, so
    it is not trusted: once the mtime is 0.2 s old the panel is reloaded once more, and
    after that an unchanged file is left alone."""
    state = tmp_path / "agents.json"
    state.write_bytes(b'{"bob":"busy"}')
    seen = state.stat()
    clock = [seen.st_mtime_ns + 1_000_000]  # 1 ms after the write
    watcher = ChangeWatcher({"agents": lambda: [state]}, now_ns=lambda: clock[0])
    assert watcher.changed() == {"agents"}
    os.link(state, state.with_name("agents.json.aside"))
    look_alike(state, b'{"bob":"idle"}', seen)  # lstat cannot tell
    clock[0] += 50_000_000
    assert watcher.changed() == set()  # still within the window: nothing to go on yet
    clock[0] += 200_000_000
    assert watcher.changed() == {"agents"}  # settled now: looked at once more
    clock[0] += 10**9
    assert watcher.changed() == set()


def test_a_settled_file_is_not_reloaded_again(tmp_path: Path) -> None:
    state = tmp_path / "agents.json"
    state.write_bytes(b"{}")
    past = time.time_ns() - 10**9
    os.utime(state, ns=(past, past))
    watcher = ChangeWatcher({"agents": lambda: [state]})
    assert [watcher.changed() for _ in range(3)] == [{"agents"}, set(), set()]


def test_unread_counts_follow_a_lookalike_cursor_replacement(swarm: Swarm) -> None:
    add_agents(swarm, agent("alice"), agent("bob"))
    append(swarm, [rec(i, to=("bob",)) for i in range(30)])
    messaging.inbox(swarm, "bob", limit=10)
    feed = Feed(swarm, ring_size=5)
    feed.start()
    feed.poll()
    assert feed.unread.shown()["bob"] == "20"
    cursor = swarm.paths.cursors / "bob.json"
    seen = cursor.stat()
    os.link(cursor, cursor.with_name("bob.json.aside"))
    messaging.inbox(swarm, "bob", limit=10)  # a new cursor file (a new inode)
    newer = cursor.read_bytes()
    assert len(newer) == seen.st_size  # only the offset's digits changed
    look_alike(cursor, newer, seen)
    deadline = time.monotonic() + 30
    while feed.unread.shown()["bob"] != "10" and time.monotonic() < deadline:
        feed.poll()  # the recount comes once the cursor's mtime is 0.2 s old
        time.sleep(0.02)
    feed.close()
    assert feed.unread.shown()["bob"] == "10"
