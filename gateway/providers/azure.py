"""Azure OpenAI: the OpenAI wire with the key in `api-key`, in one of two URL styles.

v1 style (`base_url` ending in `/openai/v1`, no `api_version`): paths as on OpenAI
(`/chat/completions`, `/responses`, `/embeddings`), the deployment in the body's `model`.
Deployment style (`base_url` ending in `/openai`, `api_version` set): the deployment (the
target's upstream model) in the path, `/deployments/{model}/chat/completions?api-version=…`
and `/embeddings` likewise; Responses at `/responses?api-version=…` with the deployment in
the body, as Azure documents it. Both styles serve Responses natively. Realtime goes to
`…/openai/v1/realtime?model={deployment}` (v1) or `…/openai/realtime?api-version=…&deployment=`
(deployment style), the `api-key` header on the handshake.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote_plus

from yarl import URL

from ..config import AzureProviderConfig, ProviderConfig
from ..routes import CHAT, EMBEDDINGS, RESPONSES
from .openai import OpenAIProvider

__all__ = ["AzureProvider"]

# Deployment style: route -> path below base_url; "{model}" is the escaped deployment name.
_DEPLOYMENT_PATHS: dict[str, str] = {
    CHAT: "/deployments/{model}/chat/completions",
    EMBEDDINGS: "/deployments/{model}/embeddings",
    RESPONSES: "/responses",
}


class AzureProvider(OpenAIProvider):
    family = "openai"

    def __init__(self, cfg: ProviderConfig) -> None:
        assert isinstance(cfg, AzureProviderConfig)
        super().__init__(cfg)
        self.native_responses = True
        self.api_version = cfg.api_version
        self._version_query = "api-version=" + quote(cfg.api_version, safe="") if cfg.api_version else ""

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def request_url(self, route: str, model: str, stream: bool) -> URL:
        if not self._version_query:
            return self.urls[route]
        path = _DEPLOYMENT_PATHS[route].replace("{model}", quote(model, safe=""))
        return URL.build(scheme=self.base_url.scheme, authority=self.base_url.raw_authority,
                         path=self.base_url.raw_path.rstrip("/") + path, query_string=self._version_query,
                         encoded=True)

    def passthrough_relative_path(self, raw_path: str) -> str:
        # An Azure-shaped client path (`/openai/…`, as the AzureOpenAI SDK sends) drops the
        # `/openai` the base URL ends in; an OpenAI-shaped one (`/v1/…`) its version segment.
        if not self._version_query:
            return super().passthrough_relative_path(raw_path)
        for prefix in ("/openai/", "/v1/"):
            if raw_path.startswith(prefix):
                return raw_path[len(prefix) - 1 :]
        return raw_path

    def passthrough_url(self, raw_path: str, raw_query: str) -> URL:
        """The client's query as sent; on the deployment style `api-version` is added when the
        client sent none (Azure refuses requests without one)."""
        if self._version_query and not _has_key(raw_query, "api-version"):
            raw_query = f"{raw_query}&{self._version_query}" if raw_query else self._version_query
        return super().passthrough_url(raw_path, raw_query)

    def realtime_url(self, model: str, query: Mapping[str, str]) -> URL:
        """Azure's Realtime WebSocket: v1 style `…/openai/v1/realtime?model={deployment}` (as on
        OpenAI); deployment style `…/openai/realtime?api-version=…&deployment={deployment}`.
        The client's other query parameters go along; the key goes in `api-key`."""
        if not self._version_query:
            return super().realtime_url(model, query)
        scheme = "wss" if self.base_url.scheme == "https" else "ws"
        params = {k: v for k, v in query.items() if k not in ("model", "deployment", "api-version")}
        params["api-version"] = self.api_version or ""
        params["deployment"] = model
        return self.base_url.with_scheme(scheme).with_path(self._base_path + "/realtime").with_query(params)


def _has_key(raw_query: str, key: str) -> bool:
    return any(unquote_plus(p.partition("=")[0]) == key for p in raw_query.split("&") if p)
