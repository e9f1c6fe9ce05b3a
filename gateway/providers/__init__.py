"""Provider kinds: each module keeps its own URL, auth and quirks."""

from __future__ import annotations

from ..config import ProviderConfig
from .anthropic import AnthropicProvider
from .azure import AzureProvider
from .base import Provider
from .bedrock import BedrockProvider
from .gemini import GeminiProvider
from .mock import MockProvider
from .openai import OpenAIProvider
from .vertex import VertexProvider

__all__ = ["Provider", "build_provider"]

_KINDS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "mock": MockProvider,
    "gemini": GeminiProvider,
    "vertex": VertexProvider,
    "azure": AzureProvider,
    "bedrock": BedrockProvider,
}


def build_provider(cfg: ProviderConfig) -> Provider:
    """Instantiate the provider class for `cfg.kind`."""
    return _KINDS[cfg.kind](cfg)
