"""The nudger: a detached process that types nudge lines into recipients' panes.

``send`` starts it (``python -m claudeswarm.tmux.nudger --state-dir DIR message ID``) after the
message is logged, so tmux latency never reaches the sender. For each recipient, on one
scan of its tmux server:

1. the pane must still run the agent: the registered pid with the same start time lives
   under the pane and an agent process (not a bare shell) runs there; otherwise nothing
   is typed and the message simply stays unread in the log;
2. the agent itself must read the terminal: it is in the terminal's foreground process
   group and no other process of that group reads the terminal (an editor the agent
   opened does: :func:`~claudeswarm.agents.discovery.terminal_taken`). Urgent or not, a nudge
   waits for that;
3. with ``nudge = idle`` (and not ``urgent``) wait while the agent is busy: its reported
   state, else the screen heuristic. Past ``nudge_busy_wait`` (for 2 or 3) the nudge is
   left pending and sent when the agent reports idle (``claudeswarm state idle``);
4. under the pane's lock (one sender per pane), re-check the process and the terminal,
   type the line with ``send-keys -l --``, pause ``nudge_enter_delay``, press Enter.

Panes that are ready are typed in batches: one ``send-keys`` call types the lines of up
to ``nudge_pool`` panes, one more presses their Enters, batches run in parallel threads.
Busy agents are waited for in their own threads, after the batches have started.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from claudeswarm.agents import discovery, procs, registry
from claudeswarm.agents.identity import live
from claudeswarm.agents.registry import AgentRecord
from claudeswarm.errors import SwarmError, TmuxError, UnavailableError
from claudeswarm.messages.record import MessageRecord
from claudeswarm.storage.files.atomic import flocked
from claudeswarm.swarm import Swarm, open_swarm
from claudeswarm.tmux import delivery
from claudeswarm.tmux import queue as nudge_queue
from claudeswarm.tmux.client import Tmux, current
from claudeswarm.tmux.delivery import NudgeEntry

LOCK_TIMEOUT = 30.0
POLL = 0.25
HELD_POLL = 1.0  # a terminal held by an editor: each look reads every /proc/<pid>/stat
SCREEN_LINES = 8


@dataclass(frozen=True)
class Job:
    """Nudge ``agent`` about ``rec``; ``ids`` are every message this one nudge covers."""

    agent: AgentRecord
    rec: MessageRecord
    ids: tuple[str, ...]
    urgent: bool


def unfit(agent: AgentRecord, scan: discovery.Scan) -> tuple[str, int, str | None]:
    """Why ``agent``'s pane must not be typed into (``""`` if it may), and the agent
    process found in it with its kind (``None``: a joined agent discovery does not know)."""
    if (agent.pane or "") not in scan.panes:
        return f"pane {agent.pane} is gone", 0, None
    if not live(agent, scan):
        return "the agent's process has exited", 0, None
    found = next((f for f in scan.found if f.pane.pane_id == agent.pane), None)
    if found is not None:
        return "", found.pid, found.kind
    pid = agent.pid or 0
    if discovery.is_shell(scan.table.argv(pid), scan.table.procs[pid].comm):
        return "no agent runs in the pane (bare shell)", 0, None
    return "", pid, None  # a joined agent discovery does not know: the process that joined


def taken(swarm: Swarm, ready: Ready, table: procs.ProcTable | None = None) -> str:
    """Why keys typed now would not reach ``ready``'s agent (``""`` if they would), on a
    fresh look at ``/proc`` unless ``table`` is given."""
    table = procs.snapshot() if table is None else table
    return discovery.terminal_taken(table, ready.pid, ready.kind, _patterns(swarm))


def _alive(ready: Ready) -> bool:
    proc = procs.read_proc(ready.pid)
    agent = ready.job.agent
    return (
        registry.process_alive(agent.pid, agent.start_time)
        and proc is not None
        and proc.start_time == ready.start
    )


def reported(swarm: Swarm, agent: AgentRecord, agents: registry.Agents | None = None) -> str:
    """The state the agent last reported (``busy``, ``idle``) or ``""`` if none."""
    now = (agents if agents is not None else registry.load(swarm.paths)).get(agent.name)
    state = now.state if now else agent.state
    return state if state in ("busy", "idle") else ""


def looks_busy(swarm: Swarm, screen: str) -> bool:
    """The screen heuristic: a busy pattern on the pane's last lines."""
    pats = swarm.settings.busy_screen_patterns
    return any(re.search(p, screen, re.IGNORECASE) for p in pats)


def busy(swarm: Swarm, tmux: Tmux, agent: AgentRecord) -> bool:
    """Reported state first (``busy``/``idle``); otherwise the screen heuristic."""
    state = reported(swarm, agent)
    if state or swarm.settings.idle_heuristic != "screen":
        return state == "busy"
    return looks_busy(swarm, tmux.capture(agent.pane or "", SCREEN_LINES))


def _wait_turn(swarm: Swarm, tmux: Tmux, ready: Ready) -> tuple[str, str]:
    """Wait until the agent reads its own terminal and (``nudge = idle``, not urgent) is
    not busy, for at most ``nudge_busy_wait``: ``("ready", "")``, ``("read", why)``
    (nothing left to nudge for), ``("gone", why)`` or ``("pending", why)``."""
    job = ready.job
    wait_busy = delivery.mode(swarm) == "idle" and not job.urgent
    deadline = time.monotonic() + swarm.settings.nudge_busy_wait
    while True:
        read = delivery.reads(swarm)
        if all((mid, job.agent.name) in read for mid in job.ids):
            return "read", "read while the nudge waited"
        if not _alive(ready):
            return "gone", "the agent's process exited"
        # busy first: the reported state is one registry read, a /proc snapshot is not
        why = "agent busy" if wait_busy and busy(swarm, tmux, job.agent) else taken(swarm, ready)
        if not why:
            return "ready", ""
        if time.monotonic() >= deadline:
            return "pending", f"{why}; nudged when it reports idle"
        time.sleep(POLL if why == "agent busy" else HELD_POLL)


def pane_lock_path(swarm: Swarm, tmux: Tmux, pane: str) -> Path:
    """One lock file per pane per server (pane ids are unique only within a server).

    Held with :func:`~claudeswarm.storage.files.atomic.flocked` (fcntl, with a timeout) rather than
    the filelock package: its import alone costs ~18 ms, which a broadcast pays before
    its first nudge."""
    server = hashlib.sha1(tmux.socket.encode()).hexdigest()[:8]
    swarm.paths.dir("panes", create=True)
    return swarm.paths.file("panes", f"{server}-{pane.lstrip('%')}.lock")


@dataclass(frozen=True)
class Ready:
    """A job cleared to type: the agent process found in the pane, its start time and
    its kind (``None`` if discovery does not know it)."""

    job: Job
    pid: int
    start: int
    kind: str | None = None


def _entries(swarm: Swarm, job: Job, outcome: str, reason: str = "") -> list[NudgeEntry]:
    return [delivery.record(swarm, mid, job.agent, outcome, reason) for mid in job.ids]


def _claim(swarm: Swarm, job: Job, read: dict[tuple[str, str], str] | None = None) -> Job:
    """Take the agent's queue: this nudge now covers every id queued (minus any read)."""
    queued = nudge_queue.take(swarm.paths, job.agent.name)
    if not queued:
        return job
    read = delivery.reads(swarm) if read is None else read
    extra = [m for m in queued if m not in job.ids and (m, job.agent.name) not in read]
    return replace(job, ids=(*job.ids, *extra))


def _final(swarm: Swarm, job: Job, outcome: str, reason: str = "") -> list[NudgeEntry]:
    """Record a final outcome for the job and everything queued behind it."""
    entries = _entries(swarm, _claim(swarm, job), outcome, reason)
    delivery.append_nudges(swarm, entries)
    return entries


def type_batch(swarm: Swarm, tmux: Tmux, batch: Sequence[Ready]) -> list[NudgeEntry]:
    """Type the nudge lines of ``batch`` (distinct panes of one server): take every pane
    lock (sorted, so two nudgers never deadlock), re-check each agent, type all lines
    in one tmux call, wait ``nudge_enter_delay``, press all Enters in one call."""
    out: list[NudgeEntry] = []
    with contextlib.ExitStack() as held:
        locked: list[Ready] = []
        for item in sorted(batch, key=lambda r: r.job.agent.pane or ""):
            try:
                path = pane_lock_path(swarm, tmux, item.job.agent.pane or "")
                held.enter_context(flocked(path, timeout=LOCK_TIMEOUT))
                locked.append(item)
            except UnavailableError:
                job = _claim(swarm, item.job)
                out += _entries(swarm, job, "failed", "pane stayed locked by another nudge")
        read = delivery.reads(swarm)  # once, with every lock held: no nudge slips between
        table = procs.snapshot()  # and one fresh look at the terminals
        go: list[Ready] = []
        for item in locked:
            item = replace(item, job=_claim(swarm, item.job, read))
            if all((mid, item.job.agent.name) in read for mid in item.job.ids):
                out += _entries(swarm, item.job, "skipped", "already read")
            elif not _alive(item):
                out += _entries(swarm, item.job, "skipped", "the agent's process exited")
            elif why := taken(swarm, item, table):
                out += _entries(swarm, item.job, "pending", f"{why}; nudged when it reports idle")
            else:
                go.append(item)
        typed, failed = _type_lines(swarm, tmux, go)
        time.sleep(swarm.settings.nudge_enter_delay if typed else 0)
        entered, failed_enter = _press_enter(tmux, typed)
        for item, why in [*failed, *failed_enter]:
            out += _entries(swarm, item.job, "failed", why)
        for item in entered:
            out += _entries(swarm, item.job, "nudged")
    delivery.append_nudges(swarm, out)
    return out


def _line(swarm: Swarm, job: Job) -> str:
    return delivery.nudge_line(job.rec, swarm.settings.nudge_preview_chars, len(job.ids))


def _type_lines(
    swarm: Swarm, tmux: Tmux, go: Sequence[Ready]
) -> tuple[list[Ready], list[tuple[Ready, str]]]:
    """All lines in one call; if tmux refuses (a pane vanished), one call per pane."""
    try:
        tmux.send_literal_many([(r.job.agent.pane or "", _line(swarm, r.job)) for r in go])
        return list(go), []
    except TmuxError:
        pass
    typed, failed = [], []
    for r in go:
        try:
            tmux.send_literal(r.job.agent.pane or "", _line(swarm, r.job))
            typed.append(r)
        except TmuxError as exc:
            failed.append((r, str(exc)))
    return typed, failed


def _press_enter(tmux: Tmux, typed: Sequence[Ready]) -> tuple[list[Ready], list[tuple[Ready, str]]]:
    try:
        tmux.send_enter_many([r.job.agent.pane or "" for r in typed])
        return list(typed), []
    except TmuxError:
        pass
    entered, failed = [], []
    for r in typed:
        try:
            tmux.send_enter(r.job.agent.pane or "")
            entered.append(r)
        except TmuxError as exc:
            failed.append((r, f"typed but Enter failed: {exc}"))
    return entered, failed


def _triage(
    swarm: Swarm, runnable: Sequence[tuple[Tmux, discovery.Scan, Job]]
) -> list[tuple[str, str, Ready | None]]:
    """For each job ``("skipped", why, None)``, ``("wait", "", ready)`` (busy, or another
    process reads the agent's terminal) or ``("ready", "", ready)``: one registry read and
    one ``capture-pane`` call per server for the whole lot."""
    agents = registry.load(swarm.paths)
    waits = delivery.mode(swarm) == "idle"
    screen = swarm.settings.idle_heuristic == "screen"
    pats = _patterns(swarm)
    verdicts: list[tuple[str, str, Ready | None]] = []
    look: dict[str, list[int]] = {}  # socket -> indexes whose screen decides
    for i, (tmux, scan, job) in enumerate(runnable):
        why, pid, kind = unfit(job.agent, scan)
        state = reported(swarm, job.agent, agents)
        ready = Ready(job, pid, scan.table.procs[pid].start_time, kind) if not why else None
        if ready is None:
            verdicts.append(("skipped", why, None))
        elif discovery.terminal_taken(scan.table, pid, kind, pats):
            verdicts.append(("wait", "", ready))
        elif not waits or job.urgent or state == "idle" or (not state and not screen):
            verdicts.append(("ready", "", ready))
        elif state == "busy":
            verdicts.append(("wait", "", ready))
        else:
            verdicts.append(("ready", "", ready))
            look.setdefault(tmux.socket, []).append(i)
    for indexes in look.values():
        tmux = runnable[indexes[0]][0]
        screens = tmux.capture_many([runnable[i][2].agent.pane or "" for i in indexes])
        for i in indexes:
            text = screens.get(runnable[i][2].agent.pane or "")
            if text is None:
                verdicts[i] = ("skipped", "the pane vanished", None)
            elif looks_busy(swarm, text):
                verdicts[i] = ("wait", "", verdicts[i][2])
    return verdicts


def _wait_then_type(swarm: Swarm, tmux: Tmux, ready: Ready) -> list[NudgeEntry]:
    outcome, why = _wait_turn(swarm, tmux, ready)
    if outcome == "ready":
        return type_batch(swarm, tmux, [ready])
    return _final(swarm, ready.job, "pending" if outcome == "pending" else "skipped", why)


def _guard(fn: Any, swarm: Swarm, job_list: Sequence[Job], *args: Any) -> list[NudgeEntry]:
    """Run ``fn``; an unexpected tmux or OS error becomes a recorded failure."""
    try:
        result: list[NudgeEntry] = fn(swarm, *args)
        return result
    except (SwarmError, OSError) as exc:
        return [e for j in job_list for e in _final(swarm, j, "failed", str(exc))]


def nudge_all(swarm: Swarm, jobs: Sequence[Job]) -> list[NudgeEntry]:
    """Nudge for ``jobs``: one scan and one screen capture per tmux server, ready panes
    typed in batches of ``nudge_pool`` panes per tmux call (batches in parallel), busy
    agents waited for in their own threads (at most ``nudge_pool`` at a time)."""
    out: list[NudgeEntry] = []
    runnable: list[tuple[Tmux, discovery.Scan, Job]] = []
    for socket in {j.agent.socket for j in jobs}:
        tmux = current(socket or None)
        mine = [j for j in jobs if j.agent.socket == socket]
        try:
            scan = discovery.scan(tmux, _patterns(swarm))
        except UnavailableError as exc:
            out += [e for j in mine for e in _final(swarm, j, "skipped", str(exc))]
            continue
        runnable += [(tmux, scan, j) for j in mine]
    size = max(1, swarm.settings.nudge_pool)
    with ThreadPoolExecutor(max_workers=size) as pool:
        verdicts = _triage(swarm, runnable)
        later, waiting = [], []
        batches: dict[str, list[Ready]] = {}
        for (tmux, _, job), (verdict, why, ready) in zip(runnable, verdicts, strict=True):
            if ready is None:
                out += _final(swarm, job, "skipped", why)
            elif verdict == "wait":
                waiting.append((tmux, ready))
            else:
                batches.setdefault(tmux.socket, []).append(ready)
        for socket, ready_list in batches.items():
            tmux = current(socket)
            for i in range(0, len(ready_list), size):
                chunk = ready_list[i : i + size]
                later.append(
                    pool.submit(_guard, type_batch, swarm, [r.job for r in chunk], tmux, chunk)
                )
        for tmux, ready in waiting:  # after the batches: waits never delay ready panes
            later.append(pool.submit(_guard, _wait_then_type, swarm, [ready.job], tmux, ready))
        for future in later:
            out += future.result()
    return out


def _patterns(swarm: Swarm) -> tuple[discovery.Pattern, ...]:
    return discovery.parse_patterns(swarm.settings.agent_patterns)


def nudge_message(
    swarm: Swarm, rec: MessageRecord, agents: Sequence[str] | None = None
) -> list[NudgeEntry]:
    """Nudge the recipients of ``rec`` that have a pane (only ``agents`` if given: the
    queues the sender opened)."""
    urgent = rec.type == "urgent"
    targets = [a for a in delivery.recipients(swarm, rec) if agents is None or a.name in agents]
    return nudge_all(swarm, [Job(a, rec, (rec.id,), urgent) for a in targets])


def nudge_pending(swarm: Swarm, agent_name: str) -> list[NudgeEntry]:
    """One nudge for everything that waited while ``agent_name`` was busy."""
    ids = delivery.pending_for(swarm, agent_name)
    agent = registry.load(swarm.paths).get(agent_name)
    if not ids or agent is None or not agent.pane:
        return []
    newest = delivery.find(swarm, ids[-1])
    return nudge_all(swarm, [Job(agent, newest, tuple(ids), True)])


USAGE = (
    "python -m claudeswarm.tmux.nudger --state-dir DIR (message ID [--agents A,B] | pending AGENT)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the detached process (argv as :func:`delivery.spawn` builds it;
    no argparse: every millisecond of start-up delays the nudge). Never raises."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (4, 6) or args[0] != "--state-dir" or args[2] not in ("message", "pending"):
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    state_dir, what, arg = args[1], args[2], args[3]
    only = args[5].split(",") if args[4:5] == ["--agents"] else None
    try:
        with open_swarm(state_dir) as swarm:
            if what == "message":
                nudge_message(swarm, delivery.find(swarm, arg), only)
            else:
                nudge_pending(swarm, arg)
    except SwarmError:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
