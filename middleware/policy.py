"""Policy slot: guardrails and prompt policies plug in here (none configured yet)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["apply_policies"]


@web.middleware
async def apply_policies(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)
