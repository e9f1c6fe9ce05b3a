"""Everything built once at start from a Config and shared by every request."""

from __future__ import annotations

import hashlib

import aiohttp
import attrs

from .config import Config
from .model_router import ModelRouter
from .providers import Provider, build_provider
from .routes import RouteTable

__all__ = ["GatewayState", "build_state"]


@attrs.define(eq=False)
class GatewayState:
    """The immutable per-config snapshot the request path reads."""

    config: Config
    routes: RouteTable
    models: ModelRouter
    providers: dict[str, Provider]
    client_timeouts: dict[str, aiohttp.ClientTimeout]
    api_keys: dict[str, tuple[str, tuple[str, ...]]]  # sha256 hex -> (key name, model patterns)
    draining: bool = False


def build_state(config: Config) -> GatewayState:
    providers = {p.name: build_provider(p) for p in config.providers}
    timeouts = {
        name: aiohttp.ClientTimeout(
            total=None, connect=p.timeouts.connect, sock_connect=p.timeouts.connect, sock_read=None
        )
        for name, p in providers.items()
    }
    keys: dict[str, tuple[str, tuple[str, ...]]] = {}
    for k in config.auth.keys:
        if k.key is not None:
            keys[hashlib.sha256(k.key.value.encode()).hexdigest()] = (k.name, tuple(k.models))
        elif k.key_sha256 is not None:
            keys[k.key_sha256] = (k.name, tuple(k.models))
    return GatewayState(
        config=config,
        routes=RouteTable(config.routes),
        models=ModelRouter(config.models),
        providers=providers,
        client_timeouts=timeouts,
        api_keys=keys,
    )
