"""Merge claudeswarm's hooks into a Claude Code settings file (``.claude/settings.json``).

Idempotent: our entries are recognised by their command (``claudeswarm hook ...`` or the
``claudeswarm-hook`` shim) and replaced (after the event's other entries); every other
hook and setting is kept as it is. A file that is not a JSON object is refused, never
rewritten. The new file replaces the old one atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claudeswarm.errors import UsageError
from claudeswarm.storage import json as _json
from claudeswarm.storage.files import atomic as _atomic

#: Claude Code event -> (matcher or None, claudeswarm hook sub-command)
CLAUDE_EVENTS: dict[str, tuple[str | None, str]] = {
    "SessionStart": (None, "session-start"),
    "UserPromptSubmit": (None, "prompt"),
    "PreToolUse": ("Edit|Write|MultiEdit|NotebookEdit", "pre-tool"),
    "PostToolUse": (None, "post-tool"),
    "Stop": (None, "stop"),
}
TIMEOUT = 10  # seconds: a stuck hook must not hold the agent for Claude Code's default 60
MARKERS = ("claudeswarm hook ", "claudeswarm-hook ", "-m claudeswarm hook ")


@dataclass(frozen=True)
class InstallResult:
    """The settings file written and what changed in it."""

    path: str
    added: list[str]
    replaced: list[str]
    unchanged: bool


def hooks_block(command: str = "claudeswarm") -> dict[str, Any]:
    """The ``hooks`` object for Claude Code settings, each entry running
    ``<command> hook <event>``.

    Examples
    --------
    >>> hooks_block()["Stop"]
    [{'hooks': [{'type': 'command', 'command': 'claudeswarm hook stop', 'timeout': 10}]}]
    """
    out: dict[str, Any] = {}
    for event, (matcher, sub) in CLAUDE_EVENTS.items():
        entry: dict[str, Any] = {}
        if matcher:
            entry["matcher"] = matcher
        run = {"type": "command", "command": f"{command} hook {sub}", "timeout": TIMEOUT}
        entry["hooks"] = [run]
        out[event] = [entry]
    return out


def ours(entry: Any) -> bool:
    """True for a matcher entry whose every hook runs claudeswarm's hook command."""
    hooks = entry.get("hooks") if isinstance(entry, dict) else None
    if not isinstance(hooks, list) or not hooks:
        return False
    return all(
        isinstance(h, dict) and any(m in f"{h.get('command', '')} " for m in MARKERS) for h in hooks
    )


def merge(settings: dict[str, Any], block: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Put ``block``'s entries into ``settings["hooks"]`` in place; keep everything else.

    Returns the events added and those whose claudeswarm entry was replaced.
    """
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise UsageError("settings key 'hooks' is not a JSON object; fix it by hand first")
    added: list[str] = []
    replaced: list[str] = []
    for event, entries in block.items():
        current = hooks.get(event, [])
        if not isinstance(current, list):
            raise UsageError(f"settings hooks.{event} is not a JSON array; fix it by hand first")
        kept = [e for e in current if not ours(e)]
        (replaced if len(kept) < len(current) else added).append(event)
        hooks[event] = kept + entries
    return added, replaced


def install(path: Path, command: str = "claudeswarm") -> InstallResult:
    """Merge claudeswarm's hooks into the settings file at ``path`` (created if missing)."""
    raw = _atomic.read_bytes(path)
    try:
        settings = _json.loads(raw) if raw is not None and raw.strip() else {}
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); nothing was changed") from None
    if not isinstance(settings, dict):
        raise UsageError(f"{path} does not hold a JSON object; nothing was changed")
    before = _json.dumps(settings)
    added, replaced = merge(settings, hooks_block(command))
    if _json.dumps(settings) == before:
        return InstallResult(str(path), [], [], True)
    import json
    import os

    mode = os.lstat(path).st_mode & 0o777 if raw is not None else 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    _atomic.write_bytes(path, text.encode())
    os.chmod(path, mode)  # a settings file others read keeps its mode, not our 0600
    return InstallResult(str(path), added, replaced, False)
