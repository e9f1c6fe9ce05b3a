"""Authentication: API keys looked up by SHA-256 (no string comparison of secrets)."""

from __future__ import annotations

import hashlib

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import Unauthorized
from gateway.exchange import EXCHANGE
from gateway.gateway_state import GatewayState, ModelMatcher
from gateway.realtime_subprotocols import subprotocol_api_key

__all__ = ["authenticate", "client_key"]


def client_key(request: web.Request) -> str:
    """The key a client presented: Bearer token, x-api-key, api-key, or (browsers, WebSocket
    only) an `openai-insecure-api-key.<key>` entry in Sec-WebSocket-Protocol."""
    headers = request.headers
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key", "") or headers.get("api-key", "") or subprotocol_api_key(headers)


def authenticate(state: GatewayState) -> Middleware | None:
    """The API-key check; None when `auth.mode` is "none"."""
    if state.config.auth.mode == "none":
        return None
    api_keys = state.api_keys
    sha256 = hashlib.sha256
    # Keys already proven valid, so a known key is not hashed again. Only valid keys get in,
    # so the table stays as small as the configured key list.
    known: dict[str, tuple[str, ModelMatcher | None]] = {}

    @web.middleware
    async def check_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = client_key(request)
        found = known.get(key)
        if found is None and key:
            found = api_keys.get(sha256(key.encode()).hexdigest())
            if found is not None:
                known[key] = found
        if found is None:
            raise Unauthorized("missing or invalid API key", error_type="authentication_error")
        ex = request[EXCHANGE]
        ex.identity, ex.model_allowed = found
        return await handler(request)

    return check_api_key
