"""RateLimiter with a fake clock: windows slide, refusals say when to retry."""

from __future__ import annotations

import json

import pytest
from conftest import FakeClock, settings

from claudeswarm.errors import RateLimitedError
from claudeswarm.messages.ratelimit import EVICT_PER_CALL, RateLimiter
from claudeswarm.storage.paths import StatePaths


def limiter(paths: StatePaths, clock: FakeClock, **limits: object) -> RateLimiter:
    return RateLimiter(paths, settings(**limits), clock)


def test_sliding_window_per_sender(paths: StatePaths, clock: FakeClock) -> None:
    rl = limiter(paths, clock, rate_per_sender=3, rate_window_seconds=60.0)
    for i in range(3):
        rl.acquire("a", ["b"], f"m{i}")
        clock.advance(10)
    with pytest.raises(RateLimitedError) as err:
        rl.acquire("a", ["b"], "m3")
    assert err.value.retry_after == pytest.approx(30.0)  # first stamp at t0 leaves at t0+60
    clock.advance(30.001)
    rl.acquire("a", ["b"], "m3")


def test_per_pair_cap_leaves_other_recipients_open(paths: StatePaths, clock: FakeClock) -> None:
    rl = limiter(paths, clock, rate_per_pair=2)
    rl.acquire("a", ["b"], "1")
    rl.acquire("a", ["b"], "2")
    with pytest.raises(RateLimitedError, match="to b"):
        rl.acquire("a", ["b"], "3")
    rl.acquire("a", ["c"], "3")


def test_repeat_guard_stops_ping_pong(paths: StatePaths, clock: FakeClock) -> None:
    rl = limiter(paths, clock, rate_repeat=2)
    rl.acquire("a", ["b"], "are you there?")
    rl.acquire("a", ["b"], "are you there?")
    with pytest.raises(RateLimitedError, match="same text"):
        rl.acquire("a", ["b"], "are you there?")
    rl.acquire("a", ["b"], "something new")


def test_refused_send_records_nothing(paths: StatePaths, clock: FakeClock) -> None:
    rl = limiter(paths, clock, rate_per_sender=1)
    rl.acquire("a", ["b"], "x")
    before = paths.file("ratelimit.json").read_bytes()
    with pytest.raises(RateLimitedError):
        rl.acquire("a", ["c"], "y")
    assert paths.file("ratelimit.json").read_bytes() == before


def test_idle_senders_are_evicted_by_bounded_work(paths: StatePaths, clock: FakeClock) -> None:
    rl = limiter(paths, clock, rate_window_seconds=60.0)
    for i in range(40):
        rl.acquire(f"s{i}", ["b"], "hello")
    state = json.loads(paths.file("ratelimit.json").read_text())
    assert len(state) == 40 * 3
    clock.advance(61)
    rl.acquire("fresh", ["b"], "hello")
    state = json.loads(paths.file("ratelimit.json").read_text())
    assert len(state) == 40 * 3 - EVICT_PER_CALL + 3  # bounded: only a few per call
    for i in range(40):
        rl.acquire("fresh", [f"r{i}"], "tick")
    state = json.loads(paths.file("ratelimit.json").read_text())
    assert not any(k.startswith("s|s") for k in state)  # all idle senders gone eventually


def test_corrupt_state_is_quarantined_not_fatal(paths: StatePaths, clock: FakeClock) -> None:
    paths.file("ratelimit.json").write_text('{"s|a": [1, 2], "s|a": [3]}')
    limiter(paths, clock).acquire("a", ["b"], "x")
    assert any(p.name.startswith("ratelimit.json.") for p in paths.quarantine.iterdir())


def test_quarantining_the_same_file_twice_keeps_both(paths: StatePaths) -> None:
    from claudeswarm.storage.files.atomic import quarantine_file

    target = paths.file("agents.json")
    for content in ("first bad", "second bad"):
        target.write_text(content)
        quarantine_file(target, paths, "corrupt")
    kept = sorted(p.read_text() for p in paths.quarantine.glob("agents.json.*[0-9]"))
    assert kept == ["first bad", "second bad"]
