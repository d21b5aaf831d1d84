"""File leases: lock glob patterns, see who holds what, recover from dead holders.

A lease binds patterns to a holder (agent name, pane, pid and that process's start time)
with a mode (exclusive or shared), a reason, a heartbeat and a TTL. Every acquire is one
check-and-grant under ``flock`` on ``locks.lock`` (see :mod:`claudeswarm.locks.lease` for the
journal format). A conflicting lease is broken at once on proof of death: its pid is gone,
its pid now belongs to another process (another start time), or the registry says its agent
is gone or moved to another pane. Otherwise it is broken only after ``ttl`` seconds
without a heartbeat. A break is announced in the message log after it is committed.

Ownership: leases of the same agent never conflict with each other (one agent's commands
run from many short-lived shells). Release and refresh act only on the calling agent's
leases and, for a :class:`LockManager` that granted leases itself, only on the generations
it was granted: a holder whose lease was broken (say, it was SIGSTOPped past its TTL) gets
a refusal, never the lease that replaced it.

Looking is read-only: :func:`list_leases`, :meth:`LockManager.who` and
:meth:`LockManager.list` never write, delete or break anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudeswarm.agents import registry
from claudeswarm.errors import (
    InvalidArgumentError,
    LockConflictError,
    RefusedError,
    SwarmError,
    UsageError,
)
from claudeswarm.locks.lease import Holder, Lease, Table, grant_record
from claudeswarm.locks.liveness import Waiter, death_of, refusal
from claudeswarm.locks.patterns import canonical, escape
from claudeswarm.storage.files.leases import JOURNAL, LeaseStore
from claudeswarm.storage.paths import StatePaths, project_relative
from claudeswarm.swarm import Swarm

__all__ = [
    "Holder",
    "Lease",
    "LockConflictError",
    "LockManager",
    "WhoResult",
    "list_leases",
    "state_files",
]

MAX_REASON = 500
LeaseList = list[Lease]
Records = list[dict[str, object]]
Broken = list[tuple[Lease, str]]


def state_files(paths: StatePaths) -> list[Path]:
    """The files the lease table lives in (stat them to notice changes)."""
    return [paths.file(JOURNAL)]


def list_leases(swarm: Swarm) -> list[Lease]:
    """Every lease in the table, oldest generation first. Read-only: takes no lock,
    writes nothing, breaks nothing (expired or dead leases are listed as they are).

    Raises :class:`~claudeswarm.errors.StateError` when the table is a symlink or has
    no header (corrupt); a torn last record is simply not shown yet.
    """
    table = Table(swarm.paths.file(JOURNAL)).sync().readable()
    return [lease for _, lease in sorted(table.leases.items())]


@dataclass(frozen=True)
class WhoResult:
    """The leases covering a path or pattern, and whether each is still live."""

    path: str
    leases: list[Lease]
    states: list[str]


class LockManager:
    """Acquire, release, refresh and inspect leases for one holder.

    Parameters
    ----------
    swarm
        The state directory, settings and clock.
    holder
        Who is acting; ``None`` for a read-only manager (``who``, ``list``).
    durable
        fsync grants and releases (default). Heartbeats are never fsynced: losing one
        to a power cut only makes a lease look older.
    lock_timeout
        Seconds a change waits for the writer lock (``locks.lock``) before
        :class:`~claudeswarm.errors.LockTimeout`; ``0`` tries once (hooks, which
        must never wait). Looking takes no lock at all.
    """

    def __init__(
        self,
        swarm: Swarm,
        holder: Holder | None = None,
        *,
        durable: bool = True,
        lock_timeout: float | None = 30.0,
    ):
        self.swarm = swarm
        self.holder = holder
        self.durable = durable
        self.store = LeaseStore(
            swarm.paths, swarm.settings, durable=durable, lock_timeout=lock_timeout
        )
        self.journal = self.store.journal
        self.granted: set[int] = set()
        #: problems that did not stop an operation (an announcement that failed)
        self.warnings: list[str] = []

    @property
    def table(self) -> Table:
        """The in-process view of the lease table (kept up to date incrementally)."""
        return self.store.table

    # -- looking (read-only) ---------------------------------------------------------

    def list(self) -> LeaseList:
        """Every lease, oldest first (read-only)."""
        self.table.sync().readable()
        return [lease for _, lease in sorted(self.table.leases.items())]

    def who(self, raw: str) -> WhoResult:
        """Leases whose patterns overlap ``raw`` (a path or a pattern), read-only."""
        pattern = canonical(self.swarm.paths.root, raw)
        self.table.sync().readable()
        gens = sorted({e.generation for e in self.table.index.conflicts(pattern, True, None)})
        leases = [self.table.leases[g] for g in gens]
        agents = registry.load(self.swarm.paths) if leases else {}
        return WhoResult(pattern, leases, [self.state_of(lease, agents) for lease in leases])

    def check(self, pattern: str, *, exclusive: bool = True) -> LeaseList:
        """Live-or-not leases of other agents conflicting with canonical ``pattern``."""
        self.table.sync()
        owner = self.holder.agent if self.holder else None
        gens = {e.generation for e in self.table.index.conflicts(pattern, exclusive, owner)}
        return [self.table.leases[g] for g in sorted(gens)]

    def blockers(self, raw: str, *, exclusive: bool = True) -> LeaseList:
        """Live leases of other agents that would refuse a lock on pattern ``raw`` now.

        Read-only: dead or expired leases are left for an acquire to break.
        """
        return self._live(self.check(canonical(self.swarm.paths.root, raw), exclusive=exclusive))

    def edit_blockers(self, path: str) -> LeaseList:
        """Live leases of other agents covering the file ``path``: what an edit hook asks
        before letting an edit through. Read-only; takes no lock.

        ``path`` (absolute, or relative to the project root) goes through the path rules
        of a lock (:func:`~claudeswarm.storage.paths.project_relative`), then is taken literally:
        ``*``, ``?`` and ``[`` in a file name are part of the name, and control characters
        (which a pattern may not hold) are too. A path outside the project, which no lease
        can cover, raises :class:`UsageError`; a lease table without its header raises
        :class:`~claudeswarm.errors.StateError` (nothing in it can be trusted).
        """
        rel = project_relative(self.swarm.paths.root, path)
        self.table.sync().readable()
        return self._live(self.check(escape(rel) if rel else "**"))

    def _live(self, found: LeaseList) -> LeaseList:
        agents = registry.load(self.swarm.paths) if found else {}
        return [lease for lease in found if self.state_of(lease, agents) == "live"]

    def state_of(self, lease: Lease, agents: registry.Agents | None = None) -> str:
        """``live``, ``expired`` or ``dead: <why>`` (no change is made)."""
        why = death_of(lease, registry.load(self.swarm.paths) if agents is None else agents)
        if why:
            return f"dead: {why}"
        return "expired" if self.swarm.clock() > lease.expires_at else "live"

    # -- acquiring -------------------------------------------------------------------

    def acquire(
        self,
        patterns: Sequence[str],
        *,
        mode: str = "exclusive",
        reason: str = "",
        ttl: float | None = None,
        wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Lease:
        """Lease every pattern at once, or none (all-or-nothing).

        Raises :class:`RefusedError` naming the holder, its pattern, reason and age when a
        live lease conflicts. ``wait`` seconds: retry until granted, waking when the table
        changes or a conflicting lease expires, with backoff in between; then
        :class:`~claudeswarm.errors.LockTimeout` (an ``UnavailableError`` and a ``TimeoutError``).
        """
        holder = self._need_holder()
        wanted = self._canonical(patterns)
        mode = _check_mode(mode)
        reason = _check_reason(reason)
        ttl = self.swarm.settings.lock_ttl_seconds if ttl is None else ttl
        if not 0 < ttl < 10**9:
            raise InvalidArgumentError("ttl", f"must be positive and finite, not {ttl!r}")
        if not wait:
            return self._try(holder, wanted, mode, reason, ttl)
        waiter = Waiter(self.journal, wait, sleep)
        while True:
            try:
                return self._try(holder, wanted, mode, reason, ttl)
            except RefusedError as exc:
                waiter.pause(exc, self.swarm.clock())

    def _try(
        self, holder: Holder, wanted: tuple[str, ...], mode: str, reason: str, ttl: float
    ) -> Lease:
        with self.store.write() as table:
            broken, blocking = self._conflicts(table, holder, wanted, mode)
            records: Records = [{"op": "break", "g": b.generation, "why": why} for b, why in broken]
            granted: Lease | None = None
            if blocking is None:
                now = self.swarm.clock()
                granted = Lease(
                    holder.agent,
                    holder.pane,
                    holder.pid,
                    holder.start_time,
                    wanted,
                    mode,
                    reason,
                    now,
                    now,
                    float(ttl),
                    table.next_generation,
                )
                records.append(grant_record(granted))
            if records:
                self.store.commit(table, records, durable=True)
        self._announce(broken)  # only after the breaks are committed
        if granted is None:
            assert blocking is not None
            raise refusal(blocking[0], blocking[1], self.swarm.clock())
        self.granted.add(granted.generation)
        return granted

    def _conflicts(
        self, table: Table, holder: Holder, wanted: tuple[str, ...], mode: str
    ) -> tuple[Broken, tuple[Lease, str] | None]:
        """Conflicting leases split into breakable ones (with why) and the first live one."""
        broken: Broken = []
        blocking: tuple[Lease, str] | None = None
        agents: registry.Agents | None = None
        seen: set[int] = set()
        for pattern in wanted:
            for entry in table.index.conflicts(pattern, mode == "exclusive", holder.agent):
                if entry.generation in seen:
                    continue
                seen.add(entry.generation)
                lease = table.leases[entry.generation]
                agents = agents if agents is not None else registry.load(self.swarm.paths)
                why = self._breakable(lease, agents)
                if why:
                    broken.append((lease, why))
                elif blocking is None:
                    blocking = (lease, pattern)
        return broken, blocking

    def _breakable(self, lease: Lease, agents: registry.Agents) -> str | None:
        why = death_of(lease, agents)
        if why:
            return why
        now = self.swarm.clock()
        if now > lease.expires_at:
            return f"lease expired {int(now - lease.expires_at)}s ago without a heartbeat"
        return None

    def _announce(self, broken: Iterable[tuple[Lease, str]]) -> None:
        from claudeswarm.messages.service import announce

        for lease, why in broken:
            pats = ", ".join(repr(p) for p in lease.patterns)
            where = f"pane {lease.pane}, " if lease.pane else ""
            body = (
                f"lock broken: {pats} held by {lease.agent} ({where}pid {lease.pid}, "
                f"generation {lease.generation}): {why}"
            )
            try:
                announce(self.swarm, body)
            except (SwarmError, OSError) as exc:
                # the break (and maybe our grant) is already committed: failing the call
                # now would hide a lease we hold, so report it beside the result instead
                self.warnings.append(f"could not announce ({exc}): {body}")

    # -- releasing and refreshing ----------------------------------------------------

    def release(
        self, patterns: Sequence[str] | None = None, *, generation: int | None = None
    ) -> LeaseList:
        """Release ``patterns`` (or every lease with ``patterns=None``) of this holder.

        Returns the leases touched (as they were). Refused, changing nothing, when a
        pattern is not held by us, or a generation we were granted has been broken.
        """
        holder = self._need_holder()
        wanted = self._canonical(patterns) if patterns is not None else None
        with self.store.write() as table:
            mine = self._mine(table, holder, generation)
            if wanted is None:
                hit = mine
                records = [{"op": "release", "g": lease.generation} for lease in hit]
            else:
                hit, records = _drops(mine, wanted, holder.agent, table)
            if records:
                self.store.commit(table, records, durable=True)
            self.granted &= set(table.leases)  # _mine checked none was lost: these were ours
        return hit

    def refresh(
        self, patterns: Sequence[str] | None = None, *, ttl: float | None = None
    ) -> LeaseList:
        """Renew the heartbeat of our leases (those holding ``patterns``, or all).

        Cheap for hooks that call it on every tool call: when every lease concerned got a
        heartbeat less than ``lock_refresh_interval_seconds`` ago, nothing is written and
        no lock is taken. Refused when we hold nothing or a lease we were granted is gone.
        """
        holder = self._need_holder()
        wanted = self._canonical(patterns) if patterns is not None else None
        if ttl is not None and not 0 < ttl < 10**9:
            raise InvalidArgumentError("ttl", f"must be positive and finite, not {ttl!r}")
        now = self.swarm.clock()
        recent = now - self.swarm.settings.lock_refresh_interval_seconds
        self.table.sync()
        fresh = self._select(self._mine(self.table, holder, None), wanted)
        if ttl is None and fresh and all(lease.heartbeat >= recent for lease in fresh):
            return fresh
        with self.store.write() as table:
            hit = self._select(self._mine(table, holder, None), wanted)
            if not hit:
                raise RefusedError(f"agent {holder.agent} holds no lock to refresh")
            records = [{"op": "beat", "g": lease.generation, "at": now} for lease in hit]
            if ttl is not None:
                for rec in records:
                    rec["ttl"] = float(ttl)
            self.store.commit(table, records, durable=False)
        return [table.leases[lease.generation] for lease in hit]

    def _select(self, mine: LeaseList, wanted: tuple[str, ...] | None) -> LeaseList:
        agent = self.holder.agent if self.holder else "?"
        if wanted is None:
            return mine
        hit = [lease for lease in mine if set(wanted) & set(lease.patterns)]
        missing = set(wanted) - {p for lease in hit for p in lease.patterns}
        if missing:
            raise RefusedError(f"{agent} holds no lock on {sorted(missing)[0]!r}")
        return hit

    def _mine(self, table: Table, holder: Holder, generation: int | None) -> LeaseList:
        """Our leases; refused if a generation this manager was granted is gone."""
        if generation is not None:
            lease = table.leases.get(generation)
            if lease is None or lease.agent != holder.agent:
                raise RefusedError(f"lease generation {generation} is not held by {holder.agent}")
            return [lease]
        lost = sorted(g for g in self.granted if g not in table.leases)
        if lost:
            self.granted -= set(lost)
            raise RefusedError(
                f"lease generation {lost[0]} of {holder.agent} was broken or released "
                "elsewhere; lock again"
            )
        gens = table.by_agent.get(holder.agent, set())
        if self.granted:
            gens = gens & self.granted
        return [table.leases[g] for g in sorted(gens)]

    def repair(self) -> Path | None:
        """Quarantine an unreadable lease table; every lease in it is dropped."""
        return self.store.repair()

    # -- helpers ---------------------------------------------------------------------

    def _need_holder(self) -> Holder:
        if self.holder is None:
            raise UsageError("this lock manager has no holder: it can only look")
        return self.holder

    def _canonical(self, patterns: Sequence[str]) -> tuple[str, ...]:
        if not patterns:
            raise UsageError("no pattern given")
        return tuple(dict.fromkeys(canonical(self.swarm.paths.root, p) for p in patterns))


def _drops(
    mine: list[Lease], wanted: tuple[str, ...], agent: str, table: Table
) -> tuple[list[Lease], list[dict[str, object]]]:
    hit = [lease for lease in mine if set(wanted) & set(lease.patterns)]
    missing = set(wanted) - {p for lease in hit for p in lease.patterns}
    if missing:
        pattern = sorted(missing)[0]
        others = [e for e in table.index.candidates(pattern) if e.pattern == pattern]
        who = f" (held by {others[0].owner})" if others else ""
        raise RefusedError(f"{agent} holds no lock on {pattern!r}{who}; nothing was released")
    records: list[dict[str, object]] = [
        {"op": "drop", "g": lease.generation, "patterns": sorted(set(wanted) & set(lease.patterns))}
        for lease in hit
    ]
    return hit, records


def _check_mode(mode: str) -> str:
    if mode not in ("exclusive", "shared"):
        raise UsageError(f"unknown lock mode {mode!r}; use exclusive or shared")
    return mode


def _check_reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise InvalidArgumentError(
            "reason", f"is {len(reason)} characters; the limit is {MAX_REASON}"
        )
    return " ".join(reason.split())
