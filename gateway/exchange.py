"""Typed keys for application state and the per-request record every middleware shares."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import ClientSession, web

from .errors import ANTHROPIC, OPENAI
from .routes import MESSAGES, MODELS, TOKEN_COUNT

if TYPE_CHECKING:
    from .formats.codecs import Codec
    from .gateway_state import GatewayState, ModelMatcher
    from .model_router import ModelRoute
    from .providers import Provider
    from .usage import Usage

__all__ = ["EXCHANGE", "SESSION", "STATE", "Exchange"]

STATE: web.AppKey[GatewayState] = web.AppKey("gateway_state")
SESSION: web.AppKey[ClientSession] = web.AppKey("upstream_session", ClientSession)


@attrs.define(slots=True, eq=False)
class Exchange:
    """What the gateway knows about one request as it moves through the chain."""

    route: str
    client_format: str
    item: str = ""
    started: float = attrs.field(factory=time.perf_counter)
    raw_body: bytes = b""
    body_read: bool = False  # raw_body holds the whole body (else a passthrough body is streamed)
    body: dict[str, Any] | None = None
    body_changed: bool = False
    client_body: dict[str, Any] | None = None  # the body as the client sent it (before translation)
    model: str = ""
    model_route: ModelRoute | None = None
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


EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("exchange", Exchange)


def client_format_for(route: str, headers: Any) -> str:
    """Errors and listings answer in the format the client speaks."""
    if route in (MESSAGES, TOKEN_COUNT):
        return ANTHROPIC
    if route == MODELS and "anthropic-version" in headers:
        return ANTHROPIC
    return OPENAI
