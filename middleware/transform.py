"""Transformation: check what every attempt shares (the stream flag), then shape the request
for the first target of its plan; the handler shapes it again for each later attempt."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.attempt import shape_attempt
from gateway.errors import BadRequest
from gateway.exchange import EXCHANGE
from gateway.gateway_state import GatewayState
from gateway.responses_state import load_previous

__all__ = ["transform"]


def transform(state: GatewayState) -> Middleware:
    """Shape the body for the first target's provider."""
    providers = state.providers
    default_max_tokens = state.config.server.default_max_tokens

    @web.middleware
    async def shape_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        ex = request[EXCHANGE]
        plan = ex.plan
        if plan is None:  # a route without a model (the model list)
            return await handler(request)
        if ex.spec.translated:
            body = ex.body
            assert body is not None
            ex.client_body = body
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise BadRequest('"stream" must be true or false', param="stream")
            ex.stream = stream
            if "previous_response_id" in body:  # Responses: the stored turn it continues, if kept here
                await load_previous(request, ex)
        shape_attempt(ex, plan[0], providers, default_max_tokens)
        return await handler(request)

    return shape_request
