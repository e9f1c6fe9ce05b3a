"""Route types and path matching: path suffix, longest wins, overridable from config."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_ROUTES", "RouteMatch", "RouteTable", "CHAT", "RESPONSES", "MESSAGES",
           "TOKEN_COUNT", "EMBEDDINGS", "MODELS", "REALTIME", "PASSTHROUGH"]

CHAT = "completions"
RESPONSES = "responses"
MESSAGES = "messages"
TOKEN_COUNT = "anthropic_token_count"
EMBEDDINGS = "embeddings"
MODELS = "models"
REALTIME = "realtime"
PASSTHROUGH = "passthrough"

DEFAULT_ROUTES: dict[str, str] = {
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
    """The route type of a path and the suffix that matched ("" for passthrough)."""

    route: str
    suffix: str
    item: str = ""  # trailing id for item routes such as /v1/models/{id}


class RouteTable:
    """Precompiled suffix matcher; results for seen paths are cached."""

    __slots__ = ("_cache", "_models_suffixes", "_suffixes")

    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        table = dict(DEFAULT_ROUTES)
        table.update(overrides or {})
        self._suffixes = sorted(table.items(), key=lambda kv: len(kv[0]), reverse=True)
        self._models_suffixes = [s for s, r in self._suffixes if r == MODELS]
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
        for suffix, route in self._suffixes:
            if trimmed.endswith(suffix):
                return RouteMatch(route, suffix)
        parent, _, item = trimmed.rpartition("/")
        if item:
            for suffix in self._models_suffixes:
                if parent.endswith(suffix):
                    return RouteMatch(MODELS, suffix, item)
        return RouteMatch(PASSTHROUGH, "")
