"""The shape of the command line, walked from the registered click tree: every command has
help, ``--json`` and its own README row; a short option means one thing; durations take
one syntax; paired flags are spelled alike; every usage error is one line.

The commands are run in process through :func:`claudeswarm.cli._app.run`, the console
script's own entry point after the UTF-8 check (the fuzz test runs them as processes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from conftest import REPO

from claudeswarm.cli._app import build_app, run
from claudeswarm.errors import EXIT_USAGE

CLI = typer.main.get_command(build_app())


def _leaves(cmd: Any = CLI, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield path, cmd
        return
    for name, sub in sorted(subs.items()):
        yield from _leaves(sub, (*path, name))


LEAVES = dict(_leaves())
PATHS = sorted(LEAVES)


def _options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == "option"]


def _readme_entries() -> list[str]:
    """Where a command can have its own entry: the first cell of a README table row, or
    a heading (its text after the ``#`` marks). A command named in a sentence, or after
    another command in the same cell, has none."""
    out = []
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            out.append(re.split(r"(?<!\\)\|", line)[1].strip())
        elif line.startswith("#"):
            out.append(line.lstrip("#").strip())
    return out


def test_the_walk_finds_every_command() -> None:
    """The walk sees what users can run (so the tests below cover them all)."""
    assert len(PATHS) >= 33
    assert {("send",), ("task", "claim"), ("hook", "pre-tool"), ("hook", "install")} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_command_has_help_json_and_its_own_readme_row(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaces four overlapping tests (one took any backticked word in the README for an
    entry): a row whose first cell, or a heading, starts with ``claudeswarm PATH``."""
    assert run([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: claudeswarm {' '.join(path)} ")
    assert "--json" in out
    assert any(o.opts == ["--json"] for o in _options(LEAVES[path]))
    own = re.compile(rf"`claudeswarm {re.escape(' '.join(path))}[ `\[]")
    assert any(own.match(entry) for entry in _readme_entries()), f"no README row for {path}"


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_usage_error_is_one_line_naming_the_commands_help(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown option, an option without its value, a number that is not one: each is
    one stderr line that points at this command's own ``--help``, exit 2."""
    cases = [[*path, "--no-such-option"]]
    for opt in _options(LEAVES[path]):
        if not opt.is_flag:
            cases.append([*path, opt.opts[0]])  # the value is missing
        if opt.type.name in ("count", "duration", "when"):
            cases.append([*path, opt.opts[0], "abc"])
    for argv in cases:
        assert run(argv) == EXIT_USAGE, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, (argv, err)
        assert err.startswith("claudeswarm: "), (argv, err)
        assert err.endswith(f"(see 'claudeswarm {' '.join(path)} --help')\n"), (argv, err)


def test_a_short_option_means_one_thing_everywhere() -> None:
    """``-n`` was ``--limit`` in inbox, a bare count in log and ``--messages`` in monitor.
    Now each short option stands for one long option, and a long option that has a short
    one somewhere has it everywhere."""
    longs_of: dict[str, set[str]] = {}
    shorts_of: dict[str, set[str | None]] = {}
    for path in PATHS:
        for opt in _options(LEAVES[path]):
            long = next((o for o in opt.opts if o.startswith("--")), None)
            short = next((o for o in opt.opts if not o.startswith("--")), None)
            assert long is not None, (path, opt.opts)
            if short:
                longs_of.setdefault(short, set()).add(long)
            shorts_of.setdefault(long, set()).add(short)
    assert {s: ls for s, ls in longs_of.items() if len(ls) > 1} == {}
    with_short = {long for ls in longs_of.values() for long in ls}
    assert {long: s for long, s in shorts_of.items() if long in with_short and len(s) > 1} == {}
    assert longs_of["-n"] == {"--limit"}


def test_every_duration_takes_one_syntax() -> None:
    """No option takes a bare number: counts, durations and times each go through one
    parser, and every duration accepts ``500ms``, ``2s`` and ``10m``."""
    durations = []
    for path in PATHS:
        for opt in _options(LEAVES[path]):
            assert opt.type.name not in ("float", "integer"), (path, opt.opts)
            if opt.type.name == "duration":
                durations.append((path, opt))
    assert {(p, o.opts[0]) for p, o in durations} >= {
        (("lock",), "--ttl"),
        (("lock",), "--wait"),
        (("refresh",), "--ttl"),
        (("discover",), "--interval"),
    }
    for _, opt in durations:
        got = [opt.type.convert(text, opt, None) for text in ("500ms", "2s", "10m")]
        assert got == [0.5, 2.0, 600.0], opt.opts


def test_paired_flags_are_spelled_alike() -> None:
    """``task list --no-verify`` and ``task show --verify`` were two spellings of one
    switch: a flag that can be turned off is ``--X/--no-X``, in every command that has it,
    and ``--no-X`` never stands alone."""
    spellings: dict[str, set[tuple[str, ...]]] = {}
    for path in PATHS:
        for opt in _options(LEAVES[path]):
            if opt.is_flag:
                assert not any(n.startswith("--no-") for n in opt.opts), (path, opt.opts)
                long = next(o for o in opt.opts if o.startswith("--"))
                spellings.setdefault(long, set()).add((long, *opt.secondary_opts))
    paired = {long: ways for long, ways in spellings.items() if any(len(w) > 1 for w in ways)}
    assert paired.get("--verify") == {("--verify", "--no-verify")}
    assert {long: ways for long, ways in paired.items() if len(ways) > 1} == {}
