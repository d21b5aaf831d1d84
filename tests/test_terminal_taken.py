"""Who reads an agent's terminal, decided on real processes in a real pseudo-terminal.

Each case starts a session on a fresh pty: a launcher (session leader, like ``npx``)
runs the agent (a script named ``claude``), which starts one child the way the case
says. :func:`claudeswarm.agents.discovery.terminal_taken` must say whether keys typed into the
terminal would reach the agent. ``test_tmux_editor.py`` checks the same through tmux.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from libtmux.test.retry import retry_until

from claudeswarm.agents import discovery, procs

TREE = r"""
import json, os, signal, subprocess, sys, time
role, out = sys.argv[1], sys.argv[2]
if role == "launcher":
    os.close(os.open(os.ttyname(0), os.O_RDWR))  # a session leader opening it: our terminal
    subprocess.run([sys.executable, sys.argv[0], "agent", out, sys.argv[3]])
elif role == "agent":
    case, child = sys.argv[3], None
    if case == "reader":  # an editor sharing our group: the terminal on its stdin
        child = subprocess.Popen(["sleep", "600"])
    elif case == "writer":  # a helper that only writes to the terminal
        child = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
    elif case == "helper":  # the same kind under us (an npm wrapper's native binary)
        child = subprocess.Popen([sys.executable, sys.argv[0], "helper", out])
    elif case == "own-group":  # an editor in a group of its own, in the foreground
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "600"], process_group=0)
        os.tcsetpgrp(0, child.pid)
    with open(out + ".tmp", "w") as fh:
        json.dump({"agent": os.getpid(), "child": child.pid if child else None}, fh)
    os.replace(out + ".tmp", out)
    time.sleep(600)
else:
    time.sleep(600)
"""


Pids = dict[str, int | None]  # the agent's, and its child's if the case has one
Start = Callable[[str], Pids]


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Start]:
    script = tmp_path / "claude"
    script.write_text(TREE)
    started: list[tuple[subprocess.Popen[bytes], int, Pids]] = []

    def start(case: str) -> Pids:
        master, slave = os.openpty()
        out = tmp_path / f"{case}.json"
        proc = subprocess.Popen(
            [sys.executable, str(script), "launcher", str(out), case],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        retry_until(out.exists, 30)
        pids: Pids = json.loads(out.read_text())
        started.append((proc, master, pids))
        return pids

    yield start
    for proc, master, pids in started:
        for pid in (pids["child"], pids["agent"]):
            if pid:
                os.kill(pid, signal.SIGKILL)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)


def _taken(agent: int | None) -> str:
    assert agent is not None
    return discovery.terminal_taken(procs.snapshot(), agent, "claude")


def test_the_agent_alone_and_its_launcher_leave_the_terminal_to_the_agent(tree: Start) -> None:
    pids = tree("none")
    assert _taken(pids["agent"]) == ""


def test_a_writer_only_or_a_same_kind_helper_does_not_take_it(tree: Start) -> None:
    for case in ("writer", "helper"):
        assert _taken(tree(case)["agent"]) == "", case


def test_an_editor_in_the_agents_group_takes_it(tree: Start) -> None:
    pids = tree("reader")
    assert _taken(pids["agent"]) == f"sleep (pid {pids['child']}) reads the agent's terminal"


def test_an_editor_in_its_own_foreground_group_takes_it(tree: Start) -> None:
    pids = tree("own-group")
    want = f"the terminal's foreground is sleep (pid {pids['child']}), not the agent"
    assert _taken(pids["agent"]) == want
