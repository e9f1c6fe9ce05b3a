"""Observability: usage into accounting, and one access-log line per request with route,
model, status, timing and usage."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.accounting import ACCOUNTING
from gateway.exchange import EXCHANGE, STATE, Exchange

__all__ = ["observe", "set_access_log_writer"]

_write: Callable[[bytes], object] = sys.stdout.buffer.write


def set_access_log_writer(write: Callable[[bytes], object]) -> None:
    """Redirect access-log lines (tests capture them)."""
    global _write
    _write = write


def _record(request: web.Request, ex: Exchange, status: int) -> dict[str, object]:
    usage = ex.usage
    return {
        "ts": round(time.time(), 3),
        "method": request.method,
        "path": request.path[:512],
        "route": ex.route,
        "status": status,
        "model": ex.model[:200],
        "provider": ex.provider.name if ex.provider is not None else None,
        "stream": ex.stream,
        "key": ex.identity or None,
        "upstream_status": ex.upstream_status or None,
        "duration_ms": round((time.perf_counter() - ex.started) * 1000, 3),
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cached_tokens": usage.cached_tokens if usage else None,
        "error": ex.error or None,
    }


def _account(request: web.Request, ex: Exchange) -> None:
    """Hand the exchange's usage to accounting, unless it was recorded as it happened."""
    if ex.usage is not None and not ex.usage_accounted:
        provider = ex.provider.name if ex.provider is not None else ""
        request.app[ACCOUNTING].record(ex.identity, ex.model, provider, ex.usage)
        ex.usage_accounted = True


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    mode = request.app[STATE].config.observability.access_log
    status = 499
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        ex = request.get(EXCHANGE)
        if ex is not None:
            _account(request, ex)
        if ex is not None and mode != "off":
            rec = _record(request, ex, status)
            if mode == "json":
                line = orjson.dumps(rec) + b"\n"
            else:
                line = (" ".join(f"{k}={v}" for k, v in rec.items() if v is not None) + "\n").encode()
            with contextlib.suppress(OSError, ValueError):
                _write(line)
