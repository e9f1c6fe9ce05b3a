"""Google's Gemini API (generativelanguage.googleapis.com): the model and the method in the
path, the key in `x-goog-api-key`, streams as `streamGenerateContent?alt=sse`."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote, unquote_plus

from yarl import URL

from ..config import ProviderConfig
from ..errors import BadRequest
from ..routes import CHAT, EMBEDDINGS
from .base import Provider

__all__ = ["GeminiProvider", "gemini_method", "strip_query_keys"]

# Upstream route -> (method, streaming method). The query that makes a stream SSE rather
# than one JSON array is part of the streaming entry.
_METHODS: dict[str, tuple[str, str]] = {
    CHAT: (":generateContent", ":streamGenerateContent?alt=sse"),
    EMBEDDINGS: (":batchEmbedContents", ":batchEmbedContents"),
}


def gemini_method(route: str, stream: bool) -> str:
    """The `:method` (and query) ending a Gemini model URL for `route`."""
    methods = _METHODS.get(route)
    if methods is None:
        raise BadRequest(f"the {route} route is not available for Gemini models", code="unsupported_route")
    return methods[1] if stream else methods[0]


def strip_query_keys(raw_query: str) -> str:
    """A raw query without its `key` parameters (Google's query form of an API key, however
    percent-encoded), the rest byte for byte."""
    if not raw_query:
        return raw_query
    return "&".join(p for p in raw_query.split("&") if unquote_plus(p.partition("=")[0]) != "key")


class GeminiProvider(Provider):
    family = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"  # bare origin, as in Google's SDK
    endpoints: ClassVar[dict[str, str]] = {}  # the model is in every path
    api_version: ClassVar[str] = "/v1beta"

    def __init__(self, cfg: ProviderConfig) -> None:
        super().__init__(cfg)
        self._models_path = f"{self._base_path}{self.api_version}/models/"

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key} if self.api_key else {}

    def request_url(self, route: str, model: str, stream: bool) -> URL:
        """`{base}/v1beta/models/{model}:generateContent` (or the route's other method)."""
        return URL(f"{self.base_url.origin()}{self._models_path}{quote(model, safe='@')}"
                   f"{gemini_method(route, stream)}", encoded=True)

    def passthrough_url(self, raw_path: str, raw_query: str) -> URL:
        """The client's `?key=` is dropped: the provider's own key goes in `x-goog-api-key`."""
        return super().passthrough_url(raw_path, strip_query_keys(raw_query))
