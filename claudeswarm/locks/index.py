"""The pattern index: which held patterns could overlap a new one, without looking at all.

Every held pattern lives in a trie of path segments at the node of its *literal prefix*
(the segments before the first glob). Exact paths sit at their own node (a dict lookup per
segment); globs are bucketed at the node of their literal directory. A glob with prefix
``P`` only matches paths that start with ``P``, so two patterns can overlap only when one
prefix is a prefix of the other. A check therefore touches:

- for an exact path: the globs on the nodes along its path and the exact entry at its node;
- for a glob: the globs on the nodes along its prefix, plus the entries below that prefix
  in subtrees whose names the glob's next segments can match (until a ``**``, which can
  reach anything below).

Each candidate is then decided exactly by :func:`claudeswarm.locks.patterns.overlaps`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from claudeswarm.locks.patterns import compiled, has_glob, literal_prefix, overlaps


@dataclass(frozen=True)
class Entry:
    """One held pattern: the lease generation holding it, its mode and its owner."""

    generation: int
    pattern: str
    exclusive: bool
    owner: str


class _Node:
    __slots__ = ("exact", "globs", "kids")

    def __init__(self) -> None:
        self.kids: dict[str, _Node] = {}
        self.exact: dict[int, Entry] = {}
        self.globs: dict[tuple[int, str], Entry] = {}

    def empty(self) -> bool:
        return not (self.kids or self.exact or self.globs)


class PatternIndex:
    """Held patterns, indexed by literal prefix. Not thread-safe (one table per process).

    Examples
    --------
    >>> ix = PatternIndex()
    >>> ix.add(Entry(1, "src/**/*.py", True, "backend"))
    >>> [e.generation for e in ix.conflicts("src/auth/a.py", True, "frontend")]
    [1]
    >>> list(ix.conflicts("docs/a.md", True, "frontend"))
    []
    """

    def __init__(self) -> None:
        self._root = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, entry: Entry) -> None:
        """Index ``entry`` (idempotent for the same generation and pattern)."""
        node = self._root
        for seg in literal_prefix(entry.pattern):
            node = node.kids.setdefault(seg, _Node())
        if has_glob(entry.pattern):
            key = (entry.generation, entry.pattern)
            self._size += key not in node.globs
            node.globs[key] = entry
        else:
            self._size += entry.generation not in node.exact
            node.exact[entry.generation] = entry

    def remove(self, generation: int, pattern: str) -> None:
        """Drop one pattern of one generation (absent: nothing happens); prune empty nodes."""
        trail = [self._root]
        for seg in literal_prefix(pattern):
            nxt = trail[-1].kids.get(seg)
            if nxt is None:
                return
            trail.append(nxt)
        node = trail[-1]
        gone = (
            node.globs.pop((generation, pattern), None)
            if has_glob(pattern)
            else node.exact.pop(generation, None)
        )
        self._size -= gone is not None
        segs = literal_prefix(pattern)
        for depth in range(len(trail) - 1, 0, -1):
            if not trail[depth].empty():
                break
            del trail[depth - 1].kids[segs[depth - 1]]

    def candidates(self, pattern: str) -> Iterator[Entry]:
        """Held entries sharing a prefix with ``pattern`` (a superset of the overlapping)."""
        node = self._root
        yield from node.globs.values()
        for seg in literal_prefix(pattern):
            nxt = node.kids.get(seg)
            if nxt is None:
                return
            node = nxt
            yield from node.globs.values()
        yield from node.exact.values()
        if has_glob(pattern):
            segs = pattern.split("/")
            yield from _below(node, tuple(segs[len(literal_prefix(pattern)) :]))

    def conflicts(self, pattern: str, exclusive: bool, owner: str | None) -> Iterator[Entry]:
        """Entries of other owners that overlap ``pattern`` where a mode is exclusive."""
        for entry in self.candidates(pattern):
            if entry.owner == owner or not (exclusive or entry.exclusive):
                continue
            if overlaps(entry.pattern, pattern):
                yield entry


def _below(node: _Node, rest: tuple[str, ...] | None) -> Iterator[Entry]:
    """Entries under ``node``, skipping subtrees the query cannot reach.

    ``rest`` is the query's segments below ``node``. Everything under child ``name`` has
    ``name`` at that depth, so when the query's next segment is not ``**`` and does not
    match ``name``, or the query has no segment left there, the subtree is skipped.
    ``None`` means "no pruning" (the query had a ``**`` above).
    """
    stack: list[tuple[_Node, tuple[str, ...] | None]] = [(node, rest)]
    while stack:
        cur, left = stack.pop()
        for name, kid in cur.kids.items():
            nxt: tuple[str, ...] | None = None
            if left is not None:
                if not left:
                    continue
                if left[0] != "**":
                    if not _name_matches(name, left[0]):
                        continue
                    nxt = left[1:]
            yield from kid.exact.values()
            yield from kid.globs.values()
            stack.append((kid, nxt))


def _name_matches(name: str, segment: str) -> bool:
    """A literal path segment against one pattern segment (no ``**``)."""
    if not has_glob(segment):
        return name == segment
    return compiled(segment).fullmatch("/" + name) is not None
