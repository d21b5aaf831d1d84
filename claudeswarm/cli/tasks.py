"""``task add|list|show|claim|heartbeat|done|fail|release|reap``: the task board commands.

Refusals (lost claim, artifact check failed, nothing claimable) exit 3 with one line;
an unknown task id exits 2. Corrupt task files met on the way are quarantined with a
one-line warning on stderr; every other task keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudeswarm.cli._common import AsOpt, JsonOpt, count, emit, swarm, table, warn

if TYPE_CHECKING:
    from claudeswarm.tasks.board import Task, TaskBoard

sub = typer.Typer(
    help="The shared task board: add, claim, heartbeat, complete with verified artifacts.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

IdArg = Annotated[str, typer.Argument(help="Task id.", show_default=False)]
ArtifactOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--artifact",
        help="Project-relative file the task must produce (repeatable; PATH@sha256:HEX "
        "also pins its digest).",
    ),
]
PRIORITY_LIMIT = 9999  # task_files.PRIORITY_MAX, which a test holds equal
PRIORITY_HELP = f"Higher claims first ({-PRIORITY_LIMIT} to {PRIORITY_LIMIT})."
EmptyOpt = Annotated[
    list[str] | None,
    typer.Option("--artifact-empty", help="An artifact that may be empty (repeatable)."),
]


def register(app: typer.Typer) -> None:
    """Add the ``task`` command group to ``app``."""
    app.add_typer(sub, name="task")


def _board(as_name: str | None = None, *, me: bool = False) -> tuple[TaskBoard, Any, str]:
    """The board, the swarm and, with ``me``, who we are (``--as`` / env / pane)."""
    from claudeswarm.storage.paths import ensure_state
    from claudeswarm.tasks.board import TaskBoard, owner_process

    sw = swarm()
    ensure_state(sw.paths)
    name = _me(sw, as_name) if me else ""
    # a CLI call exits at once: a claim lives as long as the agent's registered process
    pid = owner_process(sw, name) if name else None
    return TaskBoard(sw, pid=pid, warn=warn), sw, name


def _me(sw: Any, as_name: str | None) -> str:
    from claudeswarm.messages.service import resolve_sender

    return resolve_sender(sw, as_name)


def _specs(root: Any, paths: list[str] | None, empty: list[str] | None) -> list[Any]:
    from claudeswarm.tasks.artifacts import parse_spec

    out = [parse_spec(root, p) for p in paths or ()]
    return out + [parse_spec(root, p, allow_empty=True) for p in empty or ()]


def _row(t: Task) -> list[str]:
    from claudeswarm.sanitize import preview

    status = "GHOST" if t.ghost else t.status
    who = t.owner or t.assignee or ""
    return [t.id, status, str(t.priority), who, str(t.attempts), preview(t.title, 60)]


def _detail(t: Task, problems: list[str] | None) -> str:
    from claudeswarm.sanitize import inert

    lines = [
        f"{t.id}  [{t.status}{' GHOST' if t.ghost else ''}]  {t.title}",
        f"  priority {t.priority}  attempts {t.attempts}  created {t.created} by {t.created_by}",
    ]
    if t.assignee:
        lines.append(f"  assigned to {t.assignee}")
    if t.dependencies:
        lines.append(f"  after {', '.join(t.dependencies)}")
    if t.lease and t.status == "claimed":
        lease = t.lease
        from claudeswarm.messages.record import format_ts

        lines.append(
            f"  claimed by {lease.agent} (pid {lease.pid}, generation {lease.generation}),"
            f" lease until {format_ts(lease.expires)}"
        )
    for spec in t.specs:
        lines.append(f"  artifact {spec.path}{' (may be empty)' if spec.allow_empty else ''}")
    for m in t.manifest or ():
        lines.append(f"  manifest {m.path} {m.size} bytes sha256 {m.sha256[:16]}")
    if t.reason:
        lines.append(f"  reason: {t.reason}")
    if t.body:
        lines.append("  " + inert(t.body, keep_newlines=True).replace("\n", "\n  "))
    for h in t.history:
        lines.append(f"  {h.ts}  {h.state:<8} {h.agent}  {h.note}".rstrip())
    if problems is not None:
        lines.append("  verify: " + ("; ".join(problems) if problems else "all artifacts intact"))
    return inert("\n".join(lines), keep_newlines=True)


@sub.command("add")
def add(
    title: Annotated[str, typer.Argument(help="One-line title.", show_default=False)],
    body: Annotated[str, typer.Option("--body", help="Longer description.")] = "",
    artifact: ArtifactOpt = None,
    artifact_empty: EmptyOpt = None,
    priority: Annotated[
        int,
        typer.Option(
            "--priority", "-p", parser=count(-PRIORITY_LIMIT, PRIORITY_LIMIT), help=PRIORITY_HELP
        ),
    ] = 0,
    assign: Annotated[
        str | None, typer.Option("--assign", help="Only this agent may claim it.")
    ] = None,
    after: Annotated[
        list[str] | None, typer.Option("--after", help="Claimable once task ID is done.")
    ] = None,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a pending task (written and committed before it is announced)."""
    board, sw, me = _board(as_name, me=True)
    task = board.add(
        title,
        created_by=me,
        body=body,
        priority=priority,
        assignee=assign,
        after=after or (),
        artifacts=_specs(sw.paths.root, artifact, artifact_empty),
    )
    emit(task, as_json, lambda: f"added {task.id}: {task.title}")


@sub.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help="Only pending, claimed, done or failed."),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify", help="Re-hash done tasks' artifacts to flag ghosts, or skip it."
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """List tasks (claim order within each state). Done tasks whose artifacts no longer
    match their manifest are flagged GHOST."""
    board, _, _ = _board()
    tasks = board.list(status, verify=verify)
    header = ["ID", "STATUS", "PRIO", "WHO", "TRIES", "TITLE"]
    ghosts = sum(t.ghost for t in tasks)
    note = f"\n{ghosts} ghost task(s): done, but artifacts changed or missing" if ghosts else ""
    emit(
        tasks,
        as_json,
        lambda: (table([_row(t) for t in tasks], header) + note) if tasks else "no tasks",
    )


@sub.command("show")
def show(
    task_id: IdArg,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Re-hash a done task's artifacts, or skip it."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show one task with its lease, artifacts, manifest and history."""
    from dataclasses import replace

    board, _, _ = _board()
    task = board.get(task_id)
    problems = board.problems(task) if verify else None
    if problems:
        task = replace(task, ghost=True)
    data: Any = {**task.to_json(), "problems": problems} if verify else task
    emit(data, as_json, lambda: _detail(task, problems))


@sub.command("claim")
def claim(
    task_id: Annotated[
        str | None, typer.Argument(help="Task id (default: the best claimable task).")
    ] = None,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Claim a task: by id, or the best claimable one (priority, then age). Exit 3 when
    nothing is claimable."""
    from claudeswarm.errors import RefusedError

    board, _, me = _board(as_name, me=True)
    task = board.claim(me, task_id)
    if task is None:
        raise RefusedError("no claimable task")
    emit(task, as_json, lambda: f"claimed {task.id}: {task.title}")


@sub.command("heartbeat")
def heartbeat(task_id: IdArg, as_name: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Renew your claim's lease (task_lease_seconds from now)."""
    board, sw, me = _board(as_name, me=True)
    task = board.heartbeat(task_id, me)
    expires = task.lease.expires if task.lease else 0.0
    emit(task, as_json, lambda: f"lease on {task.id} renewed for {expires - sw.clock():.0f}s")


@sub.command("done")
def done(
    task_id: IdArg,
    artifact: ArtifactOpt = None,
    artifact_empty: EmptyOpt = None,
    note: Annotated[str, typer.Option("--note", help="A note for the history.")] = "",
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Complete your task: every artifact is verified and fingerprinted first; exit 3
    (task unchanged) if any is missing, empty, outside the project or the claim is lost."""
    board, sw, me = _board(as_name, me=True)
    task = board.complete(
        task_id,
        me,
        artifacts=_specs(sw.paths.root, artifact, artifact_empty),
        note=note,
    )
    count = len(task.manifest or ())
    emit(task, as_json, lambda: f"done {task.id}: {count} artifact(s) verified")


@sub.command("fail")
def fail(
    task_id: IdArg,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why it failed.", show_default=False)
    ],
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give up on your task: move it to failed with REASON."""
    board, _, me = _board(as_name, me=True)
    task = board.fail(task_id, me, reason)
    emit(task, as_json, lambda: f"failed {task.id}: {reason}")


@sub.command("release")
def release(task_id: IdArg, as_name: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Hand your task back to pending (attempts unchanged)."""
    board, _, me = _board(as_name, me=True)
    task = board.release(task_id, me)
    emit(task, as_json, lambda: f"released {task.id}")


@sub.command("reap")
def reap(as_json: JsonOpt = False) -> None:
    """Return claims of dead owners and expired leases to pending (attempts + 1), or to
    failed after task_max_attempts."""
    board, _, _ = _board()
    moved = board.reap()
    emit(
        moved,
        as_json,
        lambda: "\n".join(f"{t.id} -> {t.status}: {t.reason}" for t in moved) or "nothing to reap",
    )
