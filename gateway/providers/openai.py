"""OpenAI and any OpenAI-compatible server (vLLM, Ollama, Groq, …)."""

from __future__ import annotations

from typing import ClassVar

from .base import Provider

__all__ = ["OpenAIProvider"]


class OpenAIProvider(Provider):
    family = "openai"
    default_base_url = "https://api.openai.com/v1"
    endpoints: ClassVar[dict[str, str]] = {
        "completions": "/chat/completions",
        "responses": "/responses",
        "embeddings": "/embeddings",
    }

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def passthrough_relative_path(self, raw_path: str) -> str:
        # base_url carries the version segment (".../v1"), as in the official SDK.
        version = self._base_path.rsplit("/", 1)[-1]
        if version and raw_path.startswith(f"/{version}/"):
            return raw_path[len(version) + 1 :]
        return raw_path
