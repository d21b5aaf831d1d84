"""Nudges on a real tmux server: one inert line + one Enter, never into a bare shell."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import register
from libtmux.test.retry import retry_until
from tmux_lab import WAIT, FakeAgent, Lab, pid_alive

from claudeswarm.errors import EXIT_REFUSED
from claudeswarm.messages.record import MessageRecord
from claudeswarm.storage.paths import resolve
from claudeswarm.tmux import delivery

pytestmark = pytest.mark.tmux
STRESS = int(os.environ.get("CLAUDESWARM_STRESS", "1") or 1)
HEAD = re.compile(r"claudeswarm: [a-z]+ from [a-z0-9._-]+(?: \+(\d+) more)?: '")
LINE = re.compile(
    r"claudeswarm: [a-z]+ from [a-z0-9._-]+(?: \+\d+ more)?: '[^']*' - read it: claudeswarm inbox"
)


@pytest.fixture
def session_params() -> dict[str, Any]:
    return {"x": 250, "y": 80}


def hostile(marker_dir: Path) -> list[str]:
    """Bodies that would do harm if typed into a pane as they are."""
    m = marker_dir
    return [
        f"first line\ntouch {m}/newline\nlast",
        f"carriage\rtouch {m}/cr\r",
        "interrupt \x03 now \x03",
        "\x1b[2J\x1b]0;owned title\x07\x1b[31mred",
        f"\x1b[201~touch {m}/paste\n\x1b[200~",
        "Enter",
        "C-c",
        "-n leading dash",
        "--help",
        f"trailing semicolon; touch {m}/semi;",
        "x" * 20 * 1024,
        "emoji 🎉🚀👩‍💻 done",
        "עברית مرحبا \u202eevil\u202c ok",
        f"$(touch {m}/subst) `touch {m}/tick` !! ${{HOME}}",
        f"' ; touch {m}/quote ; '",
    ]


def _lab(server: Any, session: Any, project: Path, **env: str) -> Lab:
    lab = Lab(server, session, project, CLAUDESWARM_BODY_MAX_BYTES="30000", **env)
    # the sender, outside tmux (no pane), a process of its own: were it this test's process
    # (``join`` from here), every CLI call of the test would be bob (process ancestry)
    register(resolve(str(project / ".claudeswarm")), "bob")
    return lab


def _send(lab: Lab, to: str, body: str, *opts: str, sender: str = "bob") -> MessageRecord:
    out = lab.cli("send", "--as", sender, "--json", *opts, "--", to, body)
    assert out.returncode == 0, out.stderr
    return MessageRecord.from_json(json.loads(out.stdout))


def _lines(agent: FakeAgent) -> list[bytes]:
    raw = agent.raw()
    assert raw.endswith(b"\r") or not raw
    return raw.split(b"\r")[:-1]


def test_injection_suite_one_inert_line_and_one_enter_each(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project)
    ann = lab.fake("claude", join="ann")
    markers = project.parent / "markers"
    markers.mkdir()
    bodies = hostile(markers)
    sent = []
    for body in bodies:
        rec = _send(lab, "ann", body)
        sent.append(rec)
        retry_until(lambda r=rec: r.id in ann.read_ids(), WAIT)  # type: ignore[misc]
    lines = _lines(ann)
    assert len(lines) == len(bodies)  # exactly one Enter per message
    raw = ann.raw()
    assert raw.count(b"\r") == len(bodies)
    assert not any(b < 0x20 and b != 0x0D for b in raw)  # no ESC, ^C, LF, BEL...
    assert b"\x7f" not in raw
    for rec, line in zip(sent, lines, strict=True):
        text = line.decode("utf-8")
        assert LINE.fullmatch(text), text
        assert text == delivery.nudge_line(rec, 60)
        assert len(text) < 160
    # the log is the truth: every body arrived whole through the inbox
    read = [b for e in ann.events("read") for b in e["bodies"]]
    assert read == bodies
    assert list(markers.iterdir()) == []


def test_a_bash_pane_never_executes_anything_from_a_message(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project)
    markers = project.parent / "markers"
    markers.mkdir()
    # 1. a shell that joined: registered, but no agent runs there, so nothing is typed
    shell = lab.bash()
    assert lab.typed(shell, "join", "shelly")[0] == 0
    assert lab.cli("state", "idle", "--as", "shelly").returncode == 0
    for body in hostile(markers):
        _send(lab, "shelly", body)
    entries = lab.wait_nudges(len(hostile(markers)))
    assert {e["outcome"] for e in entries} == {"skipped"}
    assert "claudeswarm:" not in lab.screen(shell)

    # 2. defence in depth: even typed into bash by mistake, a nudge line runs nothing
    victim = lab.bash()
    for i, body in enumerate(hostile(markers)):
        rec = MessageRecord(f"id{i}", "2026-01-01T00:00:00.000Z", "bob", ("x",), "info", body)
        lab.tm.send_literal(victim, delivery.nudge_line(rec, 60))
        lab.tm.send_enter(victim)
    done = markers / "sentinel"
    lab.tm.send_literal(victim, f"touch {done}")
    lab.tm.send_enter(victim)
    retry_until(done.exists, WAIT)  # bash has processed every line before this one
    assert [p.name for p in markers.iterdir()] == ["sentinel"]


def test_agent_exited_to_a_bare_shell_receives_nothing(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project)
    ann = lab.fake("claude", join="ann", under_bash=True)
    first = _send(lab, "ann", "are you there?")
    retry_until(lambda: first.id in ann.read_ids(), WAIT)
    before = ann.raw()
    os.kill(ann.pid, signal.SIGTERM)
    retry_until(lambda: not pid_alive(ann.pid), WAIT)
    screen_before = lab.screen(ann.pane)

    rec = _send(lab, "ann", "hello?\nrm -rf /tmp/nothing")
    (entry,) = lab.wait_nudges(1, rec.id)
    assert entry["outcome"] == "skipped"
    assert "exited" in entry["reason"]
    assert lab.screen(ann.pane) == screen_before
    assert ann.raw() == before
    status = lab.statuses(rec.id)["ann"]
    assert status["nudged"] is None
    assert status["read"] is None
    peek = lab.cli("inbox", "--as", "ann", "--peek", "--json")
    assert [m["id"] for m in json.loads(peek.stdout)["messages"]] == [rec.id]


@pytest.mark.stress
def test_four_senders_at_once_never_interleave(server: Any, session: Any, project: Path) -> None:
    lab = _lab(server, session, project, CLAUDESWARM_NUDGE_ENTER_DELAY="0.3")
    ann = lab.fake("claude", join="ann", flags=("--ignore",))  # never reads: every nudge types
    senders = [f"bob{i}" for i in range(4)]
    for name in senders:
        assert lab.cli("join", name).returncode == 0
    each = 3 * STRESS
    # senders pause between messages so new nudgers keep arriving while one holds the pane
    # (a burst sent all at once would coalesce into a single nudge and test nothing)
    script = (
        "import subprocess, sys, time\n"
        "for i in range(int(sys.argv[2])):\n"
        "    time.sleep(0.2)\n"
        "    subprocess.run([sys.executable, '-m', 'claudeswarm', 'send', '--as', sys.argv[1],"
        " 'ann', f'note {i} from ' + sys.argv[1] + ' ' + 'y' * 80], check=True)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, name, str(each)], cwd=project, env=lab.env()
        )
        for name in senders
    ]
    for p in procs:
        assert p.wait(120) == 0
    total = each * len(senders)
    entries = lab.wait_nudges(total)
    assert {e["outcome"] for e in entries} == {"nudged"}
    assert len({e["id"] for e in entries}) == total

    def announced() -> int:  # messages announced by the complete lines typed so far
        heads = [HEAD.match(ln.decode()) for ln in _lines(ann)]
        return sum(1 + int(m.group(1) or 0) for m in heads if m)

    retry_until(lambda: announced() == total, WAIT)  # a burst coalesces into "+N more"
    lines = [ln.decode() for ln in _lines(ann)]
    for line in lines:
        assert LINE.fullmatch(line), line  # whole lines only: never two nudges mixed
    who = [re.match(r"claudeswarm: info from (bob\d)", line) for line in lines]
    assert {m.group(1) for m in who if m} <= set(senders)


def test_busy_agent_waits_then_turning_idle_delivers(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project, CLAUDESWARM_NUDGE_BUSY_WAIT="0.5")
    ann = lab.fake("claude", join="ann")
    assert lab.cli("state", "busy", "--as", "ann").returncode == 0
    first = _send(lab, "ann", "when you have a moment")
    second = _send(lab, "ann", "and another one")
    for rec in (first, second):
        (entry,) = lab.wait_nudges(1, rec.id)
        assert entry["outcome"] == "pending"
    assert ann.raw() == b""  # nothing typed while busy
    assert lab.statuses(first.id)["ann"]["nudged"] is None

    out = lab.cli("state", "idle", "--as", "ann", "--json")
    assert json.loads(out.stdout)["nudging_pending"] is True
    retry_until(lambda: second.id in ann.read_ids(), WAIT)
    assert ann.raw().count(b"\r") == 1  # one nudge covers both waiting messages
    assert b"+1 more" in ann.raw()
    assert set(ann.read_ids()) == {first.id, second.id}
    assert lab.statuses(first.id)["ann"]["nudged"] is not None

    assert lab.cli("state", "busy", "--as", "ann").returncode == 0
    urgent = _send(lab, "ann", "build is on fire", "--urgent")  # nudges even a busy agent
    retry_until(lambda: urgent.id in ann.read_ids(), WAIT)
    assert [e["outcome"] for e in lab.nudges() if e["id"] == urgent.id] == ["nudged"]


def test_screen_heuristic_defers_an_agent_that_looks_busy(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project, CLAUDESWARM_NUDGE_BUSY_WAIT="0.5")
    busy = lab.fake("claude", join="ann", flags=("--busy",))
    calm = lab.fake("codex", join="cid")
    rec = _send(lab, "ann", "hi")
    (entry,) = lab.wait_nudges(1, rec.id)
    assert entry["outcome"] == "pending"
    assert busy.raw() == b""
    ok = _send(lab, "cid", "hi")
    retry_until(lambda: ok.id in calm.read_ids(), WAIT)


def test_status_reports_logged_nudged_read_honestly(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project)
    ann = lab.fake("claude", join="ann", flags=("--ignore",))
    register(resolve(str(project / ".claudeswarm")), "carl")  # no pane: logged only
    out = lab.cli("send", "--as", "bob", "ann", "carl", "status check", "--json")
    rec = json.loads(out.stdout)
    lab.wait_nudges(1, rec["id"])
    retry_until(lambda: b"\r" in ann.raw(), WAIT)
    st = lab.statuses(rec["id"])
    assert st["ann"]["nudged"] is not None
    assert st["ann"]["read"] is None
    assert st["carl"]["nudged"] is None
    assert st["carl"]["read"] is None
    text = lab.cli("status", rec["id"]).stdout
    assert "delivered" not in text
    assert "nudged, not read yet" in text
    assert "logged, not nudged" in text
    lab.cli("inbox", "--as", "ann")
    st = lab.statuses(rec["id"])
    assert st["ann"]["read"] >= st["ann"]["nudged"] >= st["ann"]["logged"]
    assert "read" in lab.cli("status", rec["id"]).stdout


def test_broadcast_nudges_every_agent_pane(server: Any, session: Any, project: Path) -> None:
    lab = _lab(server, session, project)
    agents = [lab.fake(k, join="-") for k in ("claude", "codex", "aider", "gemini", "claude")]
    out = lab.cli("broadcast", "--as", "bob", "standup in 5", "--json")
    mid = json.loads(out.stdout)["id"]
    for a in agents:
        retry_until(lambda a=a: mid in a.read_ids(), WAIT)  # type: ignore[misc]
    st = lab.statuses(mid)
    assert {n for n, r in st.items() if r["read"]} == {a.name for a in agents}


def test_sender_identity_comes_from_the_pane(server: Any, session: Any, project: Path) -> None:
    lab = _lab(server, session, project)
    ann = lab.fake("claude", join="ann", flags=("--ignore",))
    out = lab.cli("send", "bob", "from my pane", "--json", pane=ann.pane)
    assert json.loads(out.stdout)["from"] == "ann"
    spoof = lab.cli("send", "--as", "bob", "ann", "hi", pane=ann.pane)
    assert spoof.returncode == EXIT_REFUSED


def test_send_never_imports_tmux_and_mode_never_types_nothing(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project)
    ann = lab.fake("claude", join="ann")
    env = lab.env(PYTHONPROFILEIMPORTTIME="1")
    out = subprocess.run(
        [sys.executable, "-m", "claudeswarm", "send", "--as", "bob", "ann", "hi", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {ln.split("|")[-1].strip() for ln in out.stderr.splitlines() if "|" in ln}
    assert "claudeswarm.messages.service" in imported
    for heavy in (
        "libtmux",
        "textual",
        "claudeswarm.tmux.client",
        "claudeswarm.tmux.nudger",
        "filelock",
    ):
        assert heavy not in imported
    mid = json.loads(out.stdout)["id"]
    retry_until(lambda: mid in ann.read_ids(), WAIT)  # and the detached nudger did its work

    quiet = lab.cli("send", "--as", "bob", "ann", "not nudged", "--json", CLAUDESWARM_NUDGE="never")
    loud = _send(lab, "ann", "nudged")
    retry_until(lambda: loud.id in ann.read_ids(), WAIT)
    assert json.loads(quiet.stdout)["id"] not in {n["id"] for n in lab.nudges()}


def test_an_unrecognised_agent_that_joined_is_nudged_until_it_exits(
    server: Any, session: Any, project: Path
) -> None:
    lab = _lab(server, session, project)
    bot = lab.fake("helperbot", join="helper", under_bash=True)  # discovery cannot know it
    row = json.loads(lab.cli("agents", "--json").stdout)
    helper = next(r for r in row if r["name"] == "helper")
    assert (helper["kind"], helper["pid"]) == ("agent", bot.pid)  # not the bash around it
    first = _send(lab, "helper", "hello unknown agent")
    retry_until(lambda: first.id in bot.read_ids(), WAIT)

    os.kill(bot.pid, signal.SIGTERM)
    retry_until(lambda: not pid_alive(bot.pid), WAIT)
    second = _send(lab, "helper", "echo pwned")
    (entry,) = lab.wait_nudges(1, second.id)
    assert entry["outcome"] == "skipped"
    assert "claudeswarm:" not in lab.screen(bot.pane).split("(read 1 message(s))")[-1]
