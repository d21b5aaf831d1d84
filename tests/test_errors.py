"""The one exception tree: where its classes live and what their messages promise."""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from claudeswarm import errors
from claudeswarm.errors import (
    EXIT_REFUSED,
    EXIT_USAGE,
    ArtifactError,
    BackendError,
    BackendUnavailableError,
    CorruptLeaseTableError,
    CorruptRecordError,
    ImpersonationError,
    InvalidArgumentError,
    LockConflictError,
    LockTimeout,
    OutcomeUnknownError,
    RateLimitedError,
    RefusedError,
    SchemaError,
    StateError,
    SwarmError,
    TmuxError,
    UnavailableError,
    UnknownCallerError,
    UnknownTaskError,
    UsageError,
)
from claudeswarm.locks.manager import Holder, LockManager
from claudeswarm.swarm import Swarm, open_swarm
from claudeswarm.tasks.board import TaskBoard

PACKAGE = REPO / "claudeswarm"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _is_exception(node: ast.ClassDef, known: set[str]) -> bool:
    """True if a base is a builtin exception or warning, or a class already known to be one."""
    for base in node.bases:
        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
        if name in known or name.endswith(("Error", "Exception", "Warning", "Timeout")):
            return True
    return False


def test_every_exception_class_lives_in_errors_py() -> None:
    """``claudeswarm/errors.py`` holds every exception class of the package, so one file
    shows the whole tree and each class's exit code (README "Exit codes").

    A private class (``_NotSentError``) that signals between two functions of one module
    may stay there, as long as no other module names it: it never reaches a caller.
    """
    known: set[str] = set()
    elsewhere: list[str] = []
    private: dict[str, Path] = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ClassDef) and _is_exception(node, known)):
                continue
            known.add(node.name)
            if node.name.startswith("_"):
                private[node.name] = path
            elif path != PACKAGE / "errors.py":
                elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert elsewhere == []
    assert {"SwarmError", "UsageError", "RefusedError", "UnavailableError"} <= known
    leaked = [
        f"{path.relative_to(REPO)} names {name} (private to {home.relative_to(REPO)})"
        for name, home in private.items()
        for path in _modules()
        if path != home and name in path.read_text(encoding="utf-8")
    ]
    assert leaked == []


# -- messages name objects and parameters, never flags --------------------------------------

FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _error_calls(tree: ast.AST) -> list[ast.Call]:
    """Calls that build an error: ``XError(...)``, ``LockTimeout(...)``, and the
    ``super().__init__(...)`` by which errors.py's classes build their messages."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name.endswith(("Error", "Timeout")) or name == "__init__":
                calls.append(node)
    return calls


def _texts(call: ast.Call) -> list[str]:
    """The literal text of a call's arguments (the fixed parts of f-strings included)."""
    out = []
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        for node in ast.walk(arg):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
    return out


def test_no_library_error_names_a_command_line_flag() -> None:
    """A library error says ``ttl``, ``limit``, ``reply_to``: a Python caller has no
    ``--ttl``. Only ``claudeswarm/cli/`` words errors with flags (at its boundary)."""
    found = []
    for path in _modules():
        if PACKAGE / "cli" in path.parents:
            continue
        for call in _error_calls(ast.parse(path.read_text(encoding="utf-8"))):
            found += [
                f"{path.relative_to(REPO)}:{call.lineno}: {text!r}"
                for text in _texts(call)
                if FLAG.search(text)
            ]
    assert found == []


def test_library_errors_say_parameters_and_the_cli_says_its_flags(
    swarm: Swarm, project: Path
) -> None:
    with pytest.raises(InvalidArgumentError) as bad:
        LockManager(swarm, Holder.for_process("alice")).acquire(["a.py"], ttl=0)
    assert bad.value.param == "ttl"
    assert str(bad.value) == "ttl must be positive and finite, not 0"
    out = run_cli(project, "lock", "a.py", "--ttl", "0", "--as", "alice")
    assert (out.returncode, out.stderr) == (
        EXIT_USAGE,
        "claudeswarm: --ttl must be positive and finite, not 0.0\n",
    )
    nobody = run_cli(project, "inbox")
    assert nobody.returncode == EXIT_USAGE
    assert "pass --as NAME" in nobody.stderr and nobody.stderr.count("\n") == 1
    whoami = run_cli(project, "whoami")  # it has no --as to suggest
    assert whoami.returncode == EXIT_USAGE
    assert "who are you?" in whoami.stderr and "--as" not in whoami.stderr


def test_an_empty_artifact_is_refused_in_library_words_and_cli_words(project: Path) -> None:
    added = run_cli(
        project, "task", "add", "report", "--artifact", "out.md", "--as", "ann", "--json"
    )
    task_id = json.loads(added.stdout)["id"]
    assert run_cli(project, "task", "claim", task_id, "--as", "ann").returncode == 0
    (project / "out.md").write_bytes(b"")
    board = TaskBoard(open_swarm(str(project / ".claudeswarm")))
    with pytest.raises(ArtifactError) as refused:
        board.complete(task_id, "ann")
    assert (refused.value.task_id, refused.value.problem) == (task_id, ArtifactError.EMPTY)
    assert "--" not in str(refused.value)
    out = run_cli(project, "task", "done", task_id, "--as", "ann")
    assert (out.returncode, out.stderr) == (
        EXIT_REFUSED,
        f"claudeswarm: cannot complete task {task_id}: artifact 'out.md' is empty "
        "(name it with --artifact-empty if it may be)\n",
    )


# -- every class: its exit code is the README's, its message one line, its fields kept -----

LEASE_FIELDS = {"pane": "%3", "held_for": 245.0, "reason": "refactor auth", "generation": 7}
#: one instance of every class in errors.py, with the exit code the README documents for it
SAMPLES: list[tuple[SwarmError, int]] = [
    (SwarmError("something failed"), 1),
    (UsageError("bad input"), 2),
    (InvalidArgumentError("ttl", "must be positive and finite, not 0"), 2),
    (UnknownCallerError("%3"), 2),
    (UnknownTaskError("01JD0000000000000000000000"), 2),
    (RefusedError("refused"), 3),
    (ImpersonationError("alice", "bob", pane="%3", pid=42), 3),
    (RateLimitedError("alice", "10 messages/min", 4.5), 3),
    (LockConflictError("src/**/*.py", "backend", wanted="src/a.py", **LEASE_FIELDS), 3),
    (ArtifactError("out.md", ArtifactError.EMPTY, task_id="01JD0000000000000000000000"), 3),
    (UnavailableError("no tmux server running"), 4),
    (LockTimeout("'src/a.py'", 30, LockConflictError("src/**", "b", pid=9)), 4),
    (BackendUnavailableError("localhost:6379", "connection refused"), 4),
    (OutcomeUnknownError("localhost:6379", "connection reset"), 4),
    (StateError("refusing x: it is a symlink"), 1),
    (CorruptLeaseTableError(".claudeswarm/locks.jsonl"), 1),
    (CorruptRecordError("agents.json", "not JSON"), 1),
    (SchemaError("cursor: field 'offset' is a str, expected an int"), 1),
    (TmuxError("send-keys", "can't find pane: %9"), 1),
    (BackendError("localhost:6379", "WRONGPASS"), 1),
]


def _readme_exit_codes() -> dict[int, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line[:3].strip("| ").isdigit()]
    return {int(code): meaning.strip() for code, meaning in rows}


def test_every_error_class_has_its_documented_exit_code() -> None:
    """The README's exit code table stays true: each class (all of errors.py, so a new one
    must be placed here on purpose) exits with the code whose row names its kind."""
    classes = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type)
        and issubclass(obj, SwarmError)
        and obj.__module__ == errors.__name__
    }
    assert {type(err) for err, _ in SAMPLES} == classes
    documented = _readme_exit_codes()
    assert documented[0] == "ok"
    kinds = {1: "error", 2: "usage", 3: "refused", 4: "unavailable"}
    for code, kind in kinds.items():
        assert documented[code].startswith(kind), (code, documented[code])
    for err, code in SAMPLES:
        assert err.exit_code == code, type(err).__name__
    assert documented[4].endswith("timed out waiting")  # LockTimeout's row says so


@pytest.mark.parametrize("err", [err for err, _ in SAMPLES], ids=lambda e: type(e).__name__)
def test_an_error_is_one_line_and_survives_a_process_boundary(err: SwarmError) -> None:
    text = str(err)
    assert text and "\n" not in text
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err) and str(copy) == text
    assert {k: str(v) for k, v in vars(copy).items()} == {k: str(v) for k, v in vars(err).items()}


def test_the_lock_refusal_names_the_lease_from_its_fields() -> None:
    err = LockConflictError("src/**/*.py", "backend", **LEASE_FIELDS)
    assert str(err) == "lock on 'src/**/*.py' held by backend (pane %3) for 4m: refactor auth"
    shared = LockConflictError("docs/*", "ann", pid=42, shared=True, wanted="docs/a.md")
    assert (
        str(shared)
        == "shared lock on 'docs/*' held by ann (pid 42) for 0s (you asked for 'docs/a.md')"
    )
    assert isinstance(LockTimeout("x", 1), TimeoutError)
