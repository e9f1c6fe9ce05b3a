"""The admin listener: /healthz, /readyz and /config (secrets redacted)."""

from __future__ import annotations

import os

import orjson
from aiohttp import web

from .config import Config, redacted
from .exchange import STATE
from .gateway_state import GatewayState

__all__ = ["build_admin_app"]


def build_admin_app(config: Config, gateway: web.Application) -> web.Application:
    app = web.Application()

    def state() -> GatewayState:
        return gateway[STATE]

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    async def readyz(_: web.Request) -> web.Response:
        if state().draining:
            return web.json_response({"status": "draining"}, status=503)
        return web.json_response({"status": "ready"})

    async def config_dump(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(redacted(state().config), option=orjson.OPT_INDENT_2),
                            content_type="application/json")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/config", config_dump)
    return app
