"""Make untrusted text inert before it reaches a terminal or a pane.

Text from other agents may hold escape sequences that clear or retitle a terminal, C1
controls, bidi overrides that reorder what a reader sees, or newlines that would submit a
command. :func:`inert` shows such characters as visible escapes; :func:`preview` reduces
text to one short line of printable characters (for nudges).
"""

from __future__ import annotations

import unicodedata

# Cc: C0/C1 controls and DEL. Cf: format characters, including bidi overrides
# (U+202A-U+202E, U+2066-U+2069) and zero-width joiners. Cs/Co/Cn: not printable.
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str, *, keep_newlines: bool = False) -> str:
    """Replace every control or format character with a visible escape.

    Examples
    --------
    >>> inert("ok\\x1b[2J")
    'ok\\\\x1b[2J'
    >>> inert("a\\nb", keep_newlines=True)
    'a\\nb'
    """
    out = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch == "\n"):
            out.append(ch)
        elif ch == "\t":
            out.append("    ")
        elif unicodedata.category(ch) in _HIDDEN or not ch.isprintable():
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def preview(text: str, limit: int = 60) -> str:
    """One line of at most ``limit`` printable characters: controls and newlines become
    spaces, runs of white space fold to one, and a cut is marked with ``...``.

    Examples
    --------
    >>> preview("line one\\nline two\\x03", 12)
    'line one ...'
    """
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    folded = " ".join(cleaned.split())
    if len(folded) <= limit:
        return folded
    return folded[: max(limit - 3, 0)].rstrip() + "..."


def json_safe(text: str) -> str:
    """Escape DEL and C1 controls that ``json.dumps(ensure_ascii=False)`` leaves raw."""
    return "".join(
        _escape(ch).replace("\\x", "\\u00") if 0x7F <= ord(ch) <= 0x9F else ch for ch in text
    )
