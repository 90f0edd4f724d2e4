"""Static graph checks over node keys: reachability and cycles that cannot be left.

Both are iterative (no recursion) so a 10,000-node scene does not hit Python's recursion limit.
Edges are the choice targets; callers leave out the edges of ``end: true`` nodes, which the
runner never follows.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

__all__ = ["reachable", "trapped_cycles"]

K = TypeVar("K", bound=Hashable)


def reachable(starts: Iterable[K], edges: Mapping[K, Sequence[K]]) -> set[K]:
    """Every key reachable from ``starts`` (the starts included)."""
    seen: set[K] = set()
    stack = [s for s in starts]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        stack.extend(t for t in edges.get(key, ()) if t not in seen)
    return seen


def _components(nodes: Sequence[K], edges: Mapping[K, Sequence[K]]) -> list[list[K]]:
    """Strongly connected components (Tarjan, iterative), each in discovery order."""
    index: dict[K, int] = {}
    low: dict[K, int] = {}
    on_stack: set[K] = set()
    stack: list[K] = []
    out: list[list[K]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[K, int]] = [(root, 0)]
        while work:
            key, child_pos = work.pop()
            if child_pos == 0:
                index[key] = low[key] = counter
                counter += 1
                stack.append(key)
                on_stack.add(key)
            children = edges.get(key, ())
            descended = False
            while child_pos < len(children):
                child = children[child_pos]
                child_pos += 1
                if child not in index:
                    work.append((key, child_pos))
                    work.append((child, 0))
                    descended = True
                    break
                if child in on_stack:
                    low[key] = min(low[key], index[child])
            if descended:
                continue
            if low[key] == index[key]:
                component: list[K] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == key:
                        break
                component.reverse()
                out.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[key])
    return out


def trapped_cycles(nodes: Sequence[K], edges: Mapping[K, Sequence[K]]) -> list[list[K]]:
    """Cycles with no way out: strongly connected components that contain a cycle and have no edge
    leaving them, so a play-through that enters one can never finish."""
    trapped: list[list[K]] = []
    order = {key: pos for pos, key in enumerate(nodes)}
    for component in _components(nodes, edges):
        members = set(component)
        cyclic = len(component) > 1 or component[0] in edges.get(component[0], ())
        if not cyclic:
            continue
        if all(t in members for key in component for t in edges.get(key, ())):
            trapped.append(sorted(component, key=lambda k: order.get(k, 0)))
    return trapped
