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
    shows the whole tree and each class's exit code (README "Exit codes").

    A private class (``_NotSentError``) that signals between two functions of one module
    may stay there, as long as no other module names it: it never reaches a caller.
    """
    known: set[str] = set()
    elsewhere: list[str] = []
    private: dict[str, Path] = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ClassDef) and _is_exception(node, known)):
                continue
            known.add(node.name)
            if node.name.startswith("_"):
                private[node.name] = path
            elif path != PACKAGE / "errors.py":
                elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert elsewhere == []
    assert {"SwarmError", "UsageError", "RefusedError", "UnavailableError"} <= known
    leaked = [
        f"{path.relative_to(REPO)} names {name} (private to {home.relative_to(REPO)})"
        for name, home in private.items()
        for path in _modules()
        if path != home and name in path.read_text(encoding="utf-8")
    ]
    assert leaked == []
