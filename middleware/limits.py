"""Limits slot: request and token rate limits plug in here."""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from gateway.gateway_state import GatewayState

__all__ = ["enforce_limits"]


def enforce_limits(state: GatewayState) -> Middleware | None:
    """The limits middleware; None while no rate limit can be configured (none is supported yet)."""
    return None
