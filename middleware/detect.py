"""Route detection: path suffix → the route's spec, and the client's API format."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.exchange import EXCHANGE, Exchange, client_format_for
from gateway.gateway_state import GatewayState

__all__ = ["detect_route"]


def detect_route(state: GatewayState) -> Middleware:
    """Start the request's Exchange with its route spec and client format."""
    match_route = state.routes.match

    @web.middleware
    async def detect(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = match_route(request.path)
        spec = match.spec
        request[EXCHANGE] = Exchange(spec, client_format_for(spec, request.headers), match.item)
        return await handler(request)

    return detect
