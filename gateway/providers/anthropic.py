"""Anthropic Messages API: `x-api-key`, `anthropic-version` and `anthropic-beta` headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from multidict import CIMultiDict

from .base import Provider

__all__ = ["AnthropicProvider", "DEFAULT_ANTHROPIC_VERSION"]

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
_FORWARDED = ("anthropic-version", "anthropic-beta")


class AnthropicProvider(Provider):
    family = "anthropic"
    default_base_url = "https://api.anthropic.com"  # bare origin, as in the official SDK
    endpoints: ClassVar[dict[str, str]] = {
        "messages": "/v1/messages",
        "anthropic_token_count": "/v1/messages/count_tokens",
    }

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": DEFAULT_ANTHROPIC_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def request_headers(self, client_headers: Mapping[str, str] | None = None) -> CIMultiDict[str]:
        """The client's anthropic-version and anthropic-beta pass through; a default version otherwise."""
        if client_headers is None or not any(h in client_headers for h in _FORWARDED):
            return self.json_headers
        headers = CIMultiDict(self.json_headers)
        for name in _FORWARDED:
            value = client_headers.get(name)
            if value:
                headers[name] = value
        return headers
