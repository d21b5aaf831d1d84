"""A rate limiter whose limits hold across processes (every CLI call is a new process).

State lives in ``ratelimit.json``, read-modify-written under ``ratelimit.lock``. Three
sliding windows guard a send: messages per sender, messages per (sender, recipient) pair,
and repeats of the same body to the same recipient (the signature of two agents stuck in
a reply loop). Idle keys are evicted by bounded work inside normal calls: each call looks
at a few of the least recently used keys and drops the idle ones; no background thread.

The file is written without fsync: losing it in a power cut only loosens limits for one
window, and every send pays for the write.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from claudeswarm.config import Settings
from claudeswarm.errors import RateLimitedError
from claudeswarm.storage.files.atomic import update_json
from claudeswarm.storage.paths import StatePaths

Clock = Callable[[], float]
EVICT_PER_CALL = 8


@dataclass(frozen=True)
class Decision:
    """Outcome of one check: allowed, or refused with the rule and the wait."""

    allowed: bool
    rule: str = ""
    retry_after: float = 0.0


class RateLimiter:
    """Check-and-record sends for a state directory.

    Examples
    --------
    >>> rl = RateLimiter(paths, settings, clock=fake_clock)    # doctest: +SKIP
    >>> rl.acquire("backend", ["frontend"], "hello")            # doctest: +SKIP
    """

    def __init__(self, paths: StatePaths, settings: Settings, clock: Clock = time.time) -> None:
        self.paths = paths
        self.settings = settings
        self.clock = clock

    def acquire(self, sender: str, recipients: Sequence[str], body: str) -> None:
        """Record a send, or raise :class:`RateLimitedError` and record nothing."""
        keys = self._keys(sender, recipients, body)
        decision = update_json(
            self.paths.file("ratelimit.json"),
            self.paths.file("ratelimit.lock"),
            {},
            lambda state: self._decide(state, keys),
            quarantine=self.paths,
            validate=lambda state: _validate(state, [k for k, _, _ in keys]),
            durable=False,
        )
        if not decision.allowed:
            raise RateLimitedError(sender, decision.rule, decision.retry_after)

    def _decide(self, state: Any, keys: list[tuple[str, int, str]]) -> tuple[Any, Decision]:
        now = self.clock()
        window = self.settings.rate_window_seconds
        for key, limit, rule in keys:
            stamps = [t for t in state.get(key, []) if t > now - window]
            if len(stamps) >= limit:
                wait = min(stamps) + window - now
                return None, Decision(False, rule, max(wait, 0.001))
        for key, _, _ in keys:
            fresh = [t for t in state.pop(key, []) if t > now - window]
            state[key] = [*fresh, now]  # re-inserted: most recently used go last
        _evict(state, now - window)
        return state, Decision(True)

    def _keys(
        self, sender: str, recipients: Sequence[str], body: str
    ) -> list[tuple[str, int, str]]:
        s = self.settings
        win = f"{s.rate_window_seconds:g}s"
        digest = f"{zlib.crc32(body.encode()):08x}"  # stable across processes, cheap to import
        keys = [(f"s|{sender}", s.rate_per_sender, f"sent {s.rate_per_sender} messages in {win}")]
        for to in recipients:
            keys.append(
                (
                    f"p|{sender}|{to}",
                    s.rate_per_pair,
                    f"sent {s.rate_per_pair} messages to {to} in {win}",
                )
            )
            keys.append(
                (
                    f"r|{sender}|{to}|{digest}",
                    s.rate_repeat,
                    f"sent the same text to {to} {s.rate_repeat} times in {win}",
                )
            )
        return keys


def _validate(state: Any, keys: list[str]) -> None:
    """The stored shape, key -> list of send times, for the keys this call reads: its own
    and the few it may evict (a file that is not is quarantined). The rest is carried
    over unread, so a send costs the same however many keys the window holds."""
    from claudeswarm.errors import SchemaError
    from claudeswarm.schema import conform

    if type(state) is not dict:
        raise SchemaError("ratelimit.json is not an object")
    for key in (*keys, *itertools.islice(state, EVICT_PER_CALL)):
        if key in state:
            conform(state[key], list[float], f"ratelimit.json[{key!r}]")


def _evict(state: dict[str, Any], horizon: float) -> None:
    """Drop up to a few least-recently-used keys whose newest stamp is past the window."""
    for key in list(state)[:EVICT_PER_CALL]:
        stamps = state[key]
        if not stamps or max(stamps) <= horizon:
            del state[key]
