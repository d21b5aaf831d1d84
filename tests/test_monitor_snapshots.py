"""SVG snapshots of the monitor at a fixed terminal size, with fixed data and a fixed
clock (the swarm's FakeClock), so every run draws the same screen.

Regenerate after an intended change with ``pytest tests/test_monitor_snapshots.py
--snapshot-update`` and look at the report before committing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from monitor_support import (
    T0,
    add_agents,
    agent,
    append,
    hide_modules,
    install_fakes,
    rec,
    sample_fakes,
)
from textual.pilot import Pilot

from claudeswarm.monitor.app import MonitorApp, create_app
from claudeswarm.swarm import Swarm

SIZE = (120, 36)
pytestmark = pytest.mark.timeout(120)
Compare = Callable[..., bool]


def _fill(swarm: Swarm) -> None:
    add_agents(
        swarm,
        agent("alice", kind="claude", pane="%1", state="busy"),
        agent("bob", kind="codex", pane="%2", state="idle", last_seen="2027-01-15T07:55:00.000Z"),
        agent("carol", kind="aider", pane="%3", state="gone"),
    )
    kinds = ["info", "question", "answer", "blocked", "done", "review", "ack", "urgent"]
    people = [("alice", ("bob",)), ("bob", ("alice",)), ("carol", ("all",))]
    append(
        swarm,
        [
            rec(
                i,
                f"step {i}: {kinds[i % len(kinds)]} about src/module_{i % 5}.py",
                sender=people[i % 3][0],
                to=people[i % 3][1],
                type=kinds[i % len(kinds)],
            )
            for i in range(40)
        ],
    )
    append(swarm, [rec(41, "claimed task T0001", sender="claudeswarm", to=("all",), type="task")])


def _app(swarm: Swarm) -> MonitorApp:
    assert swarm.clock() == T0
    return create_app(swarm, ring_size=100, poll=0.05)


async def _ready(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, MonitorApp)
    while not app.ready:
        await pilot.pause(0.02)
    await pilot.pause()


def test_main_screen_with_every_panel(
    snap_compare: Compare, swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks and tasks through fake modules (not on this branch), injected in sys.modules."""
    install_fakes(monkeypatch, sample_fakes())
    _fill(swarm)
    assert snap_compare(_app(swarm), terminal_size=SIZE, run_before=_ready)


def test_not_available_yet_with_a_filter(
    snap_compare: Compare, swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks and tasks hidden from import: the panels say "not available yet"."""
    hide_modules(monkeypatch, "locks.manager", "tasks.board")
    _fill(swarm)

    async def run_before(pilot: Pilot[None]) -> None:
        await _ready(pilot)
        await pilot.press("slash", *"t:question,answer", "enter")
        await pilot.pause()

    assert snap_compare(_app(swarm), terminal_size=SIZE, run_before=run_before)


def test_detail_of_a_hostile_message(
    snap_compare: Compare, swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks and tasks hidden from import: the panels say "not available yet"."""
    hide_modules(monkeypatch, "locks.manager", "tasks.board")
    _fill(swarm)
    hostile = "\x1b]0;pwned\x07\x1b[2J[bold red]not markup[/]\n\u202eevil\x9b1m\r\nend"
    append(swarm, [rec(50, hostile, sender="mallory", to=("all",), type="urgent")])

    async def run_before(pilot: Pilot[None]) -> None:
        await _ready(pilot)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(_app(swarm), terminal_size=SIZE, run_before=run_before)


def test_paused_with_the_cursor_up_and_help(
    snap_compare: Compare, swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks and tasks hidden from import: the panels say "not available yet"."""
    hide_modules(monkeypatch, "locks.manager", "tasks.board")
    _fill(swarm)

    async def run_before(pilot: Pilot[None]) -> None:
        await _ready(pilot)
        await pilot.press("up", "up", "up")
        append(swarm, [rec(60 + i) for i in range(3)])
        app = pilot.app
        assert isinstance(app, MonitorApp)
        while app.messages.waiting < 3:
            await pilot.pause(0.02)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(_app(swarm), terminal_size=SIZE, run_before=run_before)
