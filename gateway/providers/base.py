"""What every provider offers the request path: URLs, auth headers, its API family, and for
in-process providers their answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from aiohttp import ClientSession, ClientTimeout, WSMsgType
from multidict import CIMultiDict
from yarl import URL

from ..config import ProviderConfig
from ..errors import BadRequest
from ..upstream import open_upstream

__all__ = ["CLIENT_CREDENTIAL_HEADERS", "HOP_BY_HOP", "Provider", "RealtimeSocket", "UpstreamBody", "UpstreamResponse"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
CLIENT_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"})


class UpstreamBody(Protocol):
    """What the relay reads a provider's answer body through (aiohttp's StreamReader fits)."""

    async def readany(self) -> bytes: ...
    async def read(self, n: int = -1) -> bytes: ...


class UpstreamResponse(Protocol):
    """What the relay needs from a provider's answer (aiohttp's ClientResponse fits; the mock's
    in-process answers implement the same, so they are relayed the same way, errors included)."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> UpstreamBody: ...
    async def read(self) -> bytes: ...
    def close(self) -> None: ...


class RealtimeSocket(Protocol):
    """What the realtime relay needs from the provider side (aiohttp's client WebSocket fits)."""

    async def receive(self) -> Any: ...
    async def send_frame(self, message: bytes, opcode: WSMsgType) -> None: ...
    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class Provider:
    """Base class; subclasses set `family`, `default_base_url` and endpoint paths."""

    family: ClassVar[str] = "openai"  # API family spoken natively: "openai", "anthropic" or "gemini"
    default_base_url: ClassVar[str] = ""
    endpoints: ClassVar[dict[str, str]] = {}  # route type -> path below base_url
    in_process: ClassVar[bool] = False
    # Serves the Responses API itself (/v1/responses and its state); else the gateway
    # translates Responses through Chat Completions and keeps the state (codecs.select_codec).
    native_responses: bool = False

    def __init__(self, cfg: ProviderConfig) -> None:
        # Whether this kind signs its requests (overrides `sign`); else the headers go as they are.
        self.signs = type(self).sign is not Provider.sign
        self.name = cfg.name
        self.timeouts = cfg.timeouts
        self.base_url = URL((cfg.base_url or self.default_base_url).rstrip("/"))
        self._base_path = self.base_url.path.rstrip("/")
        self.urls = {route: self.base_url.with_path(self._base_path + p) for route, p in self.endpoints.items()}
        self.api_key = cfg.api_key.value if cfg.api_key is not None else ""
        self.base_headers = CIMultiDict(self.auth_headers())
        self.base_headers.update(cfg.headers)
        self.json_headers = CIMultiDict(self.base_headers)
        self.json_headers["Content-Type"] = "application/json"

    def auth_headers(self) -> dict[str, str]:
        """Headers carrying the provider's credentials."""
        return {}

    def request_headers(self, client_headers: Mapping[str, str] | None = None) -> CIMultiDict[str]:
        """Headers for a JSON request on a native route (client headers are not forwarded)."""
        return self.json_headers

    def family_for(self, model: str) -> str:
        """The API family that serves upstream `model` (providers hosting several families,
        as Vertex AI does Gemini and Claude, override this)."""
        return self.family

    def request_url(self, route: str, model: str, stream: bool) -> URL:
        """Where a JSON request on `route` for upstream `model` goes (providers that carry the
        model or the stream choice in the URL override this)."""
        return self.urls[route]

    async def sign(self, method: str, url: URL, headers: CIMultiDict[str], body: bytes) -> CIMultiDict[str]:
        """The headers to send with `body` to `url`, signed over its final bytes (static keys
        are in the headers already; SigV4 or OAuth providers add theirs here)."""
        return headers

    async def send(self, session: ClientSession, timeout: ClientTimeout, route: str, url: URL,
                   headers: CIMultiDict[str], body: bytes, parsed: dict[str, Any] | None) -> UpstreamResponse:
        """Send one JSON request and return the answer once its head is in. `parsed` is `body`
        as JSON when the gateway has it (in-process providers answer from it)."""
        if self.signs:
            headers = await self.sign("POST", url, headers, body)
        return await open_upstream(session, self, timeout, "POST", url, headers, body)

    def passthrough_url(self, raw_path: str, raw_query: str) -> URL:
        """Map a client path onto the base URL, with the query exactly as the client sent it
        (still percent-encoded); refuse anything that could leave the base URL."""
        rel = self.passthrough_relative_path(raw_path)
        url = self.base_url.with_path(self._base_path + rel, encoded=True)
        if raw_query:
            url = URL.build(scheme=url.scheme, authority=url.raw_authority, path=url.raw_path,
                            query_string=raw_query, encoded=True)
        if url.host != self.base_url.host or url.port != self.base_url.port:
            raise BadRequest("passthrough path leaves the provider")
        if not (url.raw_path == self._base_path or url.raw_path.startswith(self._base_path + "/")):
            raise BadRequest("passthrough path leaves the provider")
        return url

    def passthrough_relative_path(self, raw_path: str) -> str:
        """The part of the client path appended to the base URL (default: whole path)."""
        return raw_path

    def realtime_headers(self, client_headers: Mapping[str, str]) -> CIMultiDict[str]:
        """Headers for the upstream Realtime handshake: the provider's credentials, none of the client's."""
        return CIMultiDict(self.base_headers)

    def realtime_url(self, model: str, query: Mapping[str, str]) -> URL | None:
        """The provider's Realtime WebSocket URL for `model`; None when it offers none."""
        return None

    def realtime_socket(self, model: str) -> RealtimeSocket | None:
        """An in-process Realtime session for `model` (in-process providers only)."""
        return None
