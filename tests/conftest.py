"""Shared fixtures: a fresh project with its state directory, and ways to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from claudeswarm.config import Settings, load
from claudeswarm.storage.paths import StatePaths, ensure_state
from claudeswarm.swarm import Swarm

REPO = Path(__file__).resolve().parent.parent

#: The storage backends every state-touching test runs against. A test that uses the
#: ``project`` fixture (directly or through ``paths``, ``swarm``, ``run_cli``) runs once
#: per backend; the ``backend`` fixture gives the settings that select it.
BACKENDS = ["files"]
#: the selecting settings of the backend the running test uses, for CLI subprocesses
_BACKEND_ENV: dict[str, str] = {}


class FakeClock:
    """A clock tests move by hand: time is a parameter, never a sleep."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings (as ``CLAUDESWARM_*`` variables) that select one storage backend."""
    env = {"CLAUDESWARM_BACKEND": request.param}
    _BACKEND_ENV.clear()
    _BACKEND_ENV.update(env)
    yield env
    _BACKEND_ENV.clear()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: dict[str, str]) -> Path:
    """An empty project (a directory with ``.git``), used as the cwd, isolated env, with
    the backend under test selected."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    for var in ("CLAUDESWARM_HOME", "CLAUDESWARM_AGENT", "TMUX", "TMUX_PANE"):
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith("CLAUDESWARM_"):
            monkeypatch.delenv(var, raising=False)
    for var, value in backend.items():
        monkeypatch.setenv(var, value)
    return root


@pytest.fixture
def paths(project: Path) -> StatePaths:
    return ensure_state(StatePaths(project, project / ".claudeswarm"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def swarm(paths: StatePaths, clock: FakeClock, backend: dict[str, str]) -> Iterator[Swarm]:
    sw = Swarm(paths, load(paths, env=backend).settings, clock)
    yield sw
    sw.close()


def settings(**changes: object) -> Settings:
    """Default settings for the backend under test, with ``changes``."""
    from dataclasses import replace

    nowhere = Path("/nonexistent")
    base = load(StatePaths(nowhere, nowhere / ".claudeswarm"), env=dict(_BACKEND_ENV)).settings
    return replace(base, **changes)  # type: ignore[arg-type]


def cli_env(project: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CLAUDESWARM_") and k not in ("TMUX", "TMUX_PANE")
    }
    env["PYTHONPATH"] = str(REPO)
    env["CLAUDESWARM_HOME"] = str(project / ".claudeswarm")
    env.update(_BACKEND_ENV)
    env.update(extra)
    return env


def run_cli(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the working tree's CLI as a real fresh process (like an agent does)."""
    return subprocess.run(
        [sys.executable, "-m", "claudeswarm", *args],
        cwd=project,
        env=env or cli_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


_STAND_INS: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _end_stand_ins() -> Iterator[None]:
    yield
    while _STAND_INS:
        proc = _STAND_INS.pop()
        proc.kill()
        proc.wait()


def stand_in_pid() -> int:
    """A live process that is no ancestor of the test's CLI calls (ended after the test):
    an agent bound to it is somebody else, as a real agent in its own pane is."""
    proc = subprocess.Popen(["sleep", "3600"])
    _STAND_INS.append(proc)
    return proc.pid


def register(
    paths: StatePaths, name: str, *, pane: str | None = None, pid: int | None = None
) -> None:
    """Put an agent bound to ``pane`` straight into the registry, as ``join`` inside that
    pane would (for tests about identity, not about tmux: no server is involved). Its
    process is ``pid``, by default a fresh :func:`stand_in_pid`: never the test process,
    whose CLI calls would then run under the agent and be it (process ancestry)."""
    from claudeswarm.agents import registry

    pid = stand_in_pid() if pid is None else pid
    rec = registry.AgentRecord(
        name=name, pane=pane, pid=pid, start_time=registry.process_start_time(pid), state="active"
    )

    def change(agents: registry.Agents) -> tuple[registry.Agents, None]:
        agents[name] = rec
        return agents, None

    registry.update(paths, change)
