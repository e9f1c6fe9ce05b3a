"""Check the method, read the request body and resolve the requested model to a provider
(and authorise it), as the route's spec says."""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge
from gateway.exchange import EXCHANGE, Exchange
from gateway.gateway_state import GatewayState
from gateway.plan import Attempt
from gateway.request_body import SIZE_MESSAGE, check_charset, decode_body, is_json_request, parse_json_object
from gateway.routes import ModelSource

__all__ = ["resolve_model"]

# Bound once: an enum member looked up on its class costs a Python-level call per request.
_BODY = ModelSource.BODY
_NONE = ModelSource.NONE
_QUERY_OR_BODY = ModelSource.QUERY_OR_BODY


async def _read_json_body(request: web.Request, ex: Exchange, limit: int) -> dict[str, Any]:
    """Read the whole body (bounded by max_request_bytes, also once decoded) into the exchange
    and parse it."""
    check_charset(request)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(SIZE_MESSAGE) from None
    except web.RequestPayloadError:  # e.g. a broken chunked encoding
        raise BadRequest("the request body could not be read") from None
    encoding = request.headers.get(hdrs.CONTENT_ENCODING)
    if encoding is not None:
        raw = decode_body(raw, encoding, limit)
    ex.raw_body = raw
    ex.body_read = True
    ex.body = parse_json_object(raw)
    return ex.body


def resolve_model(state: GatewayState) -> Middleware:
    """Find the model a request names and the route that serves it."""
    models = state.models
    planner = state.planner
    limit = state.config.server.max_request_bytes

    @web.middleware
    async def resolve(request: web.Request, handler: Handler) -> web.StreamResponse:
        ex = request[EXCHANGE]
        spec = ex.spec
        if spec.methods is not None and request.method not in spec.methods:
            raise MethodNotAllowed(request.method, spec.methods)
        source = spec.model_from
        model: object
        if source is _BODY:
            model = (await _read_json_body(request, ex, limit)).get("model")
            if model is None:
                raise BadRequest("the request names no model: set the \"model\" field", param="model")
        elif source is _NONE:
            return await handler(request)
        else:
            model = request.query.get("model")
            if model is None and source is _QUERY_OR_BODY:
                # Passthrough: `?model=` wins and leaves the body unread; only a JSON body is read
                # (bounded by max_request_bytes) to find the model, every other body is streamed
                # by the handler; naming none, the request goes to the `*` model's provider.
                if request.body_exists and is_json_request(request):
                    model = (await _read_json_body(request, ex, limit)).get("model")
                if model is None:
                    fallback = models.fallback
                    if fallback is None:
                        raise NotFound(f"no route for {request.method} {request.path[:200]}", code="unknown_route")
                    ex.plan = [Attempt(fallback, fallback.provider, "")]
                    return await handler(request)
        if not isinstance(model, str) or not model:
            raise BadRequest('"model" must be a non-empty string', param="model")
        ex.model = model
        plan = planner.plan(model)
        if not plan:
            raise NotFound(f"model \"{model[:200]}\" is not served by this gateway", code="model_not_found",
                           param="model")
        if ex.model_allowed is not None and not ex.model_allowed(model):
            raise Forbidden(f"this API key may not use model \"{model[:200]}\"", code="model_not_allowed")
        ex.plan = plan
        return await handler(request)

    return resolve
