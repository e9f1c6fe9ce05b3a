"""Vertex AI: Gemini models (publishers/google) and Claude models (publishers/anthropic) in a
Google Cloud project, with OAuth bearer tokens from a service account or application
default credentials.

Gemini models speak the Gemini wire (`:generateContent`, `:streamGenerateContent?alt=sse`);
`claude-*` models speak Anthropic Messages on `:rawPredict` / `:streamRawPredict`, with the
API version in the body (`anthropic_version`) and the model in the URL only. Token counts
for Claude go to `count-tokens:rawPredict`. Embeddings (Vertex `:predict`) are not served yet.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import attrs
import orjson
from aiohttp import ClientSession, ClientTimeout
from multidict import CIMultiDict
from yarl import URL

from ..config import ProviderConfig, VertexProviderConfig
from ..errors import BadRequest
from ..routes import EMBEDDINGS, MESSAGES, TOKEN_COUNT
from .base import Provider, UpstreamResponse
from .gemini import gemini_method

__all__ = ["VERTEX_ANTHROPIC_VERSION", "VertexProvider", "vertex_origin"]

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_ANTHROPIC_ROUTES = (MESSAGES, TOKEN_COUNT)


def vertex_origin(location: str) -> str:
    """The location's endpoint, as the official Anthropic Vertex SDK picks it."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):  # multi-region endpoints
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


class VertexProvider(Provider):
    family = "gemini"
    endpoints: ClassVar[dict[str, str]] = {}  # the model is in every path

    def __init__(self, cfg: ProviderConfig) -> None:
        assert isinstance(cfg, VertexProviderConfig)
        if cfg.base_url is None:
            cfg = _with_base_url(cfg, vertex_origin(cfg.location))
        super().__init__(cfg)
        self.project, self.location = cfg.project, cfg.location
        self._publishers = (f"{self.base_url.origin()}{self._base_path}/v1/projects/{quote(cfg.project, safe='')}"
                            f"/locations/{quote(cfg.location, safe='')}/publishers/")
        from .google_tokens import AccessTokens  # google-auth: the optional `vertex` extra

        info = orjson.loads(cfg.credentials.value) if cfg.credentials is not None else None
        self.tokens = AccessTokens(info, cfg.timeouts.connect + cfg.timeouts.first_byte)

    def family_for(self, model: str) -> str:
        return "anthropic" if model.startswith("claude") else "gemini"

    def request_url(self, route: str, model: str, stream: bool) -> URL:
        if route == MESSAGES:
            method = ":streamRawPredict" if stream else ":rawPredict"
            return URL(f"{self._publishers}anthropic/models/{quote(model, safe='@')}{method}", encoded=True)
        if route == TOKEN_COUNT:
            return URL(f"{self._publishers}anthropic/models/count-tokens:rawPredict", encoded=True)
        if route == EMBEDDINGS:
            raise BadRequest("embeddings are not available from vertex providers yet", code="unsupported_route")
        return URL(f"{self._publishers}google/models/{quote(model, safe='@')}{gemini_method(route, stream)}",
                   encoded=True)

    async def sign(self, method: str, url: URL, headers: CIMultiDict[str], body: bytes) -> CIMultiDict[str]:
        """The project's OAuth token as a bearer token."""
        signed = CIMultiDict(headers)
        signed["Authorization"] = f"Bearer {await self.tokens.token()}"
        return signed

    async def send(self, session: ClientSession, timeout: ClientTimeout, route: str, url: URL,
                   headers: CIMultiDict[str], body: bytes, parsed: dict[str, Any] | None) -> UpstreamResponse:
        if route in _ANTHROPIC_ROUTES and parsed is not None:
            body = orjson.dumps(vertex_anthropic_body(parsed, route))
        resp = await super().send(session, timeout, route, url, headers, body, parsed)
        if resp.status == 401:  # revoked or expired early: the next request fetches a new token
            self.tokens.forget()
        return resp


def vertex_anthropic_body(body: dict[str, Any], route: str) -> dict[str, Any]:
    """A Messages body as Vertex takes it: `anthropic_version` set, the model only in the URL
    (token counts keep it: their URL names no model)."""
    out = {k: v for k, v in body.items() if k != "model"} if route == MESSAGES else dict(body)
    out["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    return out


def _with_base_url(cfg: VertexProviderConfig, base_url: str) -> VertexProviderConfig:
    return attrs.evolve(cfg, base_url=base_url)
