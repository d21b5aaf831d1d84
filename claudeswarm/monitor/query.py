"""The monitor's filter line, parsed into a :class:`~claudeswarm.messages.filters.MessageFilter`.

Syntax: words separated by spaces; ``type:question,answer`` (or ``t:``), ``agent:alice``
(``a:``: from or to), ``from:alice``, ``to:bob``; every other word must occur in the body
(case-insensitive). Quote a phrase to keep its spaces: ``"tests failing"``.
"""

from __future__ import annotations

import shlex

from claudeswarm.messages.filters import MessageFilter
from claudeswarm.messages.record import MESSAGE_TYPES

_KEYS = {"type": "types", "t": "types", "agent": "agents", "a": "agents"}
_KEYS |= {"from": "senders", "to": "recipients"}


def parse_filter(line: str) -> MessageFilter:
    """The filter a user typed; ``ValueError`` with a one-line reason if it is wrong.

    Examples
    --------
    >>> f = parse_filter("t:question agent:alice deploy")
    >>> sorted(f.types or ()), sorted(f.agents or ()), f.text
    (['question'], ['alice'], ('deploy',))
    """
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    sets: dict[str, set[str]] = {}
    text: list[str] = []
    for word in words:
        key, sep, value = word.partition(":")
        if sep and key.lower() in _KEYS and value:
            sets.setdefault(_KEYS[key.lower()], set()).update(v for v in value.split(",") if v)
        else:
            text.append(word)
    unknown = sorted(sets.get("types", set()) - set(MESSAGE_TYPES))
    if unknown:
        raise ValueError(f"unknown type {unknown[0]!r}; use one of {', '.join(MESSAGE_TYPES)}")
    return MessageFilter(
        types=_frozen(sets, "types"),
        senders=_frozen(sets, "senders"),
        recipients=_frozen(sets, "recipients"),
        agents=_frozen(sets, "agents"),
        text=tuple(text),
    )


def _frozen(sets: dict[str, set[str]], key: str) -> frozenset[str] | None:
    return frozenset(sets[key]) if key in sets else None
