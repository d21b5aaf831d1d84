"""Glob overlap is exact and sound: checked against a brute-force oracle over a small
alphabet, by hypothesis, through the real LockManager."""

from __future__ import annotations

import fnmatch
import itertools
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudeswarm.errors import RefusedError, UsageError
from claudeswarm.locks.index import Entry, PatternIndex
from claudeswarm.locks.manager import Holder, LockManager
from claudeswarm.locks.patterns import canonical, matches, overlaps, witness
from claudeswarm.swarm import Swarm

# -- the oracle: fnmatch per segment, brute force over the alphabet {a, b, c} -------------
# Every generated literal or class uses only a and b, so any other character behaves like
# c. A shortest common name never needs a position that is a star in both patterns, so its
# length is at most the number of one-character tokens of the two segments together; a
# shortest common path likewise never needs a segment that is '**' in both patterns.

ALPHABET = "abc"
WILD = "*"


def _token_count(seg: str) -> int:
    """One-character tokens in a generated segment (its classes are well formed)."""
    count = i = 0
    while i < len(seg):
        if seg[i] == "[":
            i = seg.index("]", i + 2)
        count += seg[i] != "*"
        i += 1
    return count


@cache
def _words(n: int) -> tuple[str, ...]:
    return tuple("".join(w) for k in range(1, n + 1) for w in itertools.product(ALPHABET, repeat=k))


@cache
def oracle_segments(x: str, y: str) -> bool:
    bound = max(1, _token_count(x) + _token_count(y))
    return any(fnmatch.fnmatchcase(w, x) and fnmatch.fnmatchcase(w, y) for w in _words(bound))


def _expansions(segs: list[str], room: int) -> list[tuple[str, ...]]:
    options = [[(WILD,) * k for k in range(room + 1)] if s == "**" else [(s,)] for s in segs]
    return [tuple(itertools.chain(*combo)) for combo in itertools.product(*options)]


def oracle_overlap(a: str, b: str) -> bool:
    sa, sb = a.split("/"), b.split("/")
    na, nb = sum(s != "**" for s in sa), sum(s != "**" for s in sb)
    left, right = _expansions(sa, nb), _expansions(sb, na)
    if na == nb == 0:
        return True  # only '**' on both sides: any one-segment path
    for x in left:
        for y in right:
            if not x or len(x) != len(y):
                continue
            if all(oracle_segments(p, q) for p, q in zip(x, y, strict=True)):
                return True
    return False


def oracle_match(pattern: str, path: str) -> bool:
    def go(ps: list[str], xs: list[str]) -> bool:
        if not ps:
            return not xs
        if ps[0] == "**":
            return any(go(ps[1:], xs[k:]) for k in range(len(xs) + 1))
        return bool(xs) and fnmatch.fnmatchcase(xs[0], ps[0]) and go(ps[1:], xs[1:])

    return go(pattern.split("/"), path.split("/"))


# -- strategies ----------------------------------------------------------------------------

CLASSES = ["[ab]", "[a]", "[!a]", "[!ab]", "[a-b]", "[b-a]", "[!b]"]
TOKENS = ["a", "b", "?", "*", *CLASSES]
# Pre-enumerated choices keep generation cheap (10,000 examples in well under 30 s).
SEGMENTS = ["**"] + ["".join(t) for k in (1, 2, 3) for t in itertools.product(TOKENS, repeat=k)]
NAMES = ["a", "b", "c", "ab", "ba", "abc"]
PATHS = ["/".join(p) for k in (1, 2, 3) for p in itertools.product(NAMES, repeat=k)]
segment = st.one_of(st.sampled_from(["a", "b", "**", "*"]), st.sampled_from(SEGMENTS))
pattern = st.lists(segment, min_size=1, max_size=3).map("/".join)
tree = st.lists(st.sampled_from(PATHS), max_size=3)
_CANON: dict[str, str] = {}


def _canon(root: Path, raw: str) -> str:
    if raw not in _CANON:
        _CANON[raw] = canonical(root, raw)  # the project holds no directory named a or b
    return _CANON[raw]


@pytest.fixture
def pair(swarm: Swarm) -> tuple[LockManager, LockManager]:
    return (
        LockManager(swarm, Holder.for_process("first"), durable=False),
        LockManager(swarm, Holder.for_process("second"), durable=False),
    )


@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(a=pattern, b=pattern, files=tree)
def test_second_exclusive_lock_refused_exactly_when_a_path_matches_both(
    project: Path, pair: tuple[LockManager, LockManager], a: str, b: str, files: list[str]
) -> None:
    ca, cb = _canon(project, a), _canon(project, b)
    truth = oracle_overlap(ca, cb)
    assert overlaps(ca, cb) == truth, (ca, cb)
    found = witness(ca, cb)
    if found is not None:
        assert oracle_match(ca, found)
        assert oracle_match(cb, found)
    for path in files:
        if oracle_match(ca, path) and oracle_match(cb, path):
            assert truth, (ca, cb, path)
    first, second = pair
    first.acquire([ca])
    try:
        second.acquire([cb])
        granted = True
    except RefusedError:
        granted = False
    finally:
        first.release()
    if granted:
        second.release()
    assert granted == (not truth), (ca, cb)
    assert first.list() == []


# -- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("src/*.py", "src/a*", True),  # both match src/abc.py (the reference missed it)
        ("src/**", "src/a.py", True),
        ("src/**/*.py", "src/x/y/z.py", True),
        ("src/**/test_*.py", "src/*.txt", False),
        ("a/**/b", "**/c", False),
        ("a/**/b/**", "**/b/c", True),
        ("[!a]x", "ax", False),
        ("[a-c]*", "d*", False),
        ("*.py", "*.txt", False),
        ("**", "docs/readme.md", True),
        ("src/*", "src/a/b", False),
        ("a[*]b", "a*b", True),
    ],
)
def test_overlap_examples(a: str, b: str, expected: bool) -> None:
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected
    found = witness(a, b)
    assert (found is not None) is expected
    if found is not None:
        assert oracle_match(a, found)
        assert oracle_match(b, found)


def test_matches_takes_paths_literally() -> None:
    assert matches("src/*.py", "src/a.py")
    assert matches("src/a?.py", "src/a[.py")
    assert not matches("src/a?.py", "src/a.py")
    assert not matches("src/[ab].py", "src/[ab].py")  # a class is one character
    assert matches("src/a[[]x].py", "src/a[x].py")


def test_aliases_are_one_pattern(project: Path) -> None:
    (project / "src").mkdir()
    (project / "src" / "a.py").write_text("x")
    (project / "link").symlink_to(project / "src")
    forms = ["src/a.py", "./src/a.py", str(project / "src/a.py"), "link/a.py", "src//a.py"]
    assert {canonical(project, f) for f in forms} == {"src/a.py"}
    assert canonical(project, "link/*.py") == "src/*.py"
    assert canonical(project, "src") == "src/**"
    assert canonical(project, "src/**/**/x") == "src/**/x"


@pytest.mark.parametrize(
    "bad", ["../x.py", "src/../../x", "src/*/../x", "", "a\nb", "a" * 256, "*/" * 600]
)
def test_escapes_and_junk_are_refused(project: Path, bad: str) -> None:
    with pytest.raises(UsageError):
        canonical(project, bad)


def test_symlink_leaving_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    (project / "out").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="symlink"):
        canonical(project, "out/x.py")
    with pytest.raises(UsageError, match="symlink"):
        canonical(project, "out/*.py")


def test_index_touches_only_candidates_sharing_a_prefix() -> None:
    ix = PatternIndex()
    for i in range(200):
        ix.add(Entry(i, f"pkg{i}/mod.py", True, "x"))
        ix.add(Entry(1000 + i, f"pkg{i}/sub/*.py", True, "x"))
    ix.add(Entry(5000, "**/*.md", True, "y"))
    assert len(ix) == 401
    near = {e.generation for e in ix.candidates("pkg7/sub/a.py")}
    assert near == {1007, 5000}
    under = {e.generation for e in ix.candidates("pkg7/**")}
    assert under == {7, 1007, 5000}
    assert [e.generation for e in ix.conflicts("pkg7/sub/a.py", True, "z")] == [1007]
    ix.remove(1007, "pkg7/sub/*.py")
    assert list(ix.conflicts("pkg7/sub/a.py", True, "z")) == []
    assert len(ix) == 400


def test_long_patterns_are_decided_without_recursion_limits() -> None:
    deep = "/".join(["**", "a"] * 200)
    assert witness(deep, "/".join(["*"] * 200)) == "/".join(["a"] * 200)
    assert not overlaps("*a" * 120, "*b")
    assert overlaps("*a" * 120, "*" + "[!b]" * 60)
