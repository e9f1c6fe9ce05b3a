"""The ordered request chain: observe → detect → render_errors → auth → resolve → limits → policy →
transform, then the final handler (gateway/handler.py).

Each module is one aiohttp middleware with one job; they share state only through
the request's typed `Exchange` record. Every slot is a factory called once per app
with the gateway's state: it binds what it needs at start and returns None when it
has nothing to do under this config, so a request never passes through a no-op.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp.typedefs import Middleware

from gateway.gateway_state import GatewayState

from .auth import authenticate
from .detect import detect_route
from .limits import enforce_limits
from .observe import observe
from .policy import apply_policies
from .render_errors import render_errors
from .resolve import resolve_model
from .transform import transform

__all__ = ["SLOTS", "build_chain"]

SLOTS: tuple[Callable[[GatewayState], Middleware | None], ...] = (
    observe,
    detect_route,
    render_errors,
    authenticate,
    resolve_model,
    enforce_limits,
    apply_policies,
    transform,
)


def build_chain(state: GatewayState) -> tuple[Middleware, ...]:
    """The middlewares this config needs, in chain order."""
    return tuple(m for m in (slot(state) for slot in SLOTS) if m is not None)
