"""The nudger: a detached process that types nudge lines into recipients' panes.

``send`` starts it (``python -m claudeswarm.nudger --state-dir DIR message ID``) after the
message is logged, so tmux latency never reaches the sender. For each recipient, on one
scan of its tmux server:

1. the pane must still run the agent: the registered pid with the same start time lives
   under the pane, an agent process (not a bare shell) runs there and owns the terminal's
   foreground; otherwise nothing is typed and the message simply stays unread in the log;
2. with ``nudge = idle`` (and not ``urgent``) wait while the agent is busy: its reported
   state, else the screen heuristic; past ``nudge_busy_wait`` the nudge is left pending
   and sent when the agent reports idle (``claudeswarm state idle``);
3. under the pane's lock (one sender per pane), re-check the process, type the line with
   ``send-keys -l --``, pause ``nudge_enter_delay``, press Enter.

Broadcasts nudge all panes in parallel with a pool of ``nudge_pool`` threads.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from claudeswarm import delivery, discovery, procs, registry
from claudeswarm.delivery import NudgeEntry
from claudeswarm.errors import SwarmError, UnavailableError
from claudeswarm.identity import live
from claudeswarm.messaging import Swarm, open_swarm
from claudeswarm.models import MessageRecord
from claudeswarm.paths import ensure_dir
from claudeswarm.registry import AgentRecord
from claudeswarm.tmux import Tmux, current

LOCK_TIMEOUT = 30.0
POLL = 0.25


@dataclass(frozen=True)
class Job:
    """Nudge ``agent`` about ``rec``; ``ids`` are every message this one nudge covers."""

    agent: AgentRecord
    rec: MessageRecord
    ids: tuple[str, ...]
    urgent: bool


def unfit(agent: AgentRecord, scan: discovery.Scan) -> tuple[str, int]:
    """Why ``agent``'s pane must not be typed into (``""`` if it may), and the agent pid."""
    if (agent.pane or "") not in scan.panes:
        return f"pane {agent.pane} is gone", 0
    if not live(agent, scan):
        return "the agent's process has exited", 0
    hit = next((f for f in scan.found if f.pane.pane_id == agent.pane), None)
    if hit is None:
        return "no agent runs in the pane (bare shell)", 0
    if not discovery.foreground(scan.table, hit.pid):
        return "the agent is not in the pane's foreground", 0
    return "", hit.pid


def _still_fit(agent: AgentRecord, pid: int, start: int) -> bool:
    proc = procs.read_proc(pid)
    return (
        registry.process_alive(agent.pid, agent.start_time)
        and proc is not None
        and proc.start_time == start
        and proc.tpgid == proc.pgrp
    )


def busy(swarm: Swarm, tmux: Tmux, agent: AgentRecord) -> bool:
    """Reported state first (``busy``/``idle``); otherwise the screen heuristic."""
    now = registry.load(swarm.paths).get(agent.name)
    state = now.state if now else agent.state
    if state in ("busy", "idle"):
        return state == "busy"
    if swarm.settings.idle_heuristic != "screen":
        return False
    screen = tmux.capture(agent.pane or "", 8)
    return any(re.search(p, screen, re.IGNORECASE) for p in swarm.settings.busy_screen_patterns)


def _wait_idle(swarm: Swarm, tmux: Tmux, job: Job) -> str:
    """``idle``, ``read`` (nothing left to nudge for) or ``busy`` after the wait."""
    deadline = time.monotonic() + swarm.settings.nudge_busy_wait
    while busy(swarm, tmux, job.agent):
        read = delivery.reads(swarm)
        if all((mid, job.agent.name) in read for mid in job.ids):
            return "read"
        if time.monotonic() >= deadline:
            return "busy"
        time.sleep(POLL)
    return "idle"


def pane_lock_path(swarm: Swarm, tmux: Tmux, pane: str) -> str:
    """One lock file per pane per server (pane ids are unique only within a server)."""
    server = hashlib.sha1(tmux.socket.encode()).hexdigest()[:8]
    folder = ensure_dir(swarm.paths.file("panes"))
    return str(folder / f"{server}-{pane.lstrip('%')}.lock")


def _type(swarm: Swarm, tmux: Tmux, job: Job, pid: int, start: int) -> tuple[str, str]:
    from filelock import FileLock, Timeout

    line = delivery.nudge_line(job.rec, swarm.settings.nudge_preview_chars, len(job.ids))
    pane = job.agent.pane or ""
    try:
        with FileLock(pane_lock_path(swarm, tmux, pane), timeout=LOCK_TIMEOUT):
            if not _still_fit(job.agent, pid, start):
                return "skipped", "the agent's process exited before typing"
            tmux.send_literal(pane, line)
            time.sleep(swarm.settings.nudge_enter_delay)
            tmux.send_enter(pane)
    except Timeout:
        return "failed", f"pane {pane} stayed locked by another nudge for {LOCK_TIMEOUT:.0f}s"
    return "nudged", ""


def nudge_one(swarm: Swarm, tmux: Tmux, scan: discovery.Scan, job: Job) -> list[NudgeEntry]:
    """Check, maybe wait, then type one nudge; record the outcome for every id covered."""
    try:
        outcome, reason = _attempt(swarm, tmux, scan, job)
    except SwarmError as exc:
        outcome, reason = "failed", str(exc)
    except OSError as exc:
        outcome, reason = "failed", f"{exc.strerror or exc}"
    entries = [delivery.record(swarm, mid, job.agent, outcome, reason) for mid in job.ids]
    delivery.append_nudges(swarm, entries)
    return entries


def _attempt(swarm: Swarm, tmux: Tmux, scan: discovery.Scan, job: Job) -> tuple[str, str]:
    why, pid = unfit(job.agent, scan)
    if why:
        return "skipped", why
    if delivery.mode(swarm) == "idle" and not job.urgent:
        waited = _wait_idle(swarm, tmux, job)
        if waited == "read":
            return "skipped", "read before the agent turned idle"
        if waited == "busy":
            return "pending", "agent busy; nudged when it reports idle"
    return _type(swarm, tmux, job, pid, scan.table.procs[pid].start_time)


def nudge_all(swarm: Swarm, jobs: Sequence[Job]) -> list[NudgeEntry]:
    """Run ``jobs`` in parallel (``nudge_pool`` threads), one scan per tmux server."""
    scans: dict[str, tuple[Tmux, discovery.Scan] | str] = {}
    for socket in {j.agent.socket for j in jobs}:
        tmux = current(socket or None)
        try:
            scans[socket] = (tmux, discovery.scan(tmux, _patterns(swarm)))
        except UnavailableError as exc:
            scans[socket] = str(exc)
    out: list[NudgeEntry] = []
    runnable: list[tuple[tuple[Tmux, discovery.Scan], Job]] = []
    for job in jobs:
        got = scans[job.agent.socket]
        if isinstance(got, str):
            entries = [delivery.record(swarm, m, job.agent, "skipped", got) for m in job.ids]
            delivery.append_nudges(swarm, entries)
            out += entries
        else:
            runnable.append((got, job))
    if runnable:
        workers = max(1, min(swarm.settings.nudge_pool, len(runnable)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(nudge_one, swarm, t, sc, job) for (t, sc), job in runnable]
            for future in futures:
                out += future.result()
    return out


def _patterns(swarm: Swarm) -> tuple[discovery.Pattern, ...]:
    return discovery.parse_patterns(swarm.settings.agent_patterns)


def nudge_message(swarm: Swarm, rec: MessageRecord) -> list[NudgeEntry]:
    """Nudge every recipient of ``rec`` that has a pane."""
    urgent = rec.type == "urgent"
    targets = delivery.recipients(swarm, rec)
    return nudge_all(swarm, [Job(a, rec, (rec.id,), urgent) for a in targets])


def nudge_pending(swarm: Swarm, agent_name: str) -> list[NudgeEntry]:
    """One nudge for everything that waited while ``agent_name`` was busy."""
    ids = delivery.pending_for(swarm, agent_name)
    agent = registry.load(swarm.paths).get(agent_name)
    if not ids or agent is None or not agent.pane:
        return []
    newest = delivery.find(swarm, ids[-1])
    return nudge_all(swarm, [Job(agent, newest, tuple(ids), True)])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the detached process. Returns an exit code; never raises."""
    parser = argparse.ArgumentParser(prog="claudeswarm.nudger")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("what", choices=("message", "pending"))
    parser.add_argument("arg")
    ns = parser.parse_args(argv)
    try:
        with open_swarm(ns.state_dir) as swarm:
            if ns.what == "message":
                nudge_message(swarm, delivery.find(swarm, ns.arg))
            else:
                nudge_pending(swarm, ns.arg)
    except SwarmError:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
