"""Transformation: pick the provider and codec, rename the model, apply defaults/overrides,
and translate the body into the provider's format. Untouched bodies are not re-serialised."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import BadRequest
from gateway.exchange import EXCHANGE
from gateway.formats.codecs import select_codec
from gateway.gateway_state import GatewayState
from gateway.usage import asks_for_stream_usage

__all__ = ["transform"]


def transform(state: GatewayState) -> Middleware:
    """Pick provider and codec, then shape the body for the provider."""
    providers = state.providers
    default_max_tokens = state.config.server.default_max_tokens

    @web.middleware
    async def shape_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        ex = request[EXCHANGE]
        if ex.model_route is None:  # a route without a model (the model list)
            return await handler(request)
        provider = providers[ex.model_route.provider]
        ex.provider = provider
        if not ex.spec.translated:
            return await handler(request)

        body = ex.body
        assert body is not None
        ex.client_body = body
        route = ex.model_route
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest('"stream" must be true or false', param="stream")
        ex.stream = stream
        codec = select_codec(ex.spec.route, provider.family)
        ex.codec = codec
        ex.upstream_model = route.upstream_name(ex.model)

        if route.rewrites_body:
            body = dict(body)
            for key, value in route.defaults.items():
                body.setdefault(key, value)
            body.update(route.overrides)
            body["model"] = route.upstream_name(ex.model)
            ex.body_changed = True
        if codec.request is not None:
            body = codec.request(body, default_max_tokens)
            ex.body_changed = True
        if stream and codec.wants_include_usage and not asks_for_stream_usage(body):
            # Ask upstream for usage; the relay strips the extra chunk again.
            opts = body.get("stream_options")
            if not ex.body_changed:
                body = dict(body)
            body["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
            ex.body_changed = True
            ex.injected_usage = True
        ex.body = body
        return await handler(request)

    return shape_request
