"""The final handler behind the middleware chain: the route's spec names who serves it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .exchange import EXCHANGE, Exchange
from .listing import list_models
from .passthrough import relay_passthrough
from .realtime import relay_realtime
from .relay import relay_exchange
from .responses_routes import relay_responses, serve_response_item
from .routes import Handler

__all__ = ["HANDLERS", "dispatch"]

HANDLERS: dict[Handler, Callable[[web.Request, Exchange], Awaitable[web.StreamResponse]]] = {
    Handler.LISTING: list_models,
    Handler.RELAY: relay_exchange,
    Handler.PASSTHROUGH: relay_passthrough,
    Handler.REALTIME: relay_realtime,
    Handler.RESPONSES: relay_responses,
    Handler.RESPONSES_ITEM: serve_response_item,
}


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Serve the request with its route's handler (the chain has resolved and shaped it)."""
    ex = request[EXCHANGE]
    return await HANDLERS[ex.spec.handler](request, ex)
