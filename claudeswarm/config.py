"""Settings: defaults, overridden by ``config.toml``, overridden by ``CLAUDESWARM_*``.

Every setting is one field of :class:`Settings`, with its default and a one-line doc in
the field metadata; ``claudeswarm init`` writes them all, commented, into ``config.toml``
and ``claudeswarm config`` shows each effective value and where it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from claudeswarm.errors import UsageError
from claudeswarm.storage.paths import StatePaths

ENV_PREFIX = "CLAUDESWARM_"
CONFIG_MAX_BYTES = 1 << 20


def _s(default: Any, doc: str, **check: Any) -> Any:
    """A setting: its default, a one-line doc, and optional checks applied at load
    (``choices=(...)`` for enumerations, ``regex=True`` for patterns that must compile)."""
    return field(default=default, metadata={"doc": doc, **check})


@dataclass(frozen=True)
class Settings:
    """Effective settings. Field names are the keys in ``config.toml``."""

    backend: str = _s(
        "files", "where state lives: files (this state directory)", choices=("files",)
    )
    body_max_bytes: int = _s(10240, "largest message body in bytes of UTF-8")
    rotate_bytes: int = _s(16 * 1024 * 1024, "rotate messages.jsonl into archive/ past this size")
    archive_keep: int = _s(50, "rotated logs kept in archive/; the oldest beyond are deleted")
    archive_max_bytes: int = _s(
        1024 * 1024 * 1024,
        "archive/ keeps logs past archive_keep while a live agent has not read them, "
        "up to this many bytes in all",
    )
    rate_window_seconds: float = _s(60.0, "length of the rate limiter's sliding window")
    rate_per_sender: int = _s(60, "messages one sender may send per window")
    rate_per_pair: int = _s(30, "messages one sender may send to one recipient per window")
    rate_repeat: int = _s(3, "times the same body may go to the same recipient per window")
    # -- monitor
    monitor_ring: int = _s(1000, "messages the monitor keeps in memory (its bounded ring)")
    # -- locks
    lock_ttl_seconds: float = _s(600.0, "a lease not refreshed for this long may be broken")
    lock_refresh_interval_seconds: float = _s(
        15.0, "refresh writes a heartbeat only if the last one is older than this"
    )
    lock_compact_bytes: int = _s(
        256 * 1024, "compact locks.jsonl past this size once most of it is dead records"
    )
    # -- tasks
    task_lease_seconds: float = _s(600.0, "a task claim expires unless heartbeated within this")
    task_max_attempts: int = _s(3, "claims a task may lose to crashes/expiry before it fails")
    task_leaseless_grace_seconds: float = _s(
        30.0, "a claimed task file still without a lease after this is reclaimable"
    )
    task_auto_reap_seconds: float = _s(
        10.0, "a claim finding nothing reaps stale claims, at most this often (0: always)"
    )
    # -- tmux (discovery and nudges)
    agent_patterns: tuple[str, ...] = _s(
        (),
        "extra agent kinds: 'kind=regex' searched in a process's command line",
        regex=True,
    )
    nudge: str = _s(
        "idle",
        "nudge recipients' panes: always | idle (wait while busy) | never",
        choices=("always", "idle", "never"),
    )
    nudge_enter_delay: float = _s(0.1, "seconds between typing a nudge line and its Enter")
    nudge_preview_chars: int = _s(60, "characters of the message body a nudge line shows")
    nudge_pool: int = _s(16, "panes typed per send-keys call; busy agents awaited at once")
    nudge_busy_wait: float = _s(
        60.0, "seconds a nudge waits for a busy agent (or its terminal) before pending"
    )
    idle_heuristic: str = _s(
        "screen", "when an agent reports no state: screen | none", choices=("screen", "none")
    )
    busy_screen_patterns: tuple[str, ...] = _s(
        ("esc to interrupt", "ctrl\\+c to interrupt", "esc to cancel"),
        "regexes on a pane's last lines that mean its agent is busy (idle_heuristic=screen)",
        regex=True,
    )
    # -- hooks
    hook_max_messages: int = _s(10, "unread messages a prompt hook puts into context at once")


@dataclass(frozen=True)
class Loaded:
    """Settings plus, for each key, where its value came from."""

    settings: Settings
    sources: dict[str, str]


def keys() -> list[str]:
    """All setting names, in declaration order."""
    return [f.name for f in fields(Settings)]


#: the largest number a setting may hold: every count and size fits in 2**53 (exact in
#: JSON and in a float); every duration is at most ~31 years, so deadlines computed from
#: them stay within what clocks and timestamps can represent
INT_MAX = 2**53
SECONDS_MAX = 1e9


def _coerce(key: str, kind: type, raw: Any, where: str) -> Any:
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is list:
            if isinstance(raw, list):
                if not all(isinstance(x, str) for x in raw):
                    raise TypeError(raw)
                return tuple(raw)
            return tuple(p.strip() for p in str(raw).split(",") if p.strip())
        if kind in (int, float):
            return _number(key, kind, raw, where)
        if not isinstance(raw, str):
            raise TypeError(raw)
        return raw
    except (TypeError, ValueError):
        raise UsageError(
            f"setting {key} from {where}: {raw!r} is not a valid {kind.__name__}"
        ) from None


def _number(key: str, kind: type, raw: Any, where: str) -> int | float:
    """A numeric setting: finite, not negative, within :data:`INT_MAX` /
    :data:`SECONDS_MAX`. TOML gives ints and floats (``inf`` and ``nan`` included),
    the environment gives text."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(raw)
    value = float(raw) if isinstance(raw, str) and kind is float else raw
    if isinstance(value, str):
        value = int(value)
    if not math.isfinite(value):
        raise UsageError(f"setting {key} from {where}: {raw!r} is not a finite number")
    if kind is int:
        if value != int(value):
            raise ValueError(raw)
        value = int(value)
    if value < 0:
        raise UsageError(f"setting {key} from {where}: must not be negative")
    top = INT_MAX if kind is int else SECONDS_MAX
    if value > top:
        raise UsageError(f"setting {key} from {where}: {raw!r} is larger than {top:g}")
    return kind(value)  # type: ignore[no-any-return]


def _kind(default: Any) -> type:
    return list if isinstance(default, tuple) else type(default)


def _read_toml(paths: StatePaths) -> dict[str, Any]:
    from claudeswarm.errors import CorruptRecordError
    from claudeswarm.storage.files.atomic import read_bytes

    try:
        data = read_bytes(paths.config, CONFIG_MAX_BYTES)
        text = "" if data is None else data.decode("utf-8")
    except (OSError, UnicodeDecodeError, CorruptRecordError) as exc:
        raise UsageError(f"cannot read {paths.config}: {exc}") from None
    if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
        return {}  # all comments (the file init writes): skip the parser import
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{paths.config}: {exc}") from None
    except RecursionError:
        raise UsageError(f"{paths.config}: nesting too deep") from None


def load(paths: StatePaths, env: Mapping[str, str] | None = None) -> Loaded:
    """Load the effective settings for a state directory.

    Examples
    --------
    >>> from pathlib import Path
    >>> p = StatePaths(Path("/nonexistent"), Path("/nonexistent/.claudeswarm"))
    >>> load(p, env={"CLAUDESWARM_RATE_PER_SENDER": "10"}).settings.rate_per_sender
    10
    """
    if env is None:
        env = os.environ
    table = _read_toml(paths)
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise UsageError(f"{paths.config}: unknown setting {unknown[0]!r}")
    values: dict[str, Any] = {}
    sources = dict.fromkeys(known, "default")
    for name, f in known.items():
        kind = _kind(f.default)
        if name in table:
            values[name] = _coerce(name, kind, table[name], "config.toml")
            sources[name] = "config.toml"
        env_key = ENV_PREFIX + name.upper()
        if env_key in env:
            values[name] = _coerce(name, kind, env[env_key], env_key)
            sources[name] = f"env {env_key}"
    for name, value in values.items():
        _check(name, value, known[name].metadata, sources[name])
    return Loaded(replace(Settings(), **values), sources)


def _check(name: str, value: Any, meta: Any, where: str) -> None:
    """Refuse a value its setting's checks reject, naming the setting and its source."""
    choices = meta.get("choices")
    if choices and value not in choices:
        raise UsageError(f"setting {name} from {where}: {value!r}; use one of {', '.join(choices)}")
    if meta.get("regex"):
        import re

        for pattern in value:
            text = pattern.partition("=")[2] if name == "agent_patterns" else pattern
            try:
                re.compile(text)
            except re.error as exc:
                raise UsageError(
                    f"setting {name} from {where}: bad regex {text!r}: {exc}"
                ) from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def commented_template() -> str:
    """The ``config.toml`` that ``init`` writes: every setting, commented, at its default."""
    lines = [
        "# claudeswarm settings. Uncomment a line to change it.",
        "# Environment variables CLAUDESWARM_<KEY> override this file.",
        "",
    ]
    for f in fields(Settings):
        lines.append(f"# {f.metadata['doc']}")
        lines.append(f"# {f.name} = {_toml_value(f.default)}")
        lines.append("")
    return "\n".join(lines)
