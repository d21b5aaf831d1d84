"""Adversarial fuzz over state: every state file the code reads, in every hostile form.

One generated test per (state file x hostile form). Each copies a small swarm with good
records everywhere (three agents, one with a pane; messages in an archive and in the live
log, a read receipt, a nudge record, a cursor, a lease, two tasks), turns one file into its hostile
form, runs the real CLI commands that read or write that file as fresh processes, and
asserts what the README promises:

- the exit code is one of the documented ones (README "Exit codes");
- at most one line on stderr, and no traceback anywhere;
- every command returns within ``HANG`` seconds (a FIFO must never block a command);
- nothing outside the state directory changed (a sentinel tree beside the project,
  which every planted symlink points into, is compared byte for byte);
- no good record is lost: what was planted beside the hostile record still shows where
  the command can show it, and a JSON state file that moved went to ``quarantine/``.

The default run is bounded (a few MiB for the "huge" form, the commands that own each
file); ``CLAUDESWARM_STRESS=N`` makes "huge" 100 MB (sparse) and runs every command for
every case.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claudeswarm.config import Settings
from claudeswarm.locks.manager import Holder, LockManager
from claudeswarm.messages import service as messaging
from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.swarm import Swarm
from claudeswarm.tasks.board import TaskBoard
from claudeswarm.tmux.delivery import NudgeEntry, append_nudges
from tests.conftest import REPO, register

STRESS = int(os.environ.get("CLAUDESWARM_STRESS", "0") or 0)
HUGE = 100 * 1024 * 1024 if STRESS else 5 * 1024 * 1024
HANG = 30.0  # seconds: a command still running after this is hung (a FIFO blocked it)
EXIT_CODES = {0, 1, 2, 3, 4}

# -- the swarm every case starts from ------------------------------------------------------


@dataclass
class World:
    """A project with good records in every state file, and a sentinel tree outside."""

    root: Path
    paths: StatePaths
    outside: Path
    m1: str  # in archive/messages.000001.jsonl
    m2: str  # in messages.jsonl
    t1: str  # the task whose file is made hostile
    t2: str  # the task beside it
    t1_file: str
    env: dict[str, str] = field(default_factory=dict)


def build(tmp: Path) -> World:
    root = tmp / "proj"
    (root / ".git").mkdir(parents=True)
    paths = ensure_state(StatePaths(root, root / ".claudeswarm"))
    sw = Swarm(paths, Settings())
    try:
        register(paths, "a")
        register(paths, "b")
        register(paths, "c", pane="%99999")  # has a pane: sending to c queues a nudge
        m1 = messaging.send(sw, "a", ["b"], "good message one")
        sw.log.rotate()
        m2 = messaging.send(sw, "a", ["b"], "good message two")
        messaging.inbox(sw, "b", limit=1)  # b's cursor sits after m1; a receipt for m1
        ts = "2030-01-01T00:00:00.000Z"
        append_nudges(sw, [NudgeEntry(m1.id, "b", "%1", "skipped", "planted", ts)])
        LockManager(sw, Holder.for_process("a")).acquire(["src/a.py"], reason="good lease")
        board = TaskBoard(sw, announce=False)
        t1 = board.add("target task", created_by="a")
        t2 = board.add("good task", created_by="a")
    finally:
        sw.close()
    return World(root, paths, tmp / "outside", m1.id, m2.id, t1.id, t2.id, t1.name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The good swarm, built once (with the real library, fsyncs and all)."""
    return build(tmp_path_factory.mktemp("template"))


def clone(template: World, tmp: Path) -> World:
    """A private copy of the template swarm, plus a sentinel tree outside it. The one
    record naming an inode (b's cursor) is pointed at the copy's archive."""
    root = tmp / "proj"
    shutil.copytree(template.root, root, symlinks=True)
    paths = StatePaths(root, root / ".claudeswarm")
    cursor = json.loads((paths.state / "cursors" / "b.json").read_text())
    st = os.stat(paths.state / "archive" / "messages.000001.jsonl")
    cursor.update(dev=st.st_dev, ino=st.st_ino)
    (paths.state / "cursors" / "b.json").write_text(json.dumps(cursor))
    outside = tmp / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "keep").write_text("sentinel in a directory\n")
    (outside / "file").write_text("sentinel file\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDESWARM_", "TMUX"))}
    env.update(
        PYTHONPATH=str(REPO),
        CLAUDESWARM_HOME=str(paths.state),
        TMUX_TMPDIR=str(tmp),  # a nudger started by a send finds no tmux server here
        HOME=str(tmp),
    )
    w = template
    return World(root, paths, outside, w.m1, w.m2, w.t1, w.t2, w.t1_file, env)


# -- hostile forms ---------------------------------------------------------------------------

DEEP = b"[" * 100_000


def _garbage() -> bytes:
    return random.Random(9).randbytes(4096)


# what each kind of file holds when its form is "wrong types"
WRONG: dict[str, bytes] = {
    "toml": b"rotate_bytes = inf\n",
    "msg": json.dumps(
        {"v": 1, "id": ["x"], "ts": {}, "from": 1, "to": "b", "type": "info", "body": None}
    ).encode(),
    "agents": b"",  # built from the world (a good entry beside a bad one)
    "cursor": b'{"dev": [1], "ino": {}, "offset": "x", "last_id": 5}',
    "ratelimit": b'{"zzz": ["x"], "s|a": "nope"}',
    "receipt": b'{"agent": ["b"], "ts": {}, "ids": "x"}',
    "nudge": b'{"id": [1], "agent": {}, "pane": null, "outcome": 5, "reason": [], "ts": 1}',
    "journal": b'{"op": "grant", "lease": {"agent": ["x"], "patterns": "src/**"}}\n'
    b'{"op": "beat", "g": "x", "at": "y"}',
    "task": b"",  # built from the good task file with wrong-typed fields
    "queue": b"pid:x:y\n[1, 2]\n",
    "raw": b'{"x": 1}',
    "lock": b"not a lock, but locks are never read",
}

FILE_FORMS = (
    "empty",
    "garbage",
    "nul",
    "bad_utf8",
    "deep",
    "wrong_types",
    "huge",
    "directory",
    "fifo",
    "symlink_out",
)
PLACE_FORMS = ("directory", "fifo", "symlink_out")  # files whose content is never read
DIR_FORMS = ("symlink_out", "file", "fifo")  # a directory replaced


def _replace_with(path: Path, form: str, world: World, is_dir: bool = False) -> None:
    """Put a directory, a FIFO or a symlink leading outside where ``path`` was (a
    directory's symlink leads to a directory, a file's to a file)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if form == "directory":
        path.mkdir()
    elif form == "fifo":
        os.mkfifo(path)
    elif form == "symlink_out":
        os.symlink(world.outside / ("dir" if is_dir else "file"), path)
    elif form == "file":
        path.write_bytes(b"not a directory\n")
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(form)


def _content(kind: str, form: str, world: World, path: Path) -> bytes:
    if form == "empty":
        return b""
    if form == "garbage":
        return _garbage()
    if form == "nul":
        return b"\x00" * 64
    if form == "bad_utf8":
        return b'{"name": "\xff\xfe\xc3"}' if kind != "toml" else b'nudge = "\xff\xfe"\n'
    if form == "deep":
        return DEEP if kind != "toml" else b"a = " + DEEP + b"\n"
    if form == "wrong_types":
        if kind == "agents":
            good = json.loads(path.read_text())["agents"]["a"]
            bad = {"name": "b", "last_seen": 3, "pid": "x", "kind": ["shell"]}
            escape = {"name": "../../x", "pane": "%1"}  # would name files outside
            doc = {"v": 1, "agents": {"a": good, "b": bad, "../../x": escape}}
            return json.dumps(doc).encode()
        if kind == "task":
            task = json.loads(path.read_text())
            task.update(priority="high", history=[1], attempts=None)
            return json.dumps(task).encode()
        return WRONG[kind]
    raise AssertionError(form)  # pragma: no cover


APPEND_KINDS = {"msg", "receipt", "nudge", "journal"}  # logs: hostile bytes after good ones


def make_hostile(world: World, rel: str, kind: str, form: str) -> None:
    path = world.paths.state / rel
    if form in ("directory", "fifo", "symlink_out", "file"):
        _replace_with(path, form, world, is_dir=kind == "dir")
        return
    if form == "huge":
        keep = path.read_bytes() if kind in APPEND_KINDS and path.exists() else b""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with open(path, "wb") as fh:
            fh.write(keep)
            fh.truncate(len(keep) + HUGE)  # sparse: an unterminated run of NUL bytes
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _content(kind, form, world, path)
    if kind in APPEND_KINDS and form != "empty":
        old = path.read_bytes() if path.exists() else b""
        data = old + b"\n" + data + b"\n"
    path.unlink(missing_ok=True)
    path.write_bytes(data)


# -- commands --------------------------------------------------------------------------------

SEND = ("send", "--as", "a", "b", "{n}", "--json")
SEND_C = ("send", "--as", "a", "c", "{n}", "--json")
INBOX = ("inbox", "--as", "b", "--json")
LOG = ("log", "-n", "5", "--json")
AGENTS = ("agents", "--json")
AGENTS_TEXT = ("agents",)
JOIN = ("join", "d", "--json")
LOCK = ("lock", "--as", "a", "src/b.py", "--json")
LOCKS = ("locks", "--json")
TASK_LIST = ("task", "list", "--json")
TASK_ADD = ("task", "add", "--as", "a", "{n}", "--json")
TASK_CLAIM = ("task", "claim", "--as", "b", "--json")
TASK_REAP = ("task", "reap", "--json")
MONITOR = ("monitor", "--once", "--json")
STATUS = ("status", "{m1}", "--json")
EVERY = (SEND, INBOX, LOG, AGENTS, LOCKS, TASK_LIST, MONITOR, STATUS)


@dataclass(frozen=True)
class Target:
    """One state file (or directory): where it is, what it holds, who uses it."""

    rel: str
    kind: str  # content kind (see WRONG), or "lock" / "dir"
    commands: tuple[tuple[str, ...], ...]  # readers first, then writers
    more: tuple[tuple[str, ...], ...] = ()  # also run with CLAUDESWARM_STRESS
    prepare: str = ""  # a corrupt record that makes a command write into this directory


TARGETS: dict[str, Target] = {
    "config": Target("config.toml", "toml", (AGENTS, SEND), (MONITOR,)),
    "log": Target("messages.jsonl", "msg", (LOG, INBOX, MONITOR, SEND), (STATUS,)),
    "archive": Target("archive/messages.000001.jsonl", "msg", (LOG, INBOX), (MONITOR,)),
    "agents": Target("agents.json", "agents", (AGENTS_TEXT, MONITOR, JOIN), (AGENTS, SEND)),
    "cursor": Target("cursors/b.json", "cursor", (MONITOR, INBOX)),
    "ratelimit": Target("ratelimit.json", "ratelimit", (SEND,)),
    "receipts": Target("receipts.jsonl", "receipt", (STATUS, INBOX)),
    "nudges": Target("nudges.jsonl", "nudge", (STATUS,), (SEND_C,)),
    "journal": Target("locks.jsonl", "journal", (LOCKS, LOCK), (MONITOR, LOCKS)),
    "pending_mark": Target("tasks/pending.mark", "raw", (TASK_ADD, TASK_CLAIM)),
    "task": Target("tasks/pending/{t1_file}", "task", (TASK_LIST, TASK_CLAIM), (MONITOR,)),
    "queue": Target("panes/queued-c", "queue", (SEND_C,)),
    "ledger": Target("archive/pruned.jsonl", "raw", (INBOX, MONITOR)),
    # sidecar locks and stamps: only their kind of file matters
    "log_lock": Target("messages.lock", "lock", (SEND,)),
    "agents_lock": Target("agents.lock", "lock", (JOIN,)),
    "cursor_lock": Target("cursors/b.lock", "lock", (INBOX,)),
    "ratelimit_lock": Target("ratelimit.lock", "lock", (SEND,)),
    "receipts_lock": Target("receipts.lock", "lock", (INBOX,)),
    "journal_lock": Target("locks.lock", "lock", (LOCK,)),
    "prune_lock": Target("archive/prune.lock", "lock", (SEND, LOG)),
    "task_lock": Target("tasks/locks/{t1_stripe}", "lock", (TASK_CLAIM,)),
    "stale_tmp": Target("tasks/tmp/stale.4194301.0bad", "lock", (TASK_REAP,)),
    # a claim that finds nothing claimable reaps, once per task_auto_reap_seconds
    "reap_stamp": Target("tasks/locks/reap.stamp", "lock", (TASK_CLAIM,), prepare="claimed"),
    "reap_lock": Target("tasks/locks/reap.lock", "lock", (TASK_CLAIM,), prepare="claimed"),
    # directories
    "state_dir": Target("", "dir", (AGENTS, SEND), (INBOX,)),
    "archive_dir": Target("archive", "dir", (LOG, INBOX), (MONITOR,)),
    "cursors_dir": Target("cursors", "dir", (MONITOR, INBOX)),
    "tasks_dir": Target("tasks", "dir", (TASK_LIST, TASK_ADD), (MONITOR,)),
    "pending_dir": Target("tasks/pending", "dir", (MONITOR, TASK_ADD), (TASK_LIST,)),
    "panes_dir": Target("panes", "dir", (SEND_C,)),
    "quarantine_dir": Target("quarantine", "dir", (SEND,), prepare="ratelimit"),
    "quarantine_lines": Target("quarantine/lines", "dir", (INBOX,), prepare="line"),
    "quarantine_tasks": Target("quarantine/tasks", "dir", (TASK_LIST,), prepare="task"),
}
EXTRA_FORMS = {"config": ("nan", "huge_number", "string_for_int")}
CONFIG_FORMS = {
    "nan": b"rotate_bytes = nan\n",
    "huge_number": b"lock_ttl_seconds = 1e300\ntask_lease_seconds = 1e300\n",
    "string_for_int": b'rate_per_sender = "many"\n',
}


def cases() -> list[tuple[str, str]]:
    out = []
    for name, target in TARGETS.items():
        if target.kind == "dir":
            forms: tuple[str, ...] = DIR_FORMS
        elif target.kind == "lock":
            forms = FILE_FORMS if STRESS else PLACE_FORMS
        else:
            forms = FILE_FORMS + EXTRA_FORMS.get(name, ())
        out += [(name, form) for form in forms]
    return out


# -- what must hold --------------------------------------------------------------------------


def tree(top: Path, skip: Path | None = None) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``top`` (type, size, sha256), without following symlinks."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if skip is None or here / d != skip]
        for name in [*dirnames, *filenames]:
            p = here / name
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[str(p.relative_to(top))] = (stat.filemode(st.st_mode), st.st_size, digest)
    return out


def fingerprint(path: Path) -> str | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quarantined(paths: StatePaths) -> set[str]:
    found = set()
    for p in paths.quarantine.rglob("*") if paths.quarantine.is_dir() else ():
        if p.is_file() and not p.is_symlink():
            found.add(hashlib.sha256(p.read_bytes()).hexdigest())
    return found


def run(world: World, argv: tuple[str, ...], n: int) -> subprocess.CompletedProcess[str]:
    args = [a.format(n=f"fuzz message {n}", m1=world.m1) for a in argv]
    try:
        return subprocess.run(
            [sys.executable, "-m", "claudeswarm", *args],
            cwd=world.root,
            env=world.env,
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"claudeswarm {' '.join(args)} hung (still running after {HANG:.0f}s)")


def prepare(world: World, what: str) -> None:
    """Plant a corrupt record that makes a command quarantine something."""
    state = world.paths.state
    if what == "ratelimit":
        (state / "ratelimit.json").write_text('{"s|a": [1], "s|a": [2]}')
    elif what == "line":
        with open(state / "messages.jsonl", "ab") as fh:
            fh.write(b"\n{not a record}\n")
    elif what == "task":
        (state / "tasks" / "pending" / world.t1_file).write_text("{not json")
    elif what == "claimed":  # both tasks claimed (just now, no lease): nothing claimable
        for task in (state / "tasks" / "pending").iterdir():
            task.rename(state / "tasks" / "claimed" / task.name)


def good_records(world: World, name: str, form: str, argv: tuple[str, ...], out: str) -> list[str]:
    """What the output of a successful ``argv`` must still show, given the hostile case."""
    replaced = form in ("empty", "directory", "fifo", "symlink_out")
    try:
        doc = json.loads(out) if "--json" in argv and argv[0] != "log" else None
    except ValueError:
        return [f"{argv[0]} printed JSON that does not parse: {out[:200]!r}"]
    missing = []
    if argv[:1] == ("log",):
        ids = {json.loads(line)["id"] for line in out.splitlines() if line.strip()}
        want = {world.m1, world.m2}
        if name == "log" and replaced:
            want.discard(world.m2)
        if name == "archive" and replaced:
            want.discard(world.m1)
        missing += [f"log lost message {m}" for m in want - ids]
    elif argv == AGENTS and (name != "agents" or form == "wrong_types"):
        if "a" not in {a["name"] for a in doc}:
            missing.append("agents lost agent a")
    elif argv[:1] == ("locks",) and not (name == "journal" and replaced):
        if "src/a.py" not in {p for row in doc for p in row["lease"]["patterns"]}:
            missing.append("locks lost the lease on src/a.py")
    elif argv[:2] == ("task", "list"):
        if world.t2 not in {t["id"] for t in doc}:
            missing.append("task list lost the good task")
    elif argv[:1] == ("inbox",) and doc is not None:
        ids = {m["id"] for m in doc["messages"]}
        if world.m2 not in ids and not (name == "log" and replaced):
            missing.append("inbox lost unread message m2")
    elif argv[:1] == ("monitor",) and doc is not None:
        ids = {m["id"] for m in doc["messages"]}
        if name not in ("log", "archive", "archive_dir") and {world.m1, world.m2} - ids:
            missing.append("monitor lost messages")
        agents = doc["agents"]
        lost_by_form = name == "agents" and form != "wrong_types"
        if (
            agents["available"]
            and not lost_by_form
            and "a" not in {r["name"] for r in agents["rows"]}
        ):
            missing.append("monitor lost agent a")
    elif argv[:1] == ("status",) and doc is not None and not (name == "receipts" and replaced):
        b = [r for r in doc["recipients"] if r["agent"] == "b"]
        if not b or not b[0]["read"]:
            missing.append("status lost b's read receipt")
    return missing


@pytest.mark.parametrize(("name", "form"), cases(), ids=[f"{n}-{f}" for n, f in cases()])
def test_hostile_state(template: World, tmp_path: Path, name: str, form: str) -> None:
    world = clone(template, tmp_path)
    target = TARGETS[name]
    stripe = f"{zlib.crc32(world.t1.encode()) % 256:02x}.lock"
    rel = target.rel.format(t1_file=world.t1_file, t1_stripe=stripe)
    if target.prepare:
        prepare(world, target.prepare)
    if name in EXTRA_FORMS and form in CONFIG_FORMS:
        (world.paths.state / rel).write_bytes(CONFIG_FORMS[form])
    elif rel == "":
        _replace_with(world.paths.state, form, world, is_dir=True)
    else:
        make_hostile(world, rel, target.kind, form)
    target_path = world.paths.state / rel
    hostile = fingerprint(target_path) if target.kind not in ("dir", "lock") else None
    outside_before = tree(world.outside)
    project_before = tree(world.root, skip=world.paths.state)

    problems = []
    commands = target.commands + (target.more + EVERY if STRESS else ())
    for n, argv in enumerate(commands):
        proc = run(world, argv, n)
        shown = f"claudeswarm {' '.join(argv)} [{name}/{form}]"
        if proc.returncode not in EXIT_CODES:
            problems.append(f"{shown}: exit {proc.returncode}")
        if "Traceback" in proc.stderr + proc.stdout:
            problems.append(f"{shown}: traceback\n{proc.stderr[-2000:]}")
        elif len(proc.stderr.strip().splitlines()) > 1:
            problems.append(f"{shown}: {len(proc.stderr.splitlines())} stderr lines\n{proc.stderr}")
        if proc.returncode == 0 and argv not in commands[:n]:  # a second inbox shows less
            problems += [
                f"{shown}: {m}" for m in good_records(world, name, form, argv, proc.stdout)
            ]

    if tree(world.outside) != outside_before:
        problems.append("something outside the state directory changed")
    if tree(world.root, skip=world.paths.state) != project_before:
        problems.append("something in the project outside the state directory changed")
    # a JSON state file is read, kept, or moved into quarantine/, never deleted
    json_file = target.kind not in APPEND_KINDS | {"raw", "queue", "toml"}
    moved = hostile is not None and json_file and fingerprint(target_path) != hostile
    if moved and hostile not in quarantined(world.paths):
        problems.append(f"{rel} ({form}) was neither kept nor quarantined")
    assert not problems, "\n".join(problems)


def test_every_state_file_the_code_names_is_fuzzed() -> None:
    """The fuzz covers every state file name found in the package source (a new state
    file must join the table above)."""
    import re

    source = "\n".join(p.read_text() for p in (REPO / "claudeswarm").rglob("*.py"))
    named = set(re.findall(r'"([a-z_]+\.(?:jsonl|json|lock|toml|mark|stamp))"', source))
    covered = {Path(t.rel).name for t in TARGETS.values()}
    elsewhere = {
        "settings.json": "the agent's .claude/settings.json (hook install), not state",
        "nudges.lock": "taken only by the detached nudger, whose output goes nowhere",
    }
    assert named <= covered | set(elsewhere), sorted(named - covered - set(elsewhere))
