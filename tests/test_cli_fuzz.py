"""Adversarial fuzz over argv: every registered command x hostile argument forms.

The commands are found by walking the typer app (a new command is fuzzed without
touching this file). Each case puts one hostile value into one parameter of one command,
fills the other required arguments with good values, and runs the CLI as a real process
against a state directory holding a few planted good records. Every case must:

- exit with a documented code (README "Exit codes": 0 to 4);
- print at most one line on stderr, never a traceback;
- return within :data:`TIMEOUT` (a hang bound, not a timing assertion);
- write nothing outside the state directory (``hook install`` writes ``.claude/``: its
  job), and leave no file in ``tasks/tmp``;
- leave the planted agent, message, lease and task intact.

Invalid UTF-8 must be refused (exit 2), and so must out-of-range numbers given to a
duration, time or count option. The default count is small; ``CLAUDESWARM_STRESS=N``
runs ``N x 300`` cases (capped at every case there is). The cases come from a fixed
seed; ``CLAUDESWARM_FUZZ_SEED`` picks another, and a failure names the seed and argv.
"""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import REPO

from claudeswarm.errors import EXIT_USAGE

STRESS = max(0, int(os.environ.get("CLAUDESWARM_STRESS", "0") or 0))
SEED = int(os.environ.get("CLAUDESWARM_FUZZ_SEED", "9") or 9)
COUNT = 300 * STRESS if STRESS else 100
TIMEOUT = 30.0
DOCUMENTED_EXITS = {0, 1, 2, 3, 4}

#: the longest single argument Linux accepts (MAX_ARG_STRLEN, 32 pages, with the NUL);
#: "huge" is one such argument, or eight of them (1 MiB) where a parameter repeats
ARG_MAX_ONE = 32 * 4096 - 1
#: NUL cannot be in argv at all, so no form holds it
CONTROLS = "".join(chr(c) for c in range(1, 32)) + "\x7f"


def forms(outside: Path) -> dict[str, str]:
    """Hostile values by name (``outside`` is a directory beside the project)."""
    return {
        "invalid-utf8": os.fsdecode(b"\xff\xfe"),
        "invalid-utf8-inside": "src/" + os.fsdecode(b"a\xc3\x28b") + ".py",
        "empty": "",
        "blank": "   ",
        "huge": "a" * ARG_MAX_ONE,
        "newline": "a\nb",
        "escape": "\x1b[2J\x1b]0;pwned\x07",
        "controls": CONTROLS,
        "c1-bidi": "\x9b\u202eevil\u200d",
        "leading-dash": "-x",
        "double-dash": "--",
        "option-like": "--json",
        "negative": "-1",
        "zero": "0",
        "huge-number": "9" * 30,
        "nan": "nan",
        "inf": "inf",
        "minus-inf": "-inf",
        "exponent": "1e400",
        "overflow-duration": "99999999999d",
        "overflow-date": "9999-12-31T23:59:59-14:00",
        "year-one": "0001-01-01",
        "dotdot": "../../outside/x",
        "absolute-outside": str(outside / "x"),
        "absolute-system": "/etc/passwd",
        "glob-deep-stars": "/".join(["**"] * 64),
        "glob-brackets": "[" * 500 + "]",
        "glob-class": "[!" + "a-z" * 200 + "]" * 3,
        "glob-stars": "*" * 4000 + "?",
        "glob-mixed": "src/**/[a-" + "*?" * 500,
    }


#: a parameter type whose values these forms must never pass (click type names)
RANGED = {"count", "duration", "when"}
OUT_OF_RANGE = {"huge-number", "nan", "inf", "minus-inf", "exponent", "overflow-duration"}

#: good values for required parameters, by parameter name ("@task"/"@msg": planted ids)
GOOD: dict[str, list[str]] = {
    "to": ["alice"],
    "message": ["hello from the fuzzer"],
    "value": ["busy"],
    "message_id": ["@msg"],
    "patterns": ["docs/fuzz.md"],
    "path": ["src/app.py"],
    "title": ["fuzz task"],
    "task_id": ["@task"],
    "reason": ["fuzzing"],
}
#: flags that make a command exercise more of its options (monitor without --once
#: stops at "needs a terminal")
EXTRA = {("monitor",): ["--once"]}
#: --settings names the file ``hook install`` writes, anywhere: writing there is its job
SKIP = {(("hook", "install"), "settings")}


@dataclass(frozen=True)
class Case:
    path: tuple[str, ...]
    param: str
    form: str
    argv: tuple[str, ...]
    ranged: bool

    def show(self) -> str:
        shown = [a if len(a) < 60 else f"{a[:20]}...<{len(a)} chars>" for a in self.argv]
        return f"[seed {SEED}] {self.form} in {self.param}: claudeswarm {shown!r}"


def commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every leaf command of the app as ``(path, click command)``."""
    from claudeswarm.cli import build_app

    out = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), typer.main.get_command(build_app()))]
    while stack:
        path, cmd = stack.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            stack.extend(((*path, name), sub) for name, sub in subs.items())
        else:
            out.append((path, cmd))
    return sorted(out, key=lambda c: c[0])


def build(path: tuple[str, ...], cmd: Any, target: Any, values: list[str]) -> tuple[str, ...]:
    """argv for ``path`` with ``values`` in parameter ``target``, good values elsewhere
    (``target`` ``None``: ``values`` are extra arguments after the good ones)."""
    argv: list[str] = [*path, *EXTRA.get(path, [])]
    options: list[str] = []
    for p in cmd.params:
        is_arg = p.param_type_name == "argument"
        if p is target:
            chosen = values
        elif p.required:
            chosen = GOOD.get(p.name, ["x"])
        else:
            continue
        if is_arg:
            argv.extend(chosen)
        else:
            for v in chosen:
                options.extend([p.opts[0], v])
    return (*argv, *options, *(values if target is None else ()))


def cases(outside: Path) -> list[Case]:
    """Every (command, parameter, form), shuffled with the seed, then interleaved by
    command so that even a short run reaches every command."""
    rng = random.Random(SEED)
    by_command: list[list[Case]] = []
    for path, cmd in commands():
        mine = []
        for p in [*cmd.params, None]:  # None: an extra argument nobody asked for
            if p is not None and (getattr(p, "is_flag", False) or (path, p.name) in SKIP):
                continue
            repeats = p is None or (p.param_type_name == "argument" and p.nargs == -1) or p.multiple
            for name, value in forms(outside).items():
                values = [value] * (8 if repeats and name == "huge" else 1)
                ranged = p is not None and p.type.name in RANGED and name in OUT_OF_RANGE
                label = "extra argument" if p is None else p.name
                mine.append(Case(path, label, name, build(path, cmd, p, values), ranged))
        rng.shuffle(mine)
        by_command.append(mine)
    rng.shuffle(by_command)
    out: list[Case] = []
    while any(by_command):
        for group in by_command:
            if group:
                out.append(group.pop())
    return out


# -- the sandbox --------------------------------------------------------------------------


@dataclass
class Sandbox:
    top: Path
    project: Path
    state: Path
    env: dict[str, str]
    planted: dict[str, Any]


def plant(top: Path) -> Sandbox:
    """A project with a state directory holding one good record of each kind."""
    from conftest import register

    from claudeswarm.locks.manager import Holder, LockManager
    from claudeswarm.messages.service import send
    from claudeswarm.swarm import open_swarm
    from claudeswarm.tasks.board import TaskBoard

    project = top / "proj"
    (project / ".git").mkdir(parents=True)
    (project / "src").mkdir()
    (project / "src" / "app.py").write_text("print('hi')\n")
    for d in ("outside", "home", "tmux"):
        (top / d).mkdir()
    (top / "outside" / "sentinel").write_text("keep\n")
    state = project / ".claudeswarm"
    sw = open_swarm(str(state))
    from claudeswarm.storage.paths import ensure_state

    ensure_state(sw.paths)
    # alice lives outside the fuzzer's ancestry (pid 1 outlives every case); the fuzzer is
    # this test process, the parent of every case
    register(sw.paths, "alice", pid=1)
    register(sw.paths, "fuzzer")
    msg = send(sw, "alice", ["fuzzer"], "planted message")
    alice = Holder.for_process("alice", pid=1)
    lease = LockManager(sw, alice).acquire(["src/**"], reason="planted")
    task = TaskBoard(sw).add("planted task", created_by="alice", body="planted body")
    sw.close()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAUDESWARM_", "TMUX")) and k != "HOME"
    }
    env.update(
        PYTHONPATH=str(REPO),
        CLAUDESWARM_HOME=str(state),
        CLAUDESWARM_AGENT="fuzzer",
        HOME=str(top / "home"),
        TMUX_TMPDIR=str(top / "tmux"),  # no tmux server: discover exits 4, nothing typed
    )
    planted = {"msg": msg.id, "lease": lease.generation, "task": task.id}
    return Sandbox(top, project, state, env, planted)


def snapshot(box: Sandbox) -> dict[str, tuple[int, int, int]]:
    """Every path in the sandbox outside the state directory: (mode, size, mtime)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(box.top):
        if Path(dirpath) == box.project:
            dirnames[:] = [d for d in dirnames if d != ".claudeswarm"]
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            mtime = 0 if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
            out[str(p.relative_to(box.top))] = (st.st_mode, st.st_size, mtime)
    return out


def check_planted(box: Sandbox) -> None:
    from claudeswarm.agents import registry
    from claudeswarm.locks.manager import list_leases
    from claudeswarm.storage.files.tailer import read_recent
    from claudeswarm.swarm import open_swarm
    from claudeswarm.tasks.board import list_tasks

    sw = open_swarm(str(box.state))
    try:
        assert "alice" in registry.load(sw.paths), "planted agent lost"
        ids = {r.id for r in read_recent(sw.paths, 10**6, lambda r: True)}
        assert box.planted["msg"] in ids, "planted message lost"
        leases = {lease.generation: lease for lease in list_leases(sw)}
        lease = leases.get(box.planted["lease"])
        assert lease is not None and lease.patterns == ("src/**",), "planted lease lost"
        tasks = {t.id: t for t in list_tasks(sw)}
        task = tasks.get(box.planted["task"])
        assert task is not None and (task.title, task.body) == ("planted task", "planted body")
    finally:
        sw.close()


def run_case(box: Sandbox, case: Case) -> None:
    argv = [
        a.replace("@task", box.planted["task"]).replace("@msg", box.planted["msg"])
        for a in case.argv
    ]
    before = snapshot(box)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "claudeswarm", *(os.fsencode(a) for a in argv)],
            cwd=box.project,
            env=box.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{case.show()}: no exit within {TIMEOUT:.0f}s") from None
    err = out.stderr.decode("utf-8", "replace")
    where = f"{case.show()}: exit {out.returncode}, stderr {err[:2000]!r}"
    assert b"Traceback" not in out.stderr, where
    assert out.returncode in DOCUMENTED_EXITS, where
    assert out.stderr.count(b"\n") <= 1, where
    if case.form.startswith("invalid-utf8") or case.ranged:
        assert out.returncode == EXIT_USAGE, where
    after = snapshot(box)
    changed = {
        p
        for p in before.keys() | after.keys()
        if before.get(p) != after.get(p)
        and not (case.path == ("hook", "install") and p.startswith("proj/.claude"))
    }
    assert not changed, f"{where}: wrote outside the state directory: {sorted(changed)}"
    leftovers = list((box.state / "tasks" / "tmp").glob("*"))
    assert not leftovers, f"{where}: left {leftovers} in tasks/tmp"
    try:
        check_planted(box)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from None


@pytest.mark.timeout(120 + 2 * COUNT)  # ~0.1 s a case; the per-case bound is TIMEOUT
def test_every_command_against_hostile_arguments(tmp_path: Path) -> None:
    box = plant(tmp_path)
    chosen = cases(tmp_path / "outside")[:COUNT]
    failures = []
    for case in chosen:
        try:
            run_case(box, case)
        except AssertionError as exc:  # go on: one run shows every kind of failure
            failures.append(str(exc).splitlines()[0])
    shown = "\n".join(failures[:25])
    assert not failures, f"{len(failures)} of {len(chosen)} cases failed (seed {SEED}):\n{shown}"


def test_the_case_list_reaches_every_command_and_parameter(tmp_path: Path) -> None:
    """The walk finds every command (with its subcommands) and every valued option."""
    from claudeswarm.cli import COMMANDS

    found = {c[0][0] for c in commands()}
    assert found == set(COMMANDS)
    all_cases = cases(tmp_path)
    params = {(c.path, c.param) for c in all_cases}
    assert ((("task", "add"), "title")) in params and ((("log",), "since")) in params
    first = all_cases[: len(commands())]
    assert {c.path for c in first} == {c[0] for c in commands()}  # a short run sees them all
    assert len(commands()) <= COUNT
