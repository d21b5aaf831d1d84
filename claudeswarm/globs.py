"""Lock patterns: parsing, canonical spelling, and a sound, exact overlap test.

Syntax (documented in the README): a pattern is a project-relative POSIX path whose
segments may hold ``*`` (any run of characters within one segment), ``?`` (one
character), ``[...]`` (one character from a class; ``[!...]`` negates, ``a-z`` ranges;
an unclosed ``[`` is a literal, as in :mod:`fnmatch`), and a whole segment ``**`` (zero or
more segments). Matching is case-sensitive and ``*`` also matches names starting with a dot.

Two patterns *overlap* when some path matches both. :func:`witness` decides that exactly by
walking the product of the two patterns, first segment by segment (``**`` may absorb any
number of segments) and, inside a pair of segments, character by character (``*`` may
absorb any number of characters). Both walks are memoised recursions over positions, so a
test costs O(len(a) * len(b)). A path is never compared against the other pattern's text.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from claudeswarm.errors import UsageError
from claudeswarm.paths import project_relative

GLOB_CHARS = frozenset("*?[")
_MAX = sys.maxunicode
_SLASH = ord("/")

#: a set of characters as sorted, disjoint, inclusive (lo, hi) code point intervals
CharSet = tuple[tuple[int, int], ...]
#: ``None`` stands for ``*``; a CharSet for one character
Token = CharSet | None
#: ``None`` stands for a ``**`` segment; otherwise the tokens of one segment
Segment = tuple[Token, ...] | None

_ANY: CharSet = ((0, _SLASH - 1), (_SLASH + 1, _MAX))
_Go = Callable[[int, int, bool], "str | None"]
_PathGo = Callable[[int, int], "list[str] | None"]


def has_glob(text: str) -> bool:
    """True when ``text`` holds any glob character (``*``, ``?``, ``[``)."""
    return any(c in GLOB_CHARS for c in text)


def _normalise(intervals: list[tuple[int, int]]) -> CharSet:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return _intersect(tuple(out), _ANY)  # never '/': a segment cannot hold one


def _complement(cs: CharSet) -> CharSet:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in cs:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX:
        out.append((nxt, _MAX))
    return _normalise(out)


def _intersect(a: CharSet, b: CharSet) -> CharSet:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _parse_class(seg: str, i: int) -> tuple[CharSet, int] | None:
    """Parse ``[...]`` starting at ``seg[i] == '['`` the way :mod:`fnmatch` does.

    Returns the class and the index after ``]``, or ``None`` when unclosed (literal ``[``).
    """
    j = i + 1
    negate = j < len(seg) and seg[j] == "!"
    if negate:
        j += 1
    start = j
    if j < len(seg) and seg[j] == "]":
        j += 1  # a leading ']' is a member
    while j < len(seg) and seg[j] != "]":
        j += 1
    if j >= len(seg):
        return None
    body = seg[start:j]
    intervals: list[tuple[int, int]] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            intervals.append((ord(body[k]), ord(body[k + 2])))  # reversed range: empty
            k += 3
        else:
            intervals.append((ord(body[k]), ord(body[k])))
            k += 1
    members = _normalise(intervals)
    return (_complement(members) if negate else members), j + 1


@lru_cache(maxsize=65536)
def parse_segment(seg: str) -> tuple[Token, ...]:
    """Tokens of one segment: ``None`` for ``*``, a :data:`CharSet` for one character."""
    tokens: list[Token] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
            i += 1
            continue
        if c == "[":
            parsed = _parse_class(seg, i)
            if parsed is not None:
                tokens.append(parsed[0])
                i = parsed[1]
                continue
        tokens.append(_ANY if c == "?" else ((ord(c), ord(c)),))
        i += 1
    return tuple(tokens)


@lru_cache(maxsize=65536)
def parse(pattern: str) -> tuple[Segment, ...]:
    """Segments of a canonical pattern; ``None`` marks a ``**`` segment.

    Examples
    --------
    >>> parse("src/**")[1] is None
    True
    """
    if pattern == "":
        return ()
    return tuple(None if s == "**" else parse_segment(s) for s in pattern.split("/"))


def literal_prefix(pattern: str) -> tuple[str, ...]:
    """The leading segments without glob characters: where every match must start.

    For an exact path this is the whole path.
    """
    out: list[str] = []
    for seg in pattern.split("/") if pattern else ():
        if has_glob(seg):
            break
        out.append(seg)
    return tuple(out)


def _pick(cs: CharSet) -> str:
    """A readable member of a non-empty class (for witnesses)."""
    for preferred in "xa0_":
        if any(lo <= ord(preferred) <= hi for lo, hi in cs):
            return preferred
    lo = cs[0][0]
    for a, b in cs:
        if b >= 0x21:
            return chr(max(a, 0x21))
    return chr(lo)


def _segment_witness(a: tuple[Token, ...], b: tuple[Token, ...]) -> str | None:
    """A non-empty string matched by both segment patterns, or ``None``."""
    memo: dict[tuple[int, int, bool], str | None] = {}

    def go(i: int, j: int, got: bool) -> str | None:
        key = (i, j, got)
        if key in memo:
            return memo[key]
        memo[key] = found = _segment_step(a, b, i, j, got, go)
        return found

    return go(0, 0, False)


def _segment_step(
    a: tuple[Token, ...],
    b: tuple[Token, ...],
    i: int,
    j: int,
    got: bool,
    go: _Go,
) -> str | None:
    if i == len(a) and j == len(b):
        return "" if got else None
    if i < len(a) and a[i] is None and (w := go(i + 1, j, got)) is not None:
        return w
    if j < len(b) and b[j] is None and (w := go(i, j + 1, got)) is not None:
        return w
    if i == len(a) or j == len(b):
        return None
    ta, tb = a[i], b[j]
    cs = _intersect(_ANY if ta is None else ta, _ANY if tb is None else tb)
    if not cs:
        return None
    # consume one character: a star stays put, a one-character token moves on. Both
    # stars staying put is needed once (to make the name non-empty), never twice.
    ni, nj = i + (ta is not None), j + (tb is not None)
    if (ni, nj) == (i, j) and got:
        return None
    w = go(ni, nj, True)
    return None if w is None else _pick(cs) + w


@lru_cache(maxsize=65536)
def segment_overlap(a: str, b: str) -> str | None:
    """A name matched by both segment patterns ``a`` and ``b``, or ``None``."""
    if not has_glob(a) and not has_glob(b):
        return a if a == b else None
    return _segment_witness(parse_segment(a), parse_segment(b))


def witness(a: str, b: str) -> str | None:
    """A path matched by both canonical patterns, or ``None`` if they share no path.

    Examples
    --------
    >>> witness("src/*.py", "src/a*")
    'src/a.py'
    >>> witness("src/**/test_*.py", "src/*.txt") is None
    True
    """
    if not has_glob(a) and not has_glob(b):
        return a if a == b else None
    sa, sb = a.split("/") if a else [], b.split("/") if b else []
    memo: dict[tuple[int, int], list[str] | None] = {}

    def go(i: int, j: int) -> list[str] | None:
        if (i, j) not in memo:
            memo[(i, j)] = _path_step(sa, sb, i, j, go)
        return memo[(i, j)]

    found = go(0, 0)
    if found is None:
        return None
    return "/".join(found) or "x"  # only '**' on both sides: any one-segment path


def _path_step(sa: list[str], sb: list[str], i: int, j: int, go: _PathGo) -> list[str] | None:
    if i == len(sa) and j == len(sb):
        return []
    if i < len(sa) and sa[i] == "**" and (w := go(i + 1, j)) is not None:
        return w
    if j < len(sb) and sb[j] == "**" and (w := go(i, j + 1)) is not None:
        return w
    if i == len(sa) or j == len(sb):
        return None
    star_a, star_b = sa[i] == "**", sb[j] == "**"
    if star_a and star_b:
        return None  # both stay put: only longer paths
    name = segment_overlap("*" if star_a else sa[i], "*" if star_b else sb[j])
    if name is None:
        return None
    rest = go(i + (not star_a), j + (not star_b))
    return None if rest is None else [name, *rest]


def overlaps(a: str, b: str) -> bool:
    """True when some path matches both canonical patterns (exact, never a false "no")."""
    glob_a, glob_b = has_glob(a), has_glob(b)
    if glob_a and glob_b:
        return witness(a, b) is not None
    if glob_a:
        return compiled(a).fullmatch("/" + b) is not None
    if glob_b:
        return compiled(b).fullmatch("/" + a) is not None
    return a == b


def _class_regex(cs: CharSet) -> str:
    if not cs:
        return "(?!)"
    parts = [
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in cs
    ]
    return "[" + "".join(parts) + "]"


@lru_cache(maxsize=16384)
def compiled(pattern: str) -> re.Pattern[str]:
    """A regex matching ``"/" + path`` for every path ``pattern`` matches (the fast path
    for a glob against an exact path; same semantics as :func:`witness`)."""
    out = []
    for seg in parse(pattern):
        if seg is None:
            out.append("(?:/[^/]+)*")
            continue
        body = "".join("[^/]*" if t is None else _class_regex(t) for t in seg)
        out.append("/" + body)
    return re.compile("".join(out), re.DOTALL)


def escape(path: str) -> str:
    """``path`` as a pattern matching only itself (glob characters put in classes)."""
    return "".join(f"[{c}]" if c in GLOB_CHARS else c for c in path)


def matches(pattern: str, path: str) -> bool:
    """True when the canonical ``path`` (taken literally) matches ``pattern``."""
    return witness(pattern, escape(path)) is not None


@dataclass(frozen=True)
class Pattern:
    """A canonical pattern with its parsed form and its literal directory prefix."""

    text: str
    prefix: tuple[str, ...]
    exact: bool

    @classmethod
    def of(cls, text: str) -> Pattern:
        """Build from a canonical pattern string."""
        exact = not has_glob(text)
        return cls(text, literal_prefix(text), exact)


MAX_PATTERN = 4096


def canonical(root: Path, raw: str) -> str:
    """The canonical spelling of a user's pattern, relative to the project ``root``.

    The literal directory prefix goes through :func:`claudeswarm.paths.project_relative`
    (absolute and ``./`` forms normalised, symlinks inside the project resolved, ``..``
    escapes and symlinks leaving the project refused). A path naming an existing directory
    means everything under it (``dir/**``). Runs of ``**`` collapse; ``..`` after a glob
    is refused.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> canonical(root, "./src//a.py"), canonical(root, str(root / "src/*.py"))
    ('src/a.py', 'src/*.py')
    """
    if not raw or len(raw) > MAX_PATTERN:
        raise UsageError(f"invalid pattern {raw[:80]!r}: empty or longer than {MAX_PATTERN}")
    if any(ord(c) < 0x20 or c == "\x7f" for c in raw):
        raise UsageError(f"invalid pattern {raw!r}: it holds control characters")
    parts = raw.split("/")
    first = next((k for k, seg in enumerate(parts) if has_glob(seg)), None)
    if first is None:
        rel = project_relative(root, raw)
        if os.path.isdir(Path(root, rel)):
            return f"{rel}/**" if rel else "**"
        return rel
    head = "/".join(parts[:first]) or ("/" if raw.startswith("/") else ".")
    base = project_relative(root, head)
    out: list[str] = [base] if base else []
    for seg in parts[first:]:
        if seg in ("", "."):
            continue
        if seg == "..":
            raise UsageError(f"invalid pattern {raw!r}: '..' after a glob is not allowed")
        if seg == "**" and out and out[-1] == "**":
            continue
        out.append(seg if seg == "**" else _collapse_stars(seg))
    return "/".join(out)


def _collapse_stars(seg: str) -> str:
    while "**" in seg:
        seg = seg.replace("**", "*")
    return seg
