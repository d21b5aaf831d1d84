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
from collections import deque
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

from claudeswarm.errors import UsageError
from claudeswarm.storage.paths import project_relative

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
_S = tuple[int, int, int]  # a search state
_Moves = Callable[[_S], Iterator[tuple[_S, str]]]


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


def _search(start: _S, goal: _S, moves: _Moves) -> list[str] | None:
    """Breadth-first reachability from ``start`` to ``goal`` over a finite graph; returns
    the labels along a shortest path. Iterative: no recursion limit, each state once."""
    parent: dict[_S, tuple[_S, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == goal:
            labels: list[str] = []
            step = parent[state]
            while step is not None:
                labels.append(step[1])
                step = parent[step[0]]
            return labels[::-1]
        for nxt, label in moves(state):
            if nxt not in parent:
                parent[nxt] = (state, label)
                queue.append(nxt)
    return None


def _segment_witness(a: tuple[Token, ...], b: tuple[Token, ...]) -> str | None:
    """A non-empty string matched by both segment patterns, or ``None``.

    States are (position in a, position in b, consumed anything yet). A star may be
    skipped (no character) or absorb one character and stay; a one-character token
    absorbs one character and moves on; both sides must accept the same character.
    """

    def moves(state: _S) -> Iterator[tuple[_S, str]]:
        i, j, got = state
        if i < len(a) and a[i] is None:
            yield (i + 1, j, got), ""
        if j < len(b) and b[j] is None:
            yield (i, j + 1, got), ""
        if i == len(a) or j == len(b):
            return
        ta, tb = a[i], b[j]
        cs = _intersect(_ANY if ta is None else ta, _ANY if tb is None else tb)
        if cs:
            # both stars staying put is needed once (a name is never empty), never twice
            yield (i + (ta is not None), j + (tb is not None), 1), _pick(cs)

    found = _search((0, 0, 0), (len(a), len(b), 1), moves)
    return None if found is None else "".join(found)


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

    def moves(state: _S) -> Iterator[tuple[_S, str]]:
        i, j, _ = state
        star_a = i < len(sa) and sa[i] == "**"
        star_b = j < len(sb) and sb[j] == "**"
        if star_a:
            yield (i + 1, j, 0), ""
        if star_b:
            yield (i, j + 1, 0), ""
        if i == len(sa) or j == len(sb) or (star_a and star_b):
            return  # both '**' staying put would only make longer paths
        name = segment_overlap("*" if star_a else sa[i], "*" if star_b else sb[j])
        if name is not None:
            yield (i + (not star_a), j + (not star_b), 0), name

    found = _search((0, 0, 0), (len(sa), len(sb), 0), moves)
    if found is None:
        return None
    return "/".join(n for n in found if n) or "x"  # only '**' both sides: any one segment


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


MAX_PATTERN = 4096  # PATH_MAX
MAX_GLOB = 1024  # a glob is compared with many others: bound the work one can cause
MAX_SEGMENT = 255  # NAME_MAX


def canonical(root: Path, raw: str) -> str:
    """The canonical spelling of a user's pattern, relative to the project ``root``.

    The literal directory prefix goes through :func:`claudeswarm.storage.paths.project_relative`
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
    if any(len(seg) > MAX_SEGMENT for seg in parts):
        raise UsageError(f"invalid pattern {raw[:80]!r}...: a segment is longer than {MAX_SEGMENT}")
    if has_glob(raw) and len(raw) > MAX_GLOB:
        raise UsageError(f"invalid pattern {raw[:80]!r}...: a glob may be {MAX_GLOB} long at most")
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
