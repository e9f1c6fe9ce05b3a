"""OpenAI and any OpenAI-compatible server (vLLM, Ollama, Groq, …)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from multidict import CIMultiDict
from yarl import URL

from ..config import ProviderConfig
from .base import Provider

__all__ = ["OpenAIProvider"]

OPENAI_HOST = "api.openai.com"


class OpenAIProvider(Provider):
    family = "openai"
    default_base_url = "https://api.openai.com/v1"
    endpoints: ClassVar[dict[str, str]] = {
        "completions": "/chat/completions",
        "responses": "/responses",
        "embeddings": "/embeddings",
    }

    def __init__(self, cfg: ProviderConfig) -> None:
        super().__init__(cfg)
        # `responses` unset: only OpenAI itself is known to serve /v1/responses.
        mode = getattr(cfg, "responses", None)
        self.native_responses = mode == "native" if mode is not None else self.base_url.host == OPENAI_HOST

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def passthrough_relative_path(self, raw_path: str) -> str:
        # base_url carries the version segment (".../v1"), as in the official SDK.
        version = self._base_path.rsplit("/", 1)[-1]
        if version and raw_path.startswith(f"/{version}/"):
            return raw_path[len(version) + 1 :]
        return raw_path

    def realtime_url(self, model: str, query: Mapping[str, str]) -> URL:
        """`ws(s)://<base_url>/realtime?model=…`, as the official SDK builds it."""
        scheme = "wss" if self.base_url.scheme == "https" else "ws"
        params = {k: v for k, v in query.items() if k != "model"}
        params["model"] = model
        return self.base_url.with_scheme(scheme).with_path(self._base_path + "/realtime").with_query(params)

    def realtime_headers(self, client_headers: Mapping[str, str]) -> CIMultiDict[str]:
        """`OpenAI-Beta` (e.g. `realtime=v1`) goes upstream only when the client sent it."""
        headers = CIMultiDict(self.base_headers)
        beta = client_headers.get("OpenAI-Beta")
        if beta:
            headers["OpenAI-Beta"] = beta
        return headers
