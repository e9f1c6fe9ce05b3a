"""Route-type detection: path suffix → route type and the client's API format."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.exchange import EXCHANGE, STATE, Exchange, client_format_for

__all__ = ["detect_route"]


@web.middleware
async def detect_route(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = request.app[STATE].routes.match(request.path)
    request[EXCHANGE] = Exchange(match.route, client_format_for(match.route, request.headers), match.item)
    return await handler(request)
