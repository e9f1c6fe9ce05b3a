"""Observability: usage into accounting, and one access-log line per request with route,
model, status, timing and usage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.exchange import EXCHANGE, Exchange
from gateway.gateway_state import GatewayState
from gateway.line_sink import LineSink

__all__ = ["flush_access_log", "observe", "set_access_log_writer"]

FLUSH_INTERVAL = 1.0  # seconds an access-log line may wait before it is written

_STDOUT = LineSink(1)
_write: Callable[[bytes], object] = _STDOUT.write
_flush: Callable[[], object] = _STDOUT.flush


def set_access_log_writer(write: Callable[[bytes], object], flush: Callable[[], object] = lambda: None) -> None:
    """Redirect access-log lines (tests capture them)."""
    global _write, _flush
    _write, _flush = write, flush


def _flush_quietly() -> None:
    with contextlib.suppress(OSError, ValueError):
        _flush()


async def flush_access_log(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: lines are batched, and written every FLUSH_INTERVAL and at shutdown."""

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            _flush_quietly()

    task = asyncio.create_task(flush_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    _flush_quietly()


def _record(request: web.Request, ex: Exchange, status: int) -> dict[str, object]:
    usage = ex.usage
    return {
        "ts": round(time.time(), 3),
        "method": request.method,
        "path": request.path[:512],
        "route": ex.spec.route,
        "status": status,
        "model": ex.model[:200],
        "provider": ex.provider.name if ex.provider is not None else None,
        "served_model": ex.upstream_model[:200] or None,
        "attempts": ex.attempts if ex.attempts > 1 else None,
        "stream": ex.stream,
        "key": ex.identity or None,
        "upstream_status": ex.upstream_status or None,
        "duration_ms": round((time.perf_counter() - ex.started) * 1000, 3),
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cached_tokens": usage.cached_tokens if usage else None,
        "error": ex.error or None,
    }


def _json_line(rec: dict[str, object]) -> bytes:
    return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)


def _text_line(rec: dict[str, object]) -> bytes:
    return (" ".join(f"{k}={v}" for k, v in rec.items() if v is not None) + "\n").encode()


def observe(state: GatewayState) -> Middleware:
    """Outermost slot: records usage and writes the access-log line once the exchange ends."""
    mode = state.config.observability.access_log
    render = None if mode == "off" else _json_line if mode == "json" else _text_line
    record_usage = state.accounting.record

    @web.middleware
    async def observe_exchange(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 499
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            ex = request.get(EXCHANGE)
            if ex is not None:
                if ex.usage is not None and not ex.usage_accounted:
                    provider = ex.provider.name if ex.provider is not None else ""
                    record_usage(ex.identity, ex.model, provider, ex.usage)
                    ex.usage_accounted = True
                if render is not None:
                    with contextlib.suppress(OSError, ValueError):
                        _write(render(_record(request, ex, status)))

    return observe_exchange
