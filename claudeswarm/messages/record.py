"""The message record and the names it may carry.

A record is one line of ``messages.jsonl``::

    {"v":1,"id":"01JD...","ts":"2026-11-22T22:07:56.123Z","from":"backend",
     "to":["frontend"],"type":"question","body":"...","reply_to":null}

``to`` is a list of agent names, or ``["all"]`` for a broadcast. ``id`` sorts by time
(48-bit milliseconds then 80 random bits, Crockford base32, like a ULID).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
BROADCAST = "all"

#: The fixed set of message types, with what each is for (shown in ``--help``).
MESSAGE_TYPES: dict[str, str] = {
    "info": "a plain note (the default)",
    "question": "asks the recipient something; expects an answer",
    "answer": "answers a question (use --reply-to)",
    "blocked": "the sender cannot go on until something happens",
    "done": "the sender finished something the recipient waits for",
    "review": "asks the recipient to review a change",
    "ack": "acknowledges a message (use --reply-to)",
    "urgent": "needs attention now",
    "task": "a task board event (created, claimed, done, failed, reaped)",
    "system": "written by claudeswarm itself (a broken lease, a rotation)",
}

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def check_name(name: str, what: str = "agent name") -> str:
    """Return ``name`` if it is a valid agent name, else raise ``ValueError``.

    Names are 1-32 characters of lowercase letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit; ``all`` is reserved for broadcasts.
    """
    if not _NAME_RE.fullmatch(name) or name == BROADCAST:
        raise ValueError(f"invalid {what} {name!r}: use 1-32 of a-z 0-9 . _ - (and not 'all')")
    return name


#: a kind is the stem of default names (``claude`` -> ``claude-1``): room is left for ``-N``
KIND_MAX = 24


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a valid agent kind, else raise ``ValueError``.

    Kinds obey the name rule (default names are ``<kind>-<n>``) and are at most
    :data:`KIND_MAX` characters, so every default name made from one is a valid name.

    Examples
    --------
    >>> check_kind("claude")
    'claude'
    >>> check_kind("../x")
    Traceback (most recent call last):
    ValueError: invalid agent kind '../x': use 1-24 of a-z 0-9 . _ - (and not 'all')
    """
    if len(kind) > KIND_MAX or not _NAME_RE.fullmatch(kind) or kind == BROADCAST:
        raise ValueError(
            f"invalid agent kind {kind!r}: use 1-{KIND_MAX} of a-z 0-9 . _ - (and not 'all')"
        )
    return kind


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_B32[value & 31])
        value >>= 5
    return "".join(reversed(out))


class _IdSource:
    """Monotonic within a process: ids from one process never go backwards.

    Thread-safe, and reset in a forked child: a child that continued its parent's
    sequence inside the same millisecond would draw the parent's next ids.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def new(self, now: float) -> str:
        ms = int(now * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                rand = self._last_rand + 1
            else:
                rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
            self._last_ms, self._last_rand = ms, rand
        return _b32(ms, 10) + _b32(rand, 16)


_ids = _IdSource()
os.register_at_fork(after_in_child=_ids.reset)


def new_id(now: float | None = None) -> str:
    """A new sortable unique id for a record created at ``now`` (epoch seconds)."""
    return _ids.new(time.time() if now is None else now)


def format_ts(epoch: float) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``: fixed width, so text order = time order."""
    whole = int(epoch)
    ms = round((epoch - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def parse_ts(text: str) -> datetime:
    """The aware UTC datetime of a record timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message as stored in the log (named so as not to clash with Textual's Message)."""

    id: str
    ts: str
    sender: str
    to: tuple[str, ...]
    type: str
    body: str
    reply_to: str | None = None
    v: int = SCHEMA_VERSION

    @property
    def is_broadcast(self) -> bool:
        return BROADCAST in self.to

    def addressed_to(self, name: str) -> bool:
        """True if ``name`` should find this in its inbox (never its own messages)."""
        return self.sender != name and (name in self.to or BROADCAST in self.to)

    def to_json(self) -> dict[str, Any]:
        """The on-disk JSON object."""
        return {
            "v": self.v,
            "id": self.id,
            "ts": self.ts,
            "from": self.sender,
            "to": list(self.to),
            "type": self.type,
            "body": self.body,
            "reply_to": self.reply_to,
        }

    @classmethod
    def from_json(cls, obj: Any) -> MessageRecord:
        """Validate a parsed line; raise ``ValueError`` naming the first bad field.

        One flat check on the hot path (the tailer calls this per line); the reason is
        worked out only for records that fail it.
        """
        if type(obj) is dict:
            get = obj.get
            v, rid, ts, sender = get("v"), get("id"), get("ts"), get("from")
            to, mtype, body, reply_to = get("to"), get("type"), get("body"), get("reply_to")
            if (
                v == SCHEMA_VERSION
                and type(v) is int
                and type(rid) is str
                and type(ts) is str
                and type(sender) is str
                and type(body) is str
                and mtype in MESSAGE_TYPES
                and type(to) is list
                and to
                and (reply_to is None or type(reply_to) is str)
                and all(type(t) is str for t in to)
            ):
                return cls(rid, ts, sender, tuple(to), mtype, body, reply_to, v)
        raise ValueError(_why_invalid(obj))


def _why_invalid(obj: Any) -> str:
    if type(obj) is not dict:
        return "record is not an object"
    for key in ("v", "id", "ts", "from", "to", "type", "body"):
        if key not in obj:
            return f"missing field {key}"
    if obj["v"] != SCHEMA_VERSION or type(obj["v"]) is not int:
        return f"unsupported version {obj['v']!r}"
    if obj["type"] not in MESSAGE_TYPES:
        return f"unknown type {obj['type']!r}"
    to = obj["to"]
    if type(to) is not list or not to or any(type(t) is not str for t in to):
        return "to must be a non-empty list of names"
    return "id, ts, from, body and reply_to must be strings"
