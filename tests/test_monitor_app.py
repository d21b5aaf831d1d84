"""The monitor app under Textual's pilot: live messages, the ring, filters, pause,
rotation, inert bodies, detail and help, panels filled on change."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from monitor_support import (
    REPO,
    FakeTask,
    add_agents,
    agent,
    append,
    hide_modules,
    install_fakes,
    rec,
    sample_fakes,
    spawn_writer,
    wait_for,
)

from claudeswarm.messages import service as messaging
from claudeswarm.monitor.app import MonitorApp, create_app
from claudeswarm.monitor.data import Section
from claudeswarm.monitor.screens import DetailScreen, HelpScreen
from claudeswarm.monitor.widgets.messages import row_text
from claudeswarm.monitor.widgets.panels import SectionPanel
from claudeswarm.storage.files.log import archives
from claudeswarm.swarm import Swarm

SIZE = (120, 36)
STRESS = int(os.environ.get("CLAUDESWARM_STRESS", "1") or 1)
pytestmark = pytest.mark.timeout(120)


def bodies(app: MonitorApp) -> list[str]:
    return [r.body for r in app.messages.ring]


def shown(app: MonitorApp) -> list[str]:
    return [r.body for r in app.messages.shown]


def test_recent_on_start_then_live_from_another_process(swarm: Swarm) -> None:
    append(swarm, [rec(i) for i in range(50)])

    async def scenario() -> None:
        app = create_app(swarm, ring_size=1000, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            assert bodies(app) == [f"message {i}" for i in range(50)]
            writer = spawn_writer(swarm.paths, "live", 300)
            await wait_for(pilot, lambda: writer.poll() is not None and app.messages.seen >= 350)
            assert writer.returncode == 0
            assert bodies(app)[50:] == [f"live-{i}" for i in range(300)]
            assert shown(app)[-1] == "live-299"  # following: the newest is drawn

    asyncio.run(scenario())


def test_start_while_a_writer_appends_loses_and_repeats_nothing(swarm: Swarm) -> None:
    """The tail opens at the end first, then reads backwards: records racing the start
    are neither lost nor shown twice."""
    count = 3000 * STRESS

    async def scenario() -> None:
        writer = spawn_writer(swarm.paths, "race", count, batch=5)
        while not (swarm.paths.log.exists() and swarm.paths.log.stat().st_size):
            await asyncio.sleep(0.002)  # the app starts while the writer runs
        app = create_app(swarm, ring_size=count + 10, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: writer.poll() is not None and app.messages.seen >= count)
            await pilot.pause(0.2)
            assert sorted(bodies(app)) == sorted(f"race-{i}" for i in range(count))
            assert app.messages.seen == count

    asyncio.run(scenario())


def test_ring_never_holds_more_than_its_bound(swarm: Swarm) -> None:
    append(swarm, [rec(i) for i in range(200)])

    async def scenario() -> None:
        app = create_app(swarm, ring_size=64, poll=0.01)
        async with app.run_test(size=SIZE) as pilot:
            assert len(app.messages.ring) == 64
            for n in range(20 * STRESS):
                append(swarm, [rec(1000 + n * 50 + i) for i in range(50)])
                await pilot.pause(0.01)
                assert len(app.messages.ring) <= 64
                assert len(app.messages.shown) <= 64
            last = 1000 + 20 * STRESS * 50 - 1
            await wait_for(pilot, lambda: bodies(app)[-1] == f"message {last}")
            assert bodies(app) == [f"message {i}" for i in range(last - 63, last + 1)]

    asyncio.run(scenario())


def test_rotation_during_the_run_loses_nothing(swarm: Swarm) -> None:
    count = 2000 * STRESS

    async def scenario() -> None:
        app = create_app(swarm, ring_size=count, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            writer = spawn_writer(swarm.paths, "rot", count, batch=7, rotate_bytes=8192)
            await wait_for(pilot, lambda: writer.poll() is not None and app.messages.seen >= count)
            await pilot.pause(0.2)
            assert bodies(app) == [f"rot-{i}" for i in range(count)]
            assert app.messages.seen == count
            assert len(archives(swarm.paths)) >= 10  # it really rotated, many times

    asyncio.run(scenario())


def test_filters_by_type_agent_and_text(swarm: Swarm) -> None:
    append(
        swarm,
        [
            rec(1, "deploy now?", type="question"),
            rec(2, "yes deploy", sender="bob", to=("alice",), type="answer"),
            rec(3, "lunch", sender="carol", to=("all",)),
            rec(4, "deploy failed", sender="carol", to=("bob",), type="blocked"),
        ],
    )

    async def scenario() -> None:
        app = create_app(swarm, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:

            async def apply(line: str) -> None:
                await pilot.press("slash")
                await pilot.press(*line)
                await pilot.press("enter")
                await pilot.pause()

            await apply("t:question")
            assert shown(app) == ["deploy now?"]
            await apply("agent:carol")
            assert shown(app) == ["lunch", "deploy failed"]
            await apply("to:bob deploy")  # the broadcast reaches bob but lacks "deploy"
            assert shown(app) == ["deploy now?", "deploy failed"]
            await apply("from:bob,carol")
            assert shown(app) == ["yes deploy", "lunch", "deploy failed"]
            append(swarm, [rec(5, "from alice again"), rec(6, "bob again", sender="bob")])
            await wait_for(pilot, lambda: len(app.messages.ring) == 6)
            assert shown(app)[-1] == "bob again"  # new records pass the same filter
            await apply("[bold]x[/")  # markup-looking text is just text (and no crash)
            assert shown(app) == []
            svg = app.export_screenshot().replace("&#160;", " ")
            assert "filter: [bold]x[/" in svg
            await apply("t:nonsense")  # refused: the filter stays as it was
            assert app.messages.filter_text == "[bold]x[/"
            await pilot.press("escape")  # clears the filter
            await pilot.pause()
            assert len(shown(app)) == 6
            assert app.messages.filter_text == ""

    asyncio.run(scenario())


def test_pause_freezes_the_view_and_follow_catches_up(swarm: Swarm) -> None:
    append(swarm, [rec(i) for i in range(5)])

    async def scenario() -> None:
        app = create_app(swarm, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("space")
            assert not app.messages.following
            append(swarm, [rec(i) for i in range(5, 25)])
            await wait_for(pilot, lambda: len(app.messages.ring) == 25)
            assert len(shown(app)) == 5  # frozen
            assert "+20 new" in str(app.messages.border_subtitle)
            await pilot.press("space")
            assert app.messages.following
            assert shown(app) == [f"message {i}" for i in range(25)]
            await pilot.press("up")  # moving the cursor pauses too
            assert not app.messages.following
            await pilot.press("end")
            assert app.messages.following

    asyncio.run(scenario())


NASTY = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred[bold]markup[/bold]\u202eevil\x9b1m\nline2\r"


def test_a_body_full_of_escapes_renders_as_text(swarm: Swarm) -> None:
    append(swarm, [rec(1, NASTY, type="urgent")])

    async def scenario() -> None:
        app = create_app(swarm, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            line = row_text(app.messages.shown[0]).plain
            assert "\\x1b]0;pwned\\x07\\x1b[2J" in line
            assert "[bold]markup[/bold]" in line  # literal text, not markup
            assert "\\u202e" in line
            assert "\\x9b" in line
            assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in line)
            screen = app.export_screenshot()
            assert "\x1b" not in screen
            assert "\x9b" not in screen
            assert "[bold]markup" in screen.replace("&#160;", " ")
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen)
            detail = app.export_screenshot()
            assert "\x1b" not in detail
            assert "line2\\x0d" in detail  # newline kept, carriage return shown
            await pilot.press("escape")
            assert not isinstance(app.screen, DetailScreen)

    asyncio.run(scenario())


def test_help_and_detail_screens(swarm: Swarm) -> None:
    append(swarm, [rec(1, "first"), rec(2, "second", type="question")])

    async def scenario() -> None:
        app = create_app(swarm, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen)
            assert app.screen.record.body == "second"
            await pilot.press("escape", "up", "enter")
            assert isinstance(app.screen, DetailScreen)
            assert app.screen.record.body == "first"

    asyncio.run(scenario())


def test_panels_say_not_available_then_fill_in(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``claudeswarm.locks.manager``/``claudeswarm.tasks.board`` (hidden from import)
    the panels say so; with stand-in modules injected in ``sys.modules`` (to control their data) the
    same app fills them in, with no change to the monitor."""

    async def scenario(expect_available: bool) -> dict[str, Section]:
        app = create_app(swarm, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.ready)
            found = {p.id or "": p.section for p in app.query(SectionPanel) if p.section}
        for name in ("locks", "tasks"):
            assert found[name].available is expect_available
            if not expect_available:
                assert found[name].note == "not available yet"
        return found

    with monkeypatch.context() as hidden:
        hide_modules(hidden, "locks.manager", "tasks.board")
        asyncio.run(scenario(False))
    install_fakes(monkeypatch, sample_fakes())
    found = asyncio.run(scenario(True))
    locks = found["locks"]
    assert [r.pattern for r in locks.rows] == ["src/auth/**", "docs/*.md, README.md"]
    assert [r.left for r in locks.rows] == ["9m", "expired"]
    tasks = found["tasks"]
    assert dict(tasks.counts) == {
        "pending": 1,
        "claimed": 2,
        "done": 1,
        "failed": 0,
        "ghosts": 1,
    }


def test_panels_reload_only_when_their_files_change(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake ``claudeswarm.locks.manager``/``claudeswarm.tasks.board`` (not on this branch) count how
    often they are read: polling alone reads nothing; a changed file reloads its panel.
    (The files are dated 1 s back: one changed less than 0.2 s before a look is looked
    at once more when it has settled.)"""
    fakes = sample_fakes()
    install_fakes(monkeypatch, fakes)
    past = time.time_ns() - 10**9
    for state in ("pending", "claimed", "done", "failed"):
        (swarm.paths.state / "tasks" / state).mkdir(parents=True)
        os.utime(swarm.paths.state / "tasks" / state, ns=(past, past))
    (swarm.paths.file("locks.json")).write_text("{}")
    os.utime(swarm.paths.file("locks.json"), ns=(past, past))

    async def scenario() -> None:
        app = create_app(swarm, poll=0.01)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.ready)
            calls = (fakes.lease_calls, fakes.task_calls)
            append(swarm, [rec(i) for i in range(30)])  # many polls, no panel file touched
            await wait_for(pilot, lambda: len(app.messages.ring) == 30)
            await pilot.pause(0.3)
            assert (fakes.lease_calls, fakes.task_calls) == calls
            fakes.tasks.append(FakeTask("T0005", "new one", "pending"))
            (swarm.paths.state / "tasks" / "pending" / "T0005.json").write_text("{}")
            tasks = app.query_one("#tasks")
            await wait_for(pilot, lambda: len(tasks.section.rows) == 5)  # type: ignore[attr-defined]
            assert fakes.lease_calls == calls[0]
            fakes.leases.pop()
            swarm.paths.file("locks.json").write_text('{"changed": 1}')
            locks = app.query_one("#locks")
            await wait_for(pilot, lambda: len(locks.section.rows) == 1)  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_agents_and_unread_counts_follow_cursors(swarm: Swarm) -> None:
    add_agents(swarm, agent("alice"), agent("bob", state="busy"))
    append(swarm, [rec(i, to=("bob",)) for i in range(7)] + [rec(9, to=("all",))])

    async def scenario() -> None:
        app = create_app(swarm, poll=0.02)
        panel = None
        async with app.run_test(size=SIZE) as pilot:
            panel = app.query_one("#agents")

            def unread() -> dict[str, str]:
                rows = panel.section.rows  # type: ignore[attr-defined]
                return {r.name: r.unread for r in rows}

            await wait_for(pilot, lambda: unread() == {"alice": "0", "bob": "8"})
            messaging.inbox(swarm, "bob", limit=3)  # bob reads three: his cursor moves
            await wait_for(pilot, lambda: unread()["bob"] == "5")
            append(swarm, [rec(20, to=("bob",)), rec(21, sender="bob", to=("alice",))])
            await wait_for(pilot, lambda: unread() == {"alice": "1", "bob": "6"})
            add_agents(swarm, agent("carol", pid=2**22 + 12345))  # no such process
            await wait_for(pilot, lambda: "carol" in unread())
            rows = {r.name: r for r in panel.section.rows}  # type: ignore[attr-defined]
            assert rows["carol"].state == "gone"
            assert rows["bob"].state == "busy"
            assert rows["carol"].unread == "1"  # the broadcast

    asyncio.run(scenario())


def test_ring_size_comes_from_the_setting(swarm: Swarm) -> None:
    sw = Swarm(swarm.paths, replace(swarm.settings, monitor_ring=7), swarm.clock)
    assert create_app(sw).ring_size == 7
    assert create_app(sw, ring_size=3).ring_size == 3
    with pytest.raises(Exception, match="at least 1"):
        create_app(sw, ring_size=0)


def test_enter_on_an_agent_filters_its_messages(swarm: Swarm) -> None:
    add_agents(swarm, agent("alice"), agent("bob"), agent("carol"))
    append(swarm, [rec(1, "a to b"), rec(2, "c to a", sender="carol", to=("alice",))])
    append(swarm, [rec(3, "b to c", sender="bob", to=("carol",))])

    async def scenario() -> None:
        app = create_app(swarm, poll=0.02)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.ready)
            app.query_one("#agents DataTable").focus()
            await pilot.press("down", "down", "enter")  # carol
            assert app.messages.filter_text == "agent:carol"
            assert shown(app) == ["c to a", "b to c"]
            assert app.focused is app.messages

    asyncio.run(scenario())


def test_the_monitor_loads_no_tmux_code() -> None:
    """It never opens panes or starts itself: it does not even import the tmux layer."""
    code = (
        "import sys\n"
        "import claudeswarm.monitor.app, claudeswarm.cli.monitor\n"
        "print([m for m in sys.modules if 'tmux' in m])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"
