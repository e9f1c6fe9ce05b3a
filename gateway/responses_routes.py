"""The Responses API's handlers: POST /v1/responses (the JSON relay, then the answer stored
where the gateway keeps the state) and a stored response's own routes:
`GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`.

Which provider holds a response is not in the request (a GET has no model), so the
gateway looks in its own store first: a response it stored for this caller is answered
from there. Otherwise the request goes unchanged to the provider that serves `?model=`
(when given) or the `*` model, when that provider serves Responses natively (it keeps its
own state); else the answer is a 404 in OpenAI shape, as for an unknown id.
"""

from __future__ import annotations

from aiohttp import web

from .errors import Forbidden, MethodNotAllowed, NotFound
from .exchange import STATE, Exchange
from .formats.responses import input_items_page
from .passthrough import relay_passthrough
from .providers import Provider
from .relay import relay_exchange
from .responses_state import RESPONSES_STORE, remember_response

__all__ = ["relay_responses", "serve_response_item"]

_ORDERS = frozenset({"asc", "desc"})


async def relay_responses(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """POST /v1/responses: relayed like every JSON route; a translated answer is stored."""
    response = await relay_exchange(request, ex)
    await remember_response(request, response)
    return response


async def serve_response_item(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """A stored response, its deletion or its input items; else the native provider's answer."""
    response_id = ex.item
    listing = request.path.rstrip("/").endswith("/input_items")
    if listing and request.method == "DELETE":
        raise MethodNotAllowed(request.method, frozenset({"GET", "HEAD"}))
    store = request.app.get(RESPONSES_STORE)
    stored = await store.load(ex.identity, response_id) if store is not None else None
    if store is not None and stored is not None:
        if listing:
            return web.json_response(_input_items(request, stored.input_items))
        if request.method == "DELETE":
            await store.delete(ex.identity, response_id)
            return web.json_response({"id": response_id, "object": "response", "deleted": True})
        return web.json_response(stored.response)
    provider = _native_provider(request, ex)
    if provider is None:
        raise NotFound(f"Response with id '{response_id[:200]}' not found.", code="response_not_found",
                       error_type="invalid_request_error")
    ex.provider = provider
    return await relay_passthrough(request, ex)


def _input_items(request: web.Request, items: list[dict[str, object]]) -> dict[str, object]:
    query = request.query
    order = query.get("order", "desc")
    if order not in _ORDERS:
        order = "desc"
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 20
    return input_items_page(items, after=query.get("after"), limit=limit, order=order)


def _native_provider(request: web.Request, ex: Exchange) -> Provider | None:
    """The provider that keeps this response if any does: the one serving `?model=` (or the
    `*` model), when it serves Responses itself over the network."""
    state = request.app[STATE]
    model = request.query.get("model")
    if model is not None:
        if ex.model_allowed is not None and not ex.model_allowed(model):
            raise Forbidden(f"this API key may not use model \"{model[:200]}\"", code="model_not_allowed")
        ex.model = model
        route = state.models.resolve(model)
    else:
        route = state.models.fallback
    if route is None:
        return None
    provider = state.providers[route.provider]
    return provider if provider.native_responses and not provider.in_process else None
