"""Limits slot: request and token rate limits plug in here (none configured yet)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["enforce_limits"]


@web.middleware
async def enforce_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)
