"""Which panes run coding agents: the process tree under each pane, classified.

One ``list-panes -a`` and one pass over ``/proc`` per scan. From each pane's pid the
descendants are walked shallowest first; the first process recognised as an agent names
the pane's agent. Recognition looks at the executable and the arguments, so a CLI run by
an interpreter (``node /usr/lib/node_modules/@anthropic-ai/claude-code/cli.js``,
``python3 /usr/local/bin/aider``) counts, while ``node server.js`` or ``npm run dev`` do
not. A pane whose tree runs ``claudeswarm monitor`` is never an agent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claudeswarm.agents import procs
from claudeswarm.agents.procs import ProcTable
from claudeswarm.errors import UsageError
from claudeswarm.messages.record import check_kind
from claudeswarm.tmux.client import Pane, Tmux

#: executable (or script) names of the agents we know
KNOWN = ("claude", "codex", "aider", "gemini", "opencode")
#: npm packages whose entry script has a generic name (cli.js, index.js)
PACKAGES = (
    ("@anthropic-ai/claude-code", "claude"),
    ("@openai/codex", "codex"),
    ("@google/gemini-cli", "gemini"),
    ("opencode-ai", "opencode"),
)
_INTERPRETER = re.compile(r"(node|nodejs|bun|deno|python[0-9.]*|pypy[0-9.]*|sh|bash|dash|zsh)")
_INLINE = frozenset(("-c", "-e", "--eval", "-p", "--print"))
_SCRIPT_EXT = re.compile(r"\.(js|mjs|cjs|ts|py)$")
SHELLS = frozenset(("sh", "bash", "dash", "zsh", "fish", "ksh", "tcsh", "csh"))
WRAPPERS = frozenset(
    ("uv", "uvx", "poetry", "pipx", "pdm", "hatch", "rye", "npx", "env", "time", "nice", "sudo")
)


@dataclass(frozen=True)
class Pattern:
    """An extra agent kind from the ``agent_patterns`` setting (``kind=regex``)."""

    kind: str
    regex: re.Pattern[str]


def parse_patterns(raw: Iterable[str]) -> tuple[Pattern, ...]:
    """Compile ``agent_patterns``; :class:`UsageError` names a bad entry."""
    out = []
    for entry in raw:
        kind, sep, rx = entry.partition("=")
        if not sep or not kind.strip() or not rx:
            raise UsageError(f"agent_patterns entry {entry!r}: use 'kind=regex'")
        try:
            out.append(Pattern(check_kind(kind.strip()), re.compile(rx)))
        except (ValueError, re.error) as exc:
            raise UsageError(f"agent_patterns entry {entry!r}: {exc}") from None
    return tuple(out)


def _base(path: str) -> str:
    return _SCRIPT_EXT.sub("", os.path.basename(path.lstrip("-")))


def _script_of(argv: Sequence[str]) -> str | None:
    """The script an interpreter runs, or ``None`` (inline code, a REPL, a module)."""
    args = iter(argv[1:])
    for arg in args:
        if arg in _INLINE:
            return None
        if arg == "-m":  # python -m aider
            return next(args, None)
        if not arg.startswith("-"):
            return arg
    return None


def _by_name(name: str, path: str = "") -> str | None:
    if name in KNOWN:
        return name
    for package, kind in PACKAGES:
        if package in path:
            return kind
    return None


def classify(argv: Sequence[str], comm: str = "", patterns: Sequence[Pattern] = ()) -> str | None:
    """The agent kind a process is, or ``None``.

    Examples
    --------
    >>> classify(["node", "/usr/local/bin/claude", "--resume"])
    'claude'
    >>> classify(["node", "server.js"]) is None
    True
    >>> classify(["npm", "run", "dev"]) is None
    True
    """
    line = " ".join(argv)
    for pattern in patterns:
        if pattern.regex.search(line):
            return pattern.kind
    if not argv:
        return _by_name(comm)
    exe = _base(argv[0])
    if _INTERPRETER.fullmatch(exe) or _INTERPRETER.fullmatch(comm):
        script = _script_of(argv)
        return _by_name(_base(script), script) if script else None
    return _by_name(exe, argv[0]) or _by_name(comm)


def is_shell(argv: Sequence[str], comm: str = "") -> bool:
    """True for an interactive shell (``bash``, ``-zsh``), not a script it runs."""
    exe = _base(argv[0]) if argv else comm
    return exe in SHELLS and not _script_of(argv)


def is_wrapper(argv: Sequence[str], comm: str = "") -> bool:
    """True for a launcher that lives only as long as the command it runs (``uv run``,
    ``npx``, ``env``, ``sudo``): never the process an identity should bind to."""
    return (_base(argv[0]) if argv else comm) in WRAPPERS


def is_monitor(argv: Sequence[str]) -> bool:
    """True for ``claudeswarm monitor`` (also ``python -m claudeswarm --state-dir D monitor``)."""
    words = [_base(a) for a in argv[:4]]
    if "claudeswarm" not in words:
        return False
    args = iter(argv[words.index("claudeswarm") + 1 :])
    for arg in args:
        if arg == "--state-dir":
            next(args, None)
        elif not arg.startswith("-"):
            return arg == "monitor"
    return False


@dataclass(frozen=True)
class Found:
    """An agent process found under a pane."""

    pane: Pane
    kind: str
    pid: int
    start_time: int


def agent_in(
    table: ProcTable, root: int, patterns: Sequence[Pattern] = ()
) -> tuple[int, str] | None:
    """The shallowest agent process under ``root`` as ``(pid, kind)``.

    ``None`` if there is none, or if the tree runs the claudeswarm monitor.
    """
    found: tuple[int, str] | None = None
    for pid in table.descendants(root):
        argv = table.argv(pid)
        if is_monitor(argv):
            return None
        if found is None:
            kind = classify(argv, table.procs[pid].comm, patterns)
            if kind is not None:
                found = (pid, kind)
    return found


@dataclass(frozen=True)
class Scan:
    """One look at the world: every pane, the process table, and the agents found."""

    panes: dict[str, Pane]
    table: ProcTable
    found: list[Found]


def scan(tmux: Tmux, patterns: Sequence[Pattern] = ()) -> Scan:
    """List panes (one tmux call), snapshot ``/proc`` once, classify every pane."""
    panes = [p for p in tmux.list_panes() if not p.dead]
    table = procs.snapshot()
    found = []
    for pane in panes:
        hit = agent_in(table, pane.pid, patterns)
        if hit is not None:
            pid, kind = hit
            found.append(Found(pane, kind, pid, table.procs[pid].start_time))
    return Scan({p.pane_id: p for p in panes}, table, found)


def terminal_taken(
    table: ProcTable, pid: int, kind: str | None, patterns: Sequence[Pattern] = ()
) -> str:
    """Why keys typed into the terminal of agent ``pid`` would not reach the agent, or
    ``""`` if they would.

    The terminal's foreground process group must hold the agent (or a process under it
    recognised as the same ``kind``: the native binary an npm wrapper runs, a relaunched
    child), and no other process of that group may read the terminal: an editor the
    agent waits for shares its group (``spawnSync`` with inherited stdio) and reads the
    keys. Processes the agent runs under (``npx``, ``uv run``) only wait.
    """
    proc = table.procs.get(pid)
    if proc is None or proc.tpgid <= 0:
        return "the agent has no terminal"
    own, others = [], []
    for p in table.group(proc.tpgid):
        if p.pid == pid or (table.is_under(p.pid, pid) and _same_kind(table, p, kind, patterns)):
            own.append(p)
        elif not table.is_under(pid, p.pid):  # not a launcher the agent runs under
            others.append(p)
    if not own:
        lead = table.procs.get(proc.tpgid)
        who = f"{lead.comm} (pid {lead.pid})" if lead else f"process group {proc.tpgid}"
        return f"the terminal's foreground is {who}, not the agent"
    for p in sorted(others, key=lambda p: p.pid):
        if procs.reads_terminal(p.pid, table.proc_dir):
            return f"{p.comm} (pid {p.pid}) reads the agent's terminal"
    return ""


def _same_kind(
    table: ProcTable, proc: procs.Proc, kind: str | None, pats: Sequence[Pattern]
) -> bool:
    return kind is not None and classify(table.argv(proc.pid), proc.comm, pats) == kind
