"""Render every failure as an error in the client's own format, never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import GatewayError, InternalError, error_for_status
from gateway.exchange import EXCHANGE, Exchange
from gateway.gateway_state import GatewayState

__all__ = ["error_response", "render_errors"]

log = logging.getLogger("gateway")


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
    except Exception as exc:
        if ex.response is not None:
            return _cut_short(request, ex, exc)
        err = _as_gateway_error(request, exc)
        ex.error = err.message
        return error_response(err, ex.client_format)


def _as_gateway_error(request: web.Request, exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return error_for_status(exc.status, exc.reason or "request failed")
    # The traceback goes to the gateway's log only; the client gets a plain message.
    log.exception("unhandled error on %s %s", request.method, request.path[:512])
    return InternalError("internal gateway error")


def _cut_short(request: web.Request, ex: Exchange, exc: Exception) -> web.StreamResponse:
    """A failure after the handler sent its response head that the handler did not end its
    answer for (handlers end their own streams with the format's error event): no second
    response can follow the first, so the connection is cut and the client sees a broken answer."""
    assert ex.response is not None
    log.error("%s %s failed after its answer began", request.method, request.path[:512],
              exc_info=not isinstance(exc, GatewayError))
    ex.error = ex.error or (exc.message if isinstance(exc, GatewayError) else "internal gateway error")
    if request.transport is not None:
        request.transport.close()
    return ex.response
