"""Policy slot: guardrails and prompt policies plug in here."""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from gateway.gateway_state import GatewayState

__all__ = ["apply_policies"]


def apply_policies(state: GatewayState) -> Middleware | None:
    """The policy middleware; None while no guardrail can be configured (none is supported yet)."""
    return None
