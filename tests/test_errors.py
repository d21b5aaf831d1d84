"""The one exception tree: where its classes live and what their messages promise."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "claudeswarm"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _is_exception(node: ast.ClassDef, known: set[str]) -> bool:
    """True if a base is a builtin exception or warning, or a class already known to be one."""
    for base in node.bases:
        name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
        if name in known or name.endswith(("Error", "Exception", "Warning", "Timeout")):
            return True
    return False


def test_every_exception_class_lives_in_errors_py() -> None:
    """``claudeswarm/errors.py`` holds every exception class of the package, so one file
    shows the whole tree and each class's exit code (README "Exit codes")."""
    known: set[str] = set()
    elsewhere: list[str] = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and _is_exception(node, known):
                known.add(node.name)
                if path != PACKAGE / "errors.py":
                    elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert elsewhere == []
    assert {"SwarmError", "UsageError", "RefusedError", "UnavailableError"} <= known
