"""MessageFilter: which records to show, composable with ``&``.

Used by ``claudeswarm log`` and the monitor. Every criterion left at its default matches
everything; combining two filters keeps only records both accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from claudeswarm.messages.record import BROADCAST, MessageRecord, format_ts


def _ts(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("time bounds must be timezone-aware")
    return format_ts(moment.astimezone(UTC).timestamp())


@dataclass(frozen=True)
class MessageFilter:
    """Criteria on records; all must hold.

    Parameters
    ----------
    types : allowed message types (``None``: any).
    senders : allowed senders.
    recipients : records addressed to one of these (a broadcast reaches everyone).
    agents : records sent by *or* addressed to one of these.
    since, until : aware datetimes; ``since <= ts < until``.
    text : case-insensitive substrings that must all occur in the body.

    Examples
    --------
    >>> f = MessageFilter(types=frozenset({"question"})) & MessageFilter(text=("deploy",))
    >>> f.types, f.text
    (frozenset({'question'}), ('deploy',))
    """

    types: frozenset[str] | None = None
    senders: frozenset[str] | None = None
    recipients: frozenset[str] | None = None
    agents: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_since", _ts(self.since))
        object.__setattr__(self, "_until", _ts(self.until))
        object.__setattr__(self, "_text", tuple(t.casefold() for t in self.text))

    def __and__(self, other: MessageFilter) -> MessageFilter:
        return MessageFilter(
            types=_meet(self.types, other.types),
            senders=_meet(self.senders, other.senders),
            recipients=_meet(self.recipients, other.recipients),
            agents=_meet(self.agents, other.agents),
            since=_later(self.since, other.since),
            until=_earlier(self.until, other.until),
            text=self.text + other.text,
        )

    def __call__(self, rec: MessageRecord) -> bool:
        return self.matches(rec)

    def matches(self, rec: MessageRecord) -> bool:
        """True if ``rec`` passes every criterion."""
        if self.types is not None and rec.type not in self.types:
            return False
        if self.senders is not None and rec.sender not in self.senders:
            return False
        if self.recipients is not None and not _reaches(rec, self.recipients):
            return False
        if (
            self.agents is not None
            and rec.sender not in self.agents
            and not _reaches(rec, self.agents)
        ):
            return False
        since: str | None = getattr(self, "_since")  # noqa: B009 - set in __post_init__
        until: str | None = getattr(self, "_until")  # noqa: B009
        if since is not None and rec.ts < since:
            return False
        if until is not None and rec.ts >= until:
            return False
        texts: tuple[str, ...] = getattr(self, "_text")  # noqa: B009
        if texts:
            body = rec.body.casefold()
            return all(t in body for t in texts)
        return True


def _reaches(rec: MessageRecord, names: frozenset[str]) -> bool:
    return BROADCAST in rec.to or any(t in names for t in rec.to)


def _meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
