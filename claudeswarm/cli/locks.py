"""``lock``, ``unlock``, ``refresh``, ``locks``, ``who``: file leases from the shell.

The holder of a lease taken here is the calling agent (:mod:`claudeswarm.agents.caller`: the
registered agent whose process runs this command, else ``--as``, ``CLAUDESWARM_AGENT`` or
this pane's registered agent). Its process is the agent's registered pid when the agent
is registered (``join``), otherwise the calling shell (``os.getppid()``): an unregistered
caller's lease is reclaimable as soon as that shell exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from claudeswarm.cli._common import AsOpt, JsonOpt, duration, emit, swarm, table

if TYPE_CHECKING:
    from claudeswarm.locks.lease import Lease
    from claudeswarm.locks.manager import LockManager

Patterns = Annotated[
    list[str], typer.Argument(help="Paths or glob patterns (*, ?, [...], **).", show_default=False)
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("lock")(lock)
    app.command("unlock")(unlock)
    app.command("refresh")(refresh)
    app.command("locks")(locks)
    app.command("who")(who)


def _manager(as_name: str | None) -> LockManager:
    from claudeswarm.locks.manager import Holder, LockManager
    from claudeswarm.messages import service as messaging

    sw = swarm()
    agent = messaging.resolve_sender(sw, as_name)
    return LockManager(sw, Holder.for_cli(sw.paths, agent))


def _describe(lease: Lease, now: float) -> str:
    from claudeswarm.timeutil import age

    where = f"pane {lease.pane}" if lease.pane else f"pid {lease.pid}"
    pats = " ".join(lease.patterns)
    text = f"{pats}  {lease.mode} by {lease.agent} ({where}) for {age(now - lease.acquired)}"
    return text + (f": {lease.reason}" if lease.reason else "")


def _warn(mgr: LockManager) -> None:
    import sys

    from claudeswarm.sanitize import inert

    for text in mgr.warnings:
        print(f"claudeswarm: warning: {inert(text)}", file=sys.stderr)


def lock(
    patterns: Patterns,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (shown to others).")] = "",
    ttl: Annotated[
        float | None,
        typer.Option(
            "--ttl",
            parser=duration,
            help="Lease time without a heartbeat, e.g. 10m (setting lock_ttl_seconds).",
        ),
    ] = None,
    shared: Annotated[
        bool, typer.Option("--shared", help="Shared: coexists with other shared locks only.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            parser=duration,
            help="Wait up to DURATION (e.g. 30s) for the lock to be free.",
        ),
    ] = None,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lock PATTERN... all at once (or none). Exit 3 when refused: one line names the
    holder, its pane, its pattern, its age and its reason. Exit 4 when --wait timed out.
    A lease held by a dead process, or not refreshed within its TTL, is broken (and the
    break announced in the log)."""
    mgr = _manager(as_name)
    lease = mgr.acquire(
        patterns, mode="shared" if shared else "exclusive", reason=reason, ttl=ttl, wait=wait
    )
    _warn(mgr)
    emit(
        lease,
        as_json,
        lambda: (
            f"locked {' '.join(lease.patterns)} (generation "
            f"{lease.generation}, {lease.mode}, ttl {lease.ttl:g}s)"
        ),
    )


def unlock(
    patterns: Annotated[
        list[str] | None, typer.Argument(help="Patterns to release, spelled as locked.")
    ] = None,
    release_all: Annotated[bool, typer.Option("--all", help="Release all your locks.")] = False,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Quarantine a corrupt lease table (drops every lease)."),
    ] = False,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Release your locks on PATTERN... (or --all). Exit 3 if you do not hold one of them
    (nothing is released then)."""
    if repair:
        from claudeswarm.locks.manager import LockManager

        where = LockManager(swarm()).repair()
        emit(
            {"quarantined": str(where) if where else None},
            as_json,
            lambda: f"quarantined to {where}" if where else "lease table is fine",
        )
        return
    if bool(patterns) == release_all:
        from claudeswarm.errors import UsageError

        raise UsageError("unlock: give PATTERN... or --all (not both)")
    mgr = _manager(as_name)
    gone = mgr.release(None if release_all else patterns)
    emit(gone, as_json, lambda: f"released {len(gone)} lease(s)" if gone else "no locks held")


def refresh(
    patterns: Annotated[
        list[str] | None, typer.Argument(help="Only leases holding these patterns.")
    ] = None,
    ttl: Annotated[
        float | None, typer.Option("--ttl", parser=duration, help="Also set a new TTL.")
    ] = None,
    as_name: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Renew the heartbeat of your leases (all, or those holding PATTERN...)."""
    mgr = _manager(as_name)
    leases = mgr.refresh(patterns or None, ttl=ttl)
    emit(leases, as_json, lambda: f"refreshed {len(leases)} lease(s)")


def locks(as_json: JsonOpt = False) -> None:
    """List every lease (read-only: nothing is broken or changed)."""
    from claudeswarm.locks.manager import LockManager

    mgr = LockManager(swarm())
    leases = mgr.list()
    now = mgr.swarm.clock()
    from claudeswarm.agents import registry

    agents = registry.load(mgr.swarm.paths)
    states = [mgr.state_of(lease, agents) for lease in leases]
    rows = [
        {"lease": lease.to_json(), "state": state}
        for lease, state in zip(leases, states, strict=True)
    ]
    emit(rows, as_json, lambda: _table(leases, states, now))


def _table(leases: list[Lease], states: list[str], now: float) -> str:
    from claudeswarm.timeutil import age

    if not leases:
        return "no locks held"
    rows = [
        (
            lease.generation,
            lease.agent,
            lease.pane or "-",
            lease.mode,
            " ".join(lease.patterns),
            age(now - lease.acquired),
            age(lease.expires_at - now),
            state,
            lease.reason,
        )
        for lease, state in zip(leases, states, strict=True)
    ]
    header = ("GEN", "AGENT", "PANE", "MODE", "PATTERNS", "AGE", "EXPIRES IN", "STATE", "REASON")
    return table(rows, header)


def who(
    path: Annotated[str, typer.Argument(help="A path (or pattern).", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Who holds a lock covering PATH (read-only)."""
    from claudeswarm.locks.manager import LockManager

    mgr = LockManager(swarm())
    res = mgr.who(path)
    now = mgr.swarm.clock()
    data = {
        "path": res.path,
        "holders": [
            {"lease": lease.to_json(), "state": state}
            for lease, state in zip(res.leases, res.states, strict=True)
        ],
    }
    emit(
        data,
        as_json,
        lambda: "\n".join(
            [f"{res.path}: free"]
            if not res.leases
            else [
                f"{res.path}: {_describe(lease, now)} [{state}]"
                for lease, state in zip(res.leases, res.states, strict=True)
            ]
        ),
    )
