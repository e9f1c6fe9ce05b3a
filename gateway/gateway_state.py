"""Everything built once at start from a Config and shared by every request."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable

import aiohttp
import attrs

from .accounting import Accounting
from .config import Config
from .health import HealthBoard
from .model_router import ModelRoute, ModelRouter, build_planner
from .plan import Planner
from .providers import Provider, build_provider
from .retry import RetryPolicy
from .routes import RouteTable

__all__ = ["GatewayState", "ModelMatcher", "build_state", "model_matcher"]

ModelMatcher = Callable[[str], object]
"""True-ish when a model name matches one of an API key's `models` patterns."""


def model_matcher(patterns: list[str]) -> ModelMatcher | None:
    """One precompiled matcher for glob `patterns`; None when "*" lets every model through."""
    if "*" in patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


@attrs.define(eq=False)
class GatewayState:
    """The per-config snapshot the request path reads (only `draining` changes, at shutdown)."""

    config: Config
    routes: RouteTable
    models: ModelRouter
    providers: dict[str, Provider]
    client_timeouts: dict[str, aiohttp.ClientTimeout]
    api_keys: dict[str, tuple[str, ModelMatcher | None]]  # sha256 hex -> (key name, model matcher)
    planner: Planner[ModelRoute]
    health: HealthBoard  # target health, fed by every attempt
    retry: RetryPolicy | None  # None: no [retry]: each target of a plan is tried once
    accounting: Accounting = attrs.Factory(Accounting)  # this process's usage totals
    draining: bool = False


def build_state(config: Config) -> GatewayState:
    providers = {p.name: build_provider(p) for p in config.providers}
    timeouts = {
        name: aiohttp.ClientTimeout(
            total=None, connect=p.timeouts.connect, sock_connect=p.timeouts.connect,
            sock_read=p.timeouts.first_byte,
        )
        for name, p in providers.items()
    }
    keys: dict[str, tuple[str, ModelMatcher | None]] = {}
    for k in config.auth.keys:
        if k.key is not None:
            keys[hashlib.sha256(k.key.value.encode()).hexdigest()] = (k.name, model_matcher(k.models))
        elif k.key_sha256 is not None:
            keys[k.key_sha256] = (k.name, model_matcher(k.models))
    router = ModelRouter(config.models)
    health = HealthBoard(config.health.eject_after, config.health.cooldown)
    retry = None if config.retry is None else RetryPolicy(
        config.retry.attempts, config.retry.backoff, config.retry.max_retry_after)
    return GatewayState(
        config=config,
        routes=RouteTable(config.routes),
        models=router,
        planner=build_planner(config.models, router, health),
        health=health,
        retry=retry,
        providers=providers,
        client_timeouts=timeouts,
        api_keys=keys,
    )
