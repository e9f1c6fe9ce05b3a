"""Route types, what each one needs (its spec), and path matching: suffix, longest wins."""

from __future__ import annotations

from enum import StrEnum

import attrs

from .errors import ANTHROPIC, OPENAI

__all__ = [
    "CHAT", "DEFAULT_ROUTES", "EMBEDDINGS", "MESSAGES", "MODELS", "PASSTHROUGH", "REALTIME", "RESPONSES",
    "RESPONSES_ITEM_SPEC",
    "ROUTE_SPECS", "TOKEN_COUNT", "Handler", "ModelSource", "RouteMatch", "RouteSpec", "RouteTable", "RouteType",
]


class RouteType(StrEnum):
    """What a request is, told by its path; the values are the names used in config and logs."""

    CHAT = "completions"
    RESPONSES = "responses"
    MESSAGES = "messages"
    TOKEN_COUNT = "anthropic_token_count"
    EMBEDDINGS = "embeddings"
    MODELS = "models"
    REALTIME = "realtime"
    PASSTHROUGH = "passthrough"


CHAT = RouteType.CHAT
RESPONSES = RouteType.RESPONSES
MESSAGES = RouteType.MESSAGES
TOKEN_COUNT = RouteType.TOKEN_COUNT
EMBEDDINGS = RouteType.EMBEDDINGS
MODELS = RouteType.MODELS
REALTIME = RouteType.REALTIME
PASSTHROUGH = RouteType.PASSTHROUGH


class ModelSource(StrEnum):
    """Where a route finds the model that decides its provider."""

    NONE = "none"  # no model: answered by the gateway itself
    BODY = "body"  # the "model" field of the JSON body, which is read whole
    QUERY = "query"  # ?model= (the body is never read)
    QUERY_OR_BODY = "query_or_body"  # ?model=, else a JSON body's "model", else the "*" model


class Handler(StrEnum):
    """Which final handler serves a route (gateway/handler.py maps each to its function)."""

    LISTING = "listing"  # answered from config: gateway/listing.py
    RELAY = "relay"  # one JSON exchange with the provider, translated as needed: gateway/relay.py
    PASSTHROUGH = "passthrough"  # method, path, query and body forwarded: gateway/passthrough.py
    REALTIME = "realtime"  # a WebSocket relayed frame by frame: gateway/realtime.py
    RESPONSES = "responses"  # the relay, then the answer kept where the gateway keeps the state
    RESPONSES_ITEM = "responses_item"  # GET/DELETE a stored response, its input_items: responses_routes.py


@attrs.frozen
class RouteSpec:
    """What serving one route type takes."""

    route: RouteType
    handler: Handler
    model_from: ModelSource
    translated: bool = False  # served through a codec (select_codec): the body may change format
    methods: frozenset[str] | None = None  # the methods it answers (others get 405); None: any
    client_format: str | None = None  # the format its clients speak; None: told by their headers


_POST = frozenset({"POST"})
_GET = frozenset({"GET", "HEAD"})


def _json_route(route: RouteType, client_format: str) -> RouteSpec:
    return RouteSpec(route, Handler.RELAY, ModelSource.BODY, translated=True, methods=_POST,
                     client_format=client_format)


ROUTE_SPECS: dict[RouteType, RouteSpec] = {
    CHAT: _json_route(CHAT, OPENAI),
    RESPONSES: attrs.evolve(_json_route(RESPONSES, OPENAI), handler=Handler.RESPONSES),
    EMBEDDINGS: _json_route(EMBEDDINGS, OPENAI),
    MESSAGES: _json_route(MESSAGES, ANTHROPIC),
    TOKEN_COUNT: _json_route(TOKEN_COUNT, ANTHROPIC),
    MODELS: RouteSpec(MODELS, Handler.LISTING, ModelSource.NONE, methods=_GET),
    REALTIME: RouteSpec(REALTIME, Handler.REALTIME, ModelSource.QUERY, methods=frozenset({"GET"})),
    PASSTHROUGH: RouteSpec(PASSTHROUGH, Handler.PASSTHROUGH, ModelSource.QUERY_OR_BODY),
}

DEFAULT_ROUTES: dict[str, RouteType] = {
    "/v1/chat/completions": CHAT,
    "/v1/responses": RESPONSES,
    "/v1/messages": MESSAGES,
    "/v1/messages/count_tokens": TOKEN_COUNT,
    "/v1/embeddings": EMBEDDINGS,
    "/v1/models": MODELS,
    "/v1/realtime": REALTIME,
}


@attrs.frozen
class RouteMatch:
    """The spec of the route a path matched."""

    spec: RouteSpec
    item: str = ""  # trailing id for item routes such as /v1/models/{id}

    @property
    def route(self) -> RouteType:
        return self.spec.route


_PASSTHROUGH_MATCH = RouteMatch(ROUTE_SPECS[PASSTHROUGH])
# /v1/responses/{id} and /v1/responses/{id}/input_items: a stored response (the model, if any,
# comes from ?model= in the handler). The Responses API's POST actions below /v1/responses
# (compact, input_tokens, {id}/cancel) stay passthrough.
RESPONSES_ITEM_SPEC = RouteSpec(RESPONSES, Handler.RESPONSES_ITEM, ModelSource.NONE,
                                methods=frozenset({"GET", "HEAD", "DELETE"}), client_format=OPENAI)
_RESPONSES_ACTIONS = frozenset({"compact", "input_tokens"})


class RouteTable:
    """Precompiled suffix matcher; results for seen paths are cached."""

    __slots__ = ("_cache", "_models_suffixes", "_responses_suffixes", "_suffixes")

    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        table: dict[str, RouteType] = dict(DEFAULT_ROUTES)
        table.update({suffix: RouteType(route) for suffix, route in (overrides or {}).items()})
        by_length = sorted(table.items(), key=lambda kv: len(kv[0]), reverse=True)
        self._suffixes = [(suffix, RouteMatch(ROUTE_SPECS[route])) for suffix, route in by_length]
        self._models_suffixes = [s for s, r in by_length if r is MODELS]
        self._responses_suffixes = [s for s, r in by_length if r is RESPONSES]
        self._cache: dict[str, RouteMatch] = {}

    def match(self, path: str) -> RouteMatch:
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        hit = self._match(path)
        if len(self._cache) < 4096:
            self._cache[path] = hit
        return hit

    def _match(self, path: str) -> RouteMatch:
        trimmed = path.rstrip("/") or "/"
        for suffix, match in self._suffixes:
            if trimmed.endswith(suffix):
                return match
        parent, _, item = trimmed.rpartition("/")
        if item:
            for suffix in self._models_suffixes:
                if parent.endswith(suffix):
                    return RouteMatch(ROUTE_SPECS[MODELS], item)
            return self._responses_item(parent, item)
        return _PASSTHROUGH_MATCH

    def _responses_item(self, parent: str, item: str) -> RouteMatch:
        """/…/responses/{id} or /…/responses/{id}/input_items, else passthrough."""
        if item == "input_items":
            parent, _, item = parent.rpartition("/")
            if not item:
                return _PASSTHROUGH_MATCH
        elif item in _RESPONSES_ACTIONS:
            return _PASSTHROUGH_MATCH
        for suffix in self._responses_suffixes:
            if parent.endswith(suffix):
                return RouteMatch(RESPONSES_ITEM_SPEC, item)
        return _PASSTHROUGH_MATCH
