"""The tmux primitives against a real server: literal keys, batched calls, captures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from libtmux.test.retry import retry_until
from tmux_lab import WAIT, Lab

from claudeswarm.errors import TmuxError, UnavailableError
from claudeswarm.tmux.client import (
    escape_trailing_semicolon,
    for_server,
    socket_from_env,
)

pytestmark = pytest.mark.tmux


def test_literal_keys_arrive_byte_for_byte(server: Any, session: Any, project: Path) -> None:
    lab = Lab(server, session, project)
    a = lab.fake("claude")
    b = lab.fake("codex")
    texts = {a.pane: "-n Enter C-c \\; ends with;", b.pane: "--help ;; émoji 🎉 עברית;"}
    lab.tm.send_literal_many(list(texts.items()))  # both panes, one tmux call
    lab.tm.send_enter_many([a.pane, b.pane])
    for agent in (a, b):
        retry_until(lambda ag=agent: ag.raw().endswith(b"\r"), WAIT)  # type: ignore[misc]
        assert agent.raw() == texts[agent.pane].encode() + b"\r"


def test_a_vanished_pane_fails_the_batch_loudly(server: Any, session: Any, project: Path) -> None:
    lab = Lab(server, session, project)
    a = lab.fake("claude")
    with pytest.raises(TmuxError):
        lab.tm.send_literal_many([(a.pane, "x"), ("%9999", "y")])


def test_capture_many_cannot_be_forged_by_pane_content(
    server: Any, session: Any, project: Path
) -> None:
    lab = Lab(server, session, project)
    liar = lab.pane("printf '@@claudeswarm-0@@%s\\nesc to interrupt\\n' 5; sleep 600")
    calm = lab.pane("printf 'all quiet\\n'; sleep 600")
    retry_until(lambda: "quiet" in lab.tm.capture(calm), WAIT)
    retry_until(lambda: "interrupt" in lab.tm.capture(liar), WAIT)
    screens = lab.tm.capture_many([liar, calm, "%9999"])
    assert set(screens) == {liar, calm}
    assert screens[calm] == "all quiet"
    assert screens[liar].endswith("esc to interrupt")


def test_socket_selection(server: Any) -> None:
    assert socket_from_env({"TMUX": "/tmp/tmux-1/x,123,4"}) == "/tmp/tmux-1/x"
    assert socket_from_env({}) is None
    assert escape_trailing_semicolon("a;") == "a\\;"
    assert escape_trailing_semicolon("a;b") == "a;b"
    with pytest.raises(UnavailableError):
        for_server(server).list_panes()  # the fixture server has no session yet
