"""Read the request body and resolve the requested model to a provider (and authorise it)."""

from __future__ import annotations

import fnmatch

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.exchange import EXCHANGE, STATE
from gateway.request_body import check_charset, is_json_request, parse_json_object
from gateway.routes import MODELS, PASSTHROUGH, REALTIME

__all__ = ["resolve_model"]


@web.middleware
async def resolve_model(request: web.Request, handler: Handler) -> web.StreamResponse:
    ex = request[EXCHANGE]
    if ex.route == MODELS:
        return await handler(request)
    state = request.app[STATE]
    model: object = None
    if ex.route == REALTIME:
        model = request.query.get("model")
    elif ex.route == PASSTHROUGH:
        # `?model=` wins and leaves the body unread; only a JSON body is read (bounded by
        # max_request_bytes) to find the model. Every other body is streamed by the relay.
        model = request.query.get("model")
        if model is None and request.body_exists and is_json_request(request):
            check_charset(request)
            ex.raw_body = await request.read()
            ex.body_read = True
            ex.body = parse_json_object(ex.raw_body)
            model = ex.body.get("model")
    else:
        if request.method != "POST":
            raise GatewayError(f"{request.method} is not allowed on this route; use POST", status=405)
        check_charset(request)
        ex.raw_body = await request.read()
        ex.body_read = True
        ex.body = parse_json_object(ex.raw_body)
        model = ex.body.get("model")
        if model is None:
            raise BadRequest("the request names no model: set the \"model\" field", param="model")

    if ex.route == PASSTHROUGH and model is None:
        route = state.models.fallback
        if route is None:
            raise NotFound(f"no route for {request.method} {request.path[:200]}", code="unknown_route")
        ex.model_route = route
        return await handler(request)
    if not isinstance(model, str) or not model:
        raise BadRequest('"model" must be a non-empty string', param="model")
    ex.model = model
    route = state.models.resolve(model)
    if route is None:
        raise NotFound(f"model \"{model[:200]}\" is not served by this gateway", code="model_not_found",
                       param="model")
    if ex.allowed_models is not None and not any(fnmatch.fnmatchcase(model, p) for p in ex.allowed_models):
        raise GatewayError(f"this API key may not use model \"{model[:200]}\"", status=403,
                           code="model_not_allowed")
    ex.model_route = route
    return await handler(request)
