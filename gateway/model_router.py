"""Resolve the model a client asked for to a provider and an upstream model name."""

from __future__ import annotations

from typing import Any

import attrs

from .config import ModelConfig
from .health import HealthBoard
from .plan import Attempt, Planner, VirtualModel

__all__ = ["ModelRoute", "ModelRouter", "RouteAttempt", "build_planner"]


@attrs.frozen
class ModelRoute:
    """Where one client model name goes: provider, upstream name, body defaults/overrides."""

    provider: str
    upstream_model: str | None
    defaults: dict[str, Any]
    overrides: dict[str, Any]

    def upstream_name(self, requested: str) -> str:
        return self.upstream_model or requested

    @property
    def rewrites_body(self) -> bool:
        return bool(self.upstream_model or self.defaults or self.overrides)


class ModelRouter:
    """Exact names first, then the longest matching `prefix*`, then `*`."""

    __slots__ = ("_exact", "_prefixes", "_wildcard", "listed")

    def __init__(self, models: list[ModelConfig]) -> None:
        self._exact: dict[str, ModelRoute] = {}
        prefixes: list[tuple[str, ModelRoute]] = []
        self._wildcard: ModelRoute | None = None
        for m in models:
            if m.provider is None:
                continue
            route = ModelRoute(m.provider, m.model, dict(m.defaults), dict(m.overrides))
            if m.name == "*":
                self._wildcard = self._wildcard or route
            elif m.name.endswith("*"):
                prefixes.append((m.name[:-1], route))
            else:
                self._exact.setdefault(m.name, route)
        self._prefixes = sorted(prefixes, key=lambda p: len(p[0]), reverse=True)
        self.listed = [m for m in models if "*" not in m.name]

    def resolve(self, name: str) -> ModelRoute | None:
        route = self._exact.get(name)
        if route is not None:
            return route
        for prefix, route in self._prefixes:
            if name.startswith(prefix):
                return route
        return self._wildcard

    @property
    def fallback(self) -> ModelRoute | None:
        """The `*` route, used for passthrough requests that name no model."""
        return self._wildcard


RouteAttempt = Attempt[ModelRoute]


def build_planner(models: list[ModelConfig], router: ModelRouter, health: HealthBoard) -> Planner[ModelRoute]:
    """Plans for every model name: virtual models from their targets, the rest through `router`."""
    virtual = {m.name: VirtualModel.build(m.name, [(t.model, t.priority, t.weight) for t in m.targets])
               for m in models if m.targets}

    def resolve(name: str) -> tuple[ModelRoute, str, str] | None:
        route = router.resolve(name)
        return None if route is None else (route, route.provider, route.upstream_name(name))

    return Planner(virtual, resolve, health)
