"""The ordered request chain: detect → errors → auth → resolve → limits → policy → transform → relay.

Each module is one aiohttp middleware with one job; they share state only through
the request's typed `Exchange` record. `observe` wraps the whole chain.
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from .auth import authenticate
from .detect import detect_route
from .errors import render_errors
from .limits import enforce_limits
from .observe import observe
from .policy import apply_policies
from .resolve import resolve_model
from .transform import transform

__all__ = ["CHAIN"]

CHAIN: tuple[Middleware, ...] = (
    observe,
    detect_route,
    render_errors,
    authenticate,
    resolve_model,
    enforce_limits,
    apply_policies,
    transform,
)
