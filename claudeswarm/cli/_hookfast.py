"""``claudeswarm [--state-dir DIR] hook EVENT [--json]`` without typer.

Claude Code runs ``hook post-tool`` after every tool call, so a hook call must cost little
more than the work it does: importing typer and building its click command would more
than double it. Only the exact forms above take this path; anything else (``--help``,
``hook install``, a typo) goes through typer as usual. No typer import here.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

EVENTS = ("session-start", "prompt", "pre-tool", "post-tool", "stop")


def fast_hook(argv: list[str]) -> int | None:
    """Run the hook ``argv`` names and return its exit code, or ``None`` if ``argv`` is
    not a plain hook call."""
    state_dir = None
    if argv[:1] == ["--state-dir"] and len(argv) > 1:
        state_dir, argv = argv[1], argv[2:]
    elif argv[:1] and argv[0].startswith("--state-dir="):
        state_dir, argv = argv[0].partition("=")[2], argv[1:]
    if len(argv) < 2 or argv[0] != "hook":
        return None
    if argv[1] not in EVENTS and argv[1] != "install" and not argv[1].startswith("-"):
        # A typo in an agent's settings must not block it: usage errors exit 2, which
        # Claude Code reads as "refuse this tool call", so an unknown event exits 1.
        _say(
            f"claudeswarm: unknown hook event {argv[1]!r}; use one of {', '.join(EVENTS)}",
            sys.stderr,
        )
        return 1
    if argv[1] not in EVENTS:
        return None
    if any(arg != "--json" for arg in argv[2:]):
        return None
    return run(argv[1], "--json" in argv[2:], state_dir)


def _read_stdin(limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the hook input: one byte past the limit tells an
    oversize input apart, and an endless one (``< /dev/zero``) is never read to its end."""
    if sys.stdin is None or sys.stdin.isatty():
        return b""  # run by hand: no hook input to wait for
    try:
        return sys.stdin.buffer.read(limit + 1)
    except (OSError, ValueError):
        return b""


def run(event: str, as_json: bool, state_dir: str | None = None) -> int:
    """Run one hook and print its outcome; every failure is one stderr line and exit 0
    (a hook must never break the agent), only a refusal exits 2."""
    from claudeswarm.sanitize import inert, json_safe

    try:
        from claudeswarm.hooks import events as hooks
        from claudeswarm.swarm import open_swarm

        raw = _read_stdin(hooks.MAX_INPUT)
        if len(raw) > hooks.MAX_INPUT:  # still a hook: it goes on as if given {}
            size = f"{hooks.MAX_INPUT >> 20} MiB"
            _say(f"claudeswarm hook {event}: hook input is larger than {size}; ignored", sys.stderr)
        result = hooks.run(open_swarm(state_dir), event, hooks.parse_input(raw))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - a hook must never break the agent
        _say(f"claudeswarm hook {event}: {inert(_text(exc))}", sys.stderr)
        return 0
    if as_json:
        doc = {**result.__dict__, "messages": list(result.messages), "exit_code": result.exit_code}
        _say(json_safe(json.dumps(doc, ensure_ascii=False)), sys.stdout)
    elif result.action == "context":
        _say(result.text, sys.stdout)
    elif result.action == "continue":
        _say(json_safe(json.dumps({"decision": "block", "reason": result.text})), sys.stdout)
    if result.action == "block":
        _say(result.text, sys.stderr)
    return result.exit_code


def _text(exc: Exception) -> str:
    """The failure line: a :class:`~claudeswarm.errors.SwarmError` as the command line
    words it (the command that repairs what is broken), anything else as Python says it."""
    from claudeswarm.errors import SwarmError

    if isinstance(exc, SwarmError):
        from claudeswarm.cli._errors import worded

        return worded(exc)
    return str(exc) or type(exc).__name__


def _say(text: str, stream: TextIO) -> None:
    """Write one line of hook output: a reader that closed early (``| true``) loses it,
    and the hook still exits as it decided (a refusal stays exit 2)."""
    from claudeswarm.cli import reader_gone

    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        reader_gone(stream)
