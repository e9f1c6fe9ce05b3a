"""Typed keys for application state, the per-request record every middleware shares, and the
one rule for which format (OpenAI or Anthropic) a client is answered in."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import ClientSession, web

from .errors import ANTHROPIC, OPENAI

if TYPE_CHECKING:
    from .formats.codecs import Codec
    from .formats.stream import StreamTranslator
    from .gateway_state import GatewayState, ModelMatcher
    from .model_router import ModelRoute, RouteAttempt
    from .providers import Provider
    from .responses_state import ResponsesTurn
    from .routes import RouteSpec
    from .usage import Usage

__all__ = ["EXCHANGE", "SESSION", "STATE", "Exchange", "client_format_for"]

STATE: web.AppKey[GatewayState] = web.AppKey("gateway_state")
SESSION: web.AppKey[ClientSession] = web.AppKey("upstream_session", ClientSession)


@attrs.define(slots=True, eq=False)
class Exchange:
    """What the gateway knows about one request as it moves through the chain."""

    spec: RouteSpec
    client_format: str  # OPENAI or ANTHROPIC: the shape of every error and listing it gets
    item: str = ""
    started: float = attrs.field(factory=time.perf_counter)
    raw_body: bytes = b""
    body_read: bool = False  # raw_body holds the whole (decoded) body; else a passthrough body is streamed
    body: dict[str, Any] | None = None
    body_changed: bool = False
    client_body: dict[str, Any] | None = None  # the body as the client sent it (before translation)
    model: str = ""  # as the client asked
    upstream_model: str = ""  # as the serving provider knows it
    model_route: ModelRoute | None = None  # the current attempt's
    plan: list[RouteAttempt] | None = None  # where the request may go, in order
    attempt: RouteAttempt | None = None  # where it goes now
    attempts: int = 0  # upstream attempts made
    provider: Provider | None = None
    codec: Codec | None = None
    stream: bool = False
    injected_usage: bool = False
    usage: Usage | None = None
    usage_accounted: bool = False  # already recorded (realtime records each response.done)
    upstream_status: int = 0
    identity: str = ""
    model_allowed: ModelMatcher | None = None  # None: the key may use every model
    error: str = ""
    stream_translator: StreamTranslator | None = None  # the relayed stream's, once it began
    responses_turn: ResponsesTurn | None = None  # Responses state the gateway keeps (responses_state.py)
    # Set once the handler has sent its response head: a failure after that cannot become an
    # error response any more (the handler ends its own answer).
    response: web.StreamResponse | None = None


EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("exchange", Exchange)


def client_format_for(spec: RouteSpec, headers: Any) -> str:
    """The format the client speaks: its route's, or for routes any client uses (models,
    passthrough, realtime) ANTHROPIC when it sends an Anthropic header, else OPENAI."""
    fmt = spec.client_format
    if fmt is not None:
        return fmt
    return ANTHROPIC if "anthropic-version" in headers or "x-api-key" in headers else OPENAI
