"""Plans: the ordered targets one request may try (seam 1, "plan, then attempt").

A plain model is a plan of one. A virtual model's `targets` are ordered by priority (lower
first); among equal priorities a smooth weighted round robin (nginx's algorithm) picks who
goes first, so over many requests each target leads in proportion to its weight; targets
that are ejected go last. A target names another model, resolved as a client's model name
would be (and may itself be virtual).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import attrs

from .health import HealthBoard

__all__ = ["Attempt", "PriorityGroup", "SmoothWeighted", "VirtualModel", "Planner", "find_cycle"]

R = TypeVar("R")


class Attempt(Generic[R]):
    """One place a request can go: the resolved model route and the upstream model name.
    `key` names it for health: one deployment is one provider serving one upstream model."""

    __slots__ = ("key", "provider", "route", "upstream_model")

    def __init__(self, route: R, provider: str, upstream_model: str) -> None:
        self.route = route
        self.provider = provider
        self.upstream_model = upstream_model
        self.key = f"{provider}/{upstream_model}"

    def __repr__(self) -> str:
        return f"Attempt({self.key})"


class SmoothWeighted:
    """Smooth weighted round robin over a fixed list of (name, weight)."""

    __slots__ = ("_current", "_names", "_total", "_weights")

    def __init__(self, members: Iterable[tuple[str, int]]) -> None:
        pairs = list(members)
        self._names = [name for name, _ in pairs]
        self._weights = [weight for _, weight in pairs]
        self._total = sum(self._weights)
        self._current = [0] * len(pairs)

    def order(self) -> list[str]:
        """All members, the one whose turn it is first, the rest by how close their turn is."""
        if len(self._names) == 1:
            return list(self._names)
        current = self._current
        for i, weight in enumerate(self._weights):
            current[i] += weight
        ranked = sorted(range(len(current)), key=lambda i: (-current[i], i))
        current[ranked[0]] -= self._total
        return [self._names[i] for i in ranked]


@attrs.frozen
class PriorityGroup:
    priority: int
    members: tuple[tuple[str, int], ...]  # (target model name, weight)


@attrs.define(eq=False)
class VirtualModel:
    """A model made of targets, in priority groups, each with its own weighted rotation."""

    name: str
    groups: list[tuple[PriorityGroup, SmoothWeighted]]

    @classmethod
    def build(cls, name: str, targets: Iterable[tuple[str, int, int]]) -> VirtualModel:
        """From (model, priority, weight) triples."""
        by_priority: dict[int, list[tuple[str, int]]] = {}
        for model, priority, weight in targets:
            by_priority.setdefault(priority, []).append((model, weight))
        groups = [PriorityGroup(p, tuple(m)) for p, m in sorted(by_priority.items())]
        return cls(name, [(g, SmoothWeighted(g.members)) for g in groups])

    @property
    def fixed(self) -> bool:
        """Whether every request gets the same order (no group shares a priority)."""
        return all(len(group.members) == 1 for group, _ in self.groups)

    def target_names(self) -> list[str]:
        """This request's order of target names (advances the weighted rotations)."""
        return [name for _, rotation in self.groups for name in rotation.order()]


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in `virtual model -> target names` as a path that returns to its start, if any."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
            if nxt in graph and state.get(nxt) is None:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in graph:
        if state.get(start) is None:
            found = visit(start, [start])
            if found:
                return found
    return None


class Planner(Generic[R]):
    """Turns a client's model name into its plan, given how plain names resolve."""

    __slots__ = ("_fixed", "_health", "_leaves", "_plain", "_resolve", "_virtual")

    def __init__(self, virtual: dict[str, VirtualModel],
                 resolve: Callable[[str], tuple[R, str, str] | None], health: HealthBoard) -> None:
        """`resolve(name)` gives (route, provider name, upstream model) for a plain model name."""
        self._virtual = virtual
        self._resolve = resolve
        self._health = health
        self._plain: dict[str, list[Attempt[R]]] = {}  # plans of one, by name (never mutated)
        self._leaves: dict[str, Attempt[R] | None] = {}  # a target name's attempt (resolved once)
        self._fixed: dict[str, list[Attempt[R]]] = {}  # virtual models whose order never changes

    def is_virtual(self, name: str) -> bool:
        return name in self._virtual

    def plan(self, name: str) -> list[Attempt[R]]:
        """The ordered attempts for `name`; empty when it names no model."""
        plain = self._plain.get(name)
        if plain is not None:
            return plain
        virtual = self._virtual.get(name)
        if virtual is None:
            found = self._resolve(name)
            if found is None:
                return []
            plain = [Attempt(*found)]
            if len(self._plain) < 4096:
                self._plain[name] = plain
            return plain
        attempts = self._fixed.get(name)
        if attempts is None:
            attempts = []
            self._expand(virtual, attempts, set())
            if self._is_fixed(virtual):
                self._fixed[name] = attempts
        health = self._health
        if not health.ejected:
            return attempts
        ready = [a for a in attempts if not health.is_ejected(a.key)]
        if len(ready) == len(attempts):
            return attempts
        benched = [a for a in attempts if health.is_ejected(a.key)]
        return ready + benched  # a target past its cooldown stays in place: its next attempt probes it

    def _is_fixed(self, virtual: VirtualModel) -> bool:
        return virtual.fixed and all(self._is_fixed(self._virtual[name]) for group, _ in virtual.groups
                                     for name, _ in group.members if name in self._virtual)

    def _leaf(self, name: str) -> Attempt[R] | None:
        if name in self._leaves:
            return self._leaves[name]
        found = self._resolve(name)
        leaf = None if found is None else Attempt(*found)
        self._leaves[name] = leaf
        return leaf

    def _expand(self, virtual: VirtualModel, out: list[Attempt[R]], seen: set[str]) -> None:
        for name in virtual.target_names():
            nested = self._virtual.get(name)
            if nested is not None:
                self._expand(nested, out, seen)
                continue
            attempt = self._leaf(name)
            if attempt is None:
                continue
            if attempt.key not in seen:
                seen.add(attempt.key)
                out.append(attempt)
