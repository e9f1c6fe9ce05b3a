"""Render every failure as an error in the client's own format, never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import GatewayError
from gateway.exchange import EXCHANGE
from gateway.gateway_state import GatewayState

__all__ = ["error_response", "render_errors"]

log = logging.getLogger("gateway")

_HTTP_MESSAGES = {
    405: "method not allowed",
    413: "request body is larger than server.max_request_bytes",
}


def error_response(err: GatewayError, fmt: str) -> web.Response:
    """A JSON error response in `fmt` with the error's status and headers."""
    return web.Response(
        status=err.status, body=err.render(fmt), content_type="application/json", headers=err.headers
    )


def render_errors(state: GatewayState) -> Middleware:
    """Every failure below this slot becomes an error response in the client's format."""
    return _render_errors


@web.middleware
async def _render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    ex = request[EXCHANGE]
    try:
        return await handler(request)
    except GatewayError as err:
        ex.error = err.message
        return error_response(err, ex.client_format)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason or "request failed")
        ex.error = message
        return error_response(GatewayError(message, status=exc.status), ex.client_format)
    except Exception:
        # The traceback goes to the gateway's log only; the client gets a plain message.
        log.exception("unhandled error on %s %s", request.method, request.path)
        ex.error = "internal gateway error"
        return error_response(GatewayError("internal gateway error", status=500), ex.client_format)
