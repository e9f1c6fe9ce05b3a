"""Read the request body and resolve the requested model to a provider (and authorise it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.exchange import EXCHANGE, Exchange
from gateway.gateway_state import GatewayState
from gateway.request_body import check_charset, is_json_request, parse_json_object
from gateway.routes import MODELS, PASSTHROUGH, REALTIME

__all__ = ["resolve_model"]


async def _read_json_body(request: web.Request, ex: Exchange) -> dict[str, Any]:
    """Read the whole body (bounded by max_request_bytes) into the exchange and parse it."""
    check_charset(request)
    ex.raw_body = await request.read()
    ex.body_read = True
    ex.body = parse_json_object(ex.raw_body)
    return ex.body


async def _requested_model(request: web.Request, ex: Exchange) -> object:
    """The model the request names (None when a passthrough request names none); reads the body."""
    if ex.route == REALTIME:
        return request.query.get("model")
    if ex.route == PASSTHROUGH:
        # `?model=` wins and leaves the body unread; only a JSON body is read (bounded by
        # max_request_bytes) to find the model. Every other body is streamed by the relay.
        model = request.query.get("model")
        if model is None and request.body_exists and is_json_request(request):
            return (await _read_json_body(request, ex)).get("model")
        return model
    if request.method != "POST":
        raise GatewayError(f"{request.method} is not allowed on this route; use POST", status=405)
    model = (await _read_json_body(request, ex)).get("model")
    if model is None:
        raise BadRequest("the request names no model: set the \"model\" field", param="model")
    return model


def resolve_model(state: GatewayState) -> Middleware:
    """Find the model a request names and the route that serves it."""
    models = state.models

    @web.middleware
    async def resolve(request: web.Request, handler: Handler) -> web.StreamResponse:
        ex = request[EXCHANGE]
        if ex.route == MODELS:
            return await handler(request)
        model = await _requested_model(request, ex)
        if ex.route == PASSTHROUGH and model is None:
            fallback = models.fallback
            if fallback is None:
                raise NotFound(f"no route for {request.method} {request.path[:200]}", code="unknown_route")
            ex.model_route = fallback
            return await handler(request)
        if not isinstance(model, str) or not model:
            raise BadRequest('"model" must be a non-empty string', param="model")
        ex.model = model
        route = models.resolve(model)
        if route is None:
            raise NotFound(f"model \"{model[:200]}\" is not served by this gateway", code="model_not_found",
                           param="model")
        if ex.model_allowed is not None and not ex.model_allowed(model):
            raise GatewayError(f"this API key may not use model \"{model[:200]}\"", status=403,
                               code="model_not_allowed")
        ex.model_route = route
        return await handler(request)

    return resolve
