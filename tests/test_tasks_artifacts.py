"""Completion demands verified artifacts; a refused completion leaves the task claimed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from claudeswarm.errors import RefusedError, UsageError
from claudeswarm.storage.files.tasks import STATES, names, state_dir
from claudeswarm.swarm import Swarm
from claudeswarm.tasks.board import Task, TaskBoard, list_tasks
from tests.conftest import FakeClock


def states_of(swarm: Swarm, task_id: str) -> list[str]:
    return [s for s in STATES for n in names(state_dir(swarm.paths, s)) if task_id in n]


def claimed(swarm: Swarm, *artifacts: str) -> tuple[TaskBoard, Task]:
    board = TaskBoard(swarm)
    board.add("build", created_by="lead", artifacts=list(artifacts))
    task = board.claim("w")
    assert task is not None
    return board, task


def _missing(project: Path) -> None:
    pass


def _empty(project: Path) -> None:
    (project / "out.txt").write_bytes(b"")


def _directory(project: Path) -> None:
    (project / "out.txt").mkdir()


def _fifo(project: Path) -> None:
    os.mkfifo(project / "out.txt")


def _symlink_outside(project: Path) -> None:
    target = project.parent / "elsewhere.txt"
    target.write_text("outside the project")
    (project / "out.txt").symlink_to(target)


def _dangling_symlink(project: Path) -> None:
    (project / "out.txt").symlink_to(project / "nothing-here")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_missing, "is missing"),
        (_empty, "is empty"),
        (_directory, "not a regular file"),
        (_fifo, "not a regular file"),
        (_symlink_outside, "leads outside the project"),
        (_dangling_symlink, "is missing"),
    ],
)
def test_completion_is_refused(
    swarm: Swarm, project: Path, make: Callable[[Path], None], problem: str
) -> None:
    board, task = claimed(swarm, "out.txt")
    make(project)
    with pytest.raises(RefusedError, match=problem):
        board.complete(task.id, "w")
    assert states_of(swarm, task.id) == ["claimed"]
    assert board.get(task.id).manifest is None


def test_directory_symlinked_out_of_the_project_is_refused(swarm: Swarm, project: Path) -> None:
    board, task = claimed(swarm, "out/report.md")
    outside = project.parent / "outside"
    outside.mkdir()
    (outside / "report.md").write_text("written outside")
    (project / "out").symlink_to(outside)
    with pytest.raises(RefusedError, match="leads outside the project"):
        board.complete(task.id, "w")
    assert states_of(swarm, task.id) == ["claimed"]


def test_artifacts_outside_the_project_cannot_be_named(swarm: Swarm, project: Path) -> None:
    board, task = claimed(swarm)
    (project.parent / "x.txt").write_text("x")
    for bad in ("../x.txt", str(project.parent / "x.txt"), ""):
        with pytest.raises(UsageError):
            board.complete(task.id, "w", artifacts=[bad])
    assert states_of(swarm, task.id) == ["claimed"]


def test_hash_mismatch_is_refused_and_match_accepted(swarm: Swarm, project: Path) -> None:
    good = hashlib.sha256(b"expected").hexdigest()
    board, task = claimed(swarm, f"out.txt@sha256:{good}")
    (project / "out.txt").write_bytes(b"something else")
    with pytest.raises(RefusedError, match="sha256"):
        board.complete(task.id, "w")
    assert states_of(swarm, task.id) == ["claimed"]
    (project / "out.txt").write_bytes(b"expected")
    done = board.complete(task.id, "w")
    assert done.manifest is not None
    assert [(m.path, m.size, m.sha256) for m in done.manifest] == [("out.txt", 8, good)]


def test_artifacts_passed_at_completion_are_checked_too(swarm: Swarm, project: Path) -> None:
    board, task = claimed(swarm, "a.txt")
    (project / "a.txt").write_text("a")
    with pytest.raises(RefusedError, match=r"'b\.txt' is missing"):
        board.complete(task.id, "w", artifacts=["b.txt"])
    (project / "b.txt").write_text("b")
    done = board.complete(task.id, "w", artifacts=["./b.txt"], note="both")
    assert done.artifacts == ("a.txt", "b.txt")
    assert [m.path for m in done.manifest or ()] == ["a.txt", "b.txt"]
    assert done.history[-1].note == "both"


def test_allow_empty_and_inside_symlink(swarm: Swarm, project: Path) -> None:
    from claudeswarm.tasks.artifacts import parse_spec

    board = TaskBoard(swarm)
    spec = parse_spec(project, "empty.log", allow_empty=True)
    t = board.add("t", created_by="lead", artifacts=[spec, "link.txt"])
    board.claim("w")
    (project / "empty.log").write_bytes(b"")
    (project / "real.txt").write_text("real")
    (project / "link.txt").symlink_to("real.txt")
    done = board.complete(t.id, "w")
    assert [(m.path, m.size) for m in done.manifest or ()] == [("empty.log", 0), ("link.txt", 4)]


def test_completion_refused_after_the_claim_was_reaped(
    swarm: Swarm, project: Path, clock: FakeClock
) -> None:
    board, task = claimed(swarm, "out.txt")
    (project / "out.txt").write_text("finished, but too late")
    clock.advance(swarm.settings.task_lease_seconds + 1)
    board.reap()
    with pytest.raises(RefusedError, match="pending"):
        board.complete(task.id, "w", generation=task.generation)
    again = board.claim("other")
    assert again is not None
    with pytest.raises(RefusedError, match="claimed by other"):
        board.complete(task.id, "w")
    with pytest.raises(RefusedError, match="was lost"):
        board.complete(task.id, "other", generation=task.generation)
    assert states_of(swarm, task.id) == ["claimed"]
    assert board.complete(task.id, "other", generation=again.generation).status == "done"


def test_ghosts_are_found_later(swarm: Swarm, project: Path) -> None:
    board, task = claimed(swarm, "out.txt")
    (project / "out.txt").write_text("v1")
    done = board.complete(task.id, "w")
    assert board.problems(done) == []
    (project / "out.txt").write_text("v2")
    assert board.problems(board.get(task.id)) == ["artifact 'out.txt' changed since completion"]
    (project / "out.txt").unlink()
    assert board.problems(board.get(task.id)) == ["artifact 'out.txt' is missing"]
    assert [t.ghost for t in list_tasks(swarm, verify=True)] == [True]
    assert [t.ghost for t in board.list(verify=True)] == [True]
