"""The admin listener: /healthz, /readyz and /config (secrets redacted)."""

from __future__ import annotations

import os

import orjson
from aiohttp import web

from .config import Config, redacted
from .exchange import STATE
from .gateway_state import GatewayState

__all__ = ["build_admin_app"]


def provider_health(state: GatewayState) -> dict[str, dict[str, object]]:
    """Each provider's state: healthy, degraded (some of its targets ejected) or ejected (every
    target heard from is ejected), with the state of each target (upstream model) heard from."""
    targets: dict[str, dict[str, str]] = {name: {} for name in state.providers}
    for key, target_state in state.health.states().items():
        provider, _, model = key.partition("/")
        if provider in targets:
            targets[provider][model] = target_state
    report: dict[str, dict[str, object]] = {}
    for name, models in targets.items():
        ejected = [m for m, st in models.items() if st == "ejected"]
        unwell = [m for m, st in models.items() if st != "healthy"]
        overall = ("ejected" if ejected and len(ejected) == len(models)
                   else "degraded" if unwell else "healthy")
        report[name] = {"state": overall, "targets": models}
    return report


def build_admin_app(config: Config, gateway: web.Application) -> web.Application:
    app = web.Application()

    def state() -> GatewayState:
        return gateway[STATE]

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    async def readyz(_: web.Request) -> web.Response:
        current = state()
        providers = provider_health(current)
        if current.draining:
            return web.json_response({"status": "draining", "providers": providers}, status=503)
        if providers and all(p["state"] == "ejected" for p in providers.values()):
            return web.json_response({"status": "unavailable", "providers": providers}, status=503)
        return web.json_response({"status": "ready", "providers": providers})

    async def config_dump(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(redacted(state().config), option=orjson.OPT_INDENT_2),
                            content_type="application/json")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/config", config_dump)
    return app
