"""Build the aiohttp Application (HTTP and WebSocket on one port) from a Config."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator

from aiohttp import web

from middleware import build_chain
from middleware.observe import flush_access_log

from .accounting import ACCOUNTING
from .config import Config
from .exchange import SESSION, STATE
from .gateway_state import build_state
from .handler import dispatch
from .realtime import REALTIME_SESSIONS, close_realtime_sessions
from .realtime_policy import REALTIME_POLICIES
from .realtime_subprotocols import install_log_redaction
from .responses_state import responses_store_context
from .upstream import make_session

__all__ = ["build_app"]


def build_app(config: Config) -> web.Application:
    """The gateway application: typed state, the middleware chain, one catch-all handler."""
    state = build_state(config)
    # Bodies arrive as sent (auto_decompress off): passthrough forwards them unchanged, and
    # gateway/request_body.py decodes the ones the gateway reads.
    app = web.Application(middlewares=build_chain(state), client_max_size=config.server.max_request_bytes,
                          handler_args={"auto_decompress": False})
    app[STATE] = state
    app[ACCOUNTING] = app[STATE].accounting
    app[REALTIME_SESSIONS] = weakref.WeakSet()
    app[REALTIME_POLICIES] = []  # register realtime policies here before the app starts
    install_log_redaction()

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = make_session(config.server)
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(upstream_session)
    app.cleanup_ctx.append(responses_store_context)
    if config.observability.access_log != "off":
        app.cleanup_ctx.append(flush_access_log)
    app.on_shutdown.append(close_realtime_sessions)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
