"""The final handler: send the request upstream and relay the answer, streaming incrementally."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from gateway.errors import GatewayError, NotFound, PayloadTooLarge
from gateway.exchange import EXCHANGE, SESSION, STATE, Exchange
from gateway.formats.codecs import Codec, sanitize_error_body
from gateway.formats.stream_pipe import StreamPipe
from gateway.listing import list_models
from gateway.passthrough import (
    PassthroughBody,
    check_passthrough_path,
    passthrough_headers,
    request_id_headers,
    response_headers,
)
from gateway.providers import Provider
from gateway.realtime import relay_realtime
from gateway.routes import MODELS, PASSTHROUGH, REALTIME
from gateway.sse import SSEError
from gateway.upstream import open_upstream

__all__ = ["dispatch"]

MAX_ERROR_BODY = 1024 * 1024
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_CLIENT_GONE = (ConnectionResetError, ConnectionError)
_UPSTREAM_BROKE = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError)


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Answer locally (models, token estimates) or relay to the chosen provider."""
    ex = request[EXCHANGE]
    state = request.app[STATE]
    if ex.route == MODELS:
        return list_models(state, ex, request)
    provider = ex.provider
    assert provider is not None
    if ex.route == PASSTHROUGH:
        return await _passthrough(request, ex, provider)
    if ex.route == REALTIME:
        return await relay_realtime(request, ex, provider)
    codec = ex.codec
    assert codec is not None and ex.body is not None
    if codec.local is not None:
        return web.Response(body=codec.local(ex.body), content_type="application/json")
    if provider.in_process:
        resp: Any = await provider.respond(codec.upstream_route, ex.body)  # type: ignore[attr-defined]
    else:
        data = orjson.dumps(ex.body) if ex.body_changed else ex.raw_body
        resp = await open_upstream(
            request.app[SESSION],
            provider,
            state.client_timeouts[provider.name],
            "POST",
            provider.urls[codec.upstream_route],
            provider.request_headers(request.headers),
            data,
        )
    try:
        ex.upstream_status = resp.status
        if resp.status >= 300:
            return await _error(resp, ex, codec, provider)
        if ex.stream and resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            return await _stream(request, ex, codec, resp, provider)
        body = await _read_body(resp, provider)
        out, ex.usage = codec.response(body)
        return web.Response(body=out, status=resp.status, content_type="application/json",
                            headers=request_id_headers(resp.headers))
    finally:
        resp.close()


async def _read_body(resp: Any, provider: Provider, limit: int | None = None) -> bytes:
    """The whole body (or its first `limit` bytes); the idle timeout is armed by open_upstream."""
    try:
        if limit is None:
            return bytes(await resp.read())
        return bytes(await resp.content.read(limit))
    except TimeoutError:
        raise GatewayError(f'provider "{provider.name}" stalled while sending its answer', status=504,
                           code="upstream_timeout") from None
    except _UPSTREAM_BROKE:
        raise GatewayError(f'provider "{provider.name}" broke off its answer', status=502,
                           code="upstream_error") from None


async def _error(resp: Any, ex: Exchange, codec: Codec, provider: Provider) -> web.Response:
    raw = sanitize_error_body(await _read_body(resp, provider, MAX_ERROR_BODY), provider.api_key)
    status, body = codec.error(resp.status, raw)
    headers = {k: v for k, v in resp.headers.items() if k.lower() in ("retry-after", "retry-after-ms")}
    ex.error = f"upstream HTTP {resp.status}"
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def _stream(
    request: web.Request, ex: Exchange, codec: Codec, resp: Any, provider: Provider
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    pipe = StreamPipe(codec.stream(ex.model, ex.client_body or {}, ex.injected_usage))
    readany = resp.content.readany
    idle = provider.timeouts.idle
    tail = b""
    try:
        try:
            # Reads wait at most `idle` (aiohttp's read timer, armed by open_upstream).
            while chunk := await readany():
                out = pipe.feed(chunk)
                if out:
                    await response.write(out)
                if pipe.over:
                    break
            tail = pipe.finish()
        except TimeoutError:
            tail = pipe.fail(f'provider "{provider.name}" sent nothing for {idle:g}s', 504)
        except _UPSTREAM_BROKE:
            tail = pipe.fail(f'provider "{provider.name}" broke off the stream', 502)
        except SSEError as exc:
            tail = pipe.fail(f'provider "{provider.name}" sent an invalid stream: {exc}', 502)
        if tail:
            await response.write(tail)
        await response.write_eof()
    except _CLIENT_GONE:
        ex.error = "client disconnected"
    finally:
        ex.usage = pipe.translator.usage
        if pipe.translator.failed:
            ex.error = ex.error or "stream failed"
    return response


async def _passthrough(request: web.Request, ex: Exchange, provider: Provider) -> web.StreamResponse:
    """Relay method, path, query and body unchanged, streaming both ways."""
    if provider.in_process:
        raise NotFound(f"no route for {request.method} {request.path[:200]}", code="unknown_route")
    path = check_passthrough_path(request.raw_path)
    url = provider.passthrough_url(path, request.query_string)
    streamed: PassthroughBody | None = None
    data: Any = None
    if ex.body_read:
        data = ex.raw_body
    elif request.body_exists:
        limit = request.app[STATE].config.server.max_passthrough_bytes
        streamed = PassthroughBody(request.content, request.content_length, limit)
        data = streamed.chunks()
    headers: CIMultiDict[str] = passthrough_headers(
        request.headers, provider, request.content_length if streamed is not None else None)
    try:
        resp = await open_upstream(
            request.app[SESSION], provider, request.app[STATE].client_timeouts[provider.name],
            request.method, url, headers, data,
            on_deadline=streamed.push_back if streamed is not None else None,
        )
    except GatewayError:
        if streamed is not None and streamed.exceeded:
            raise PayloadTooLarge(
                f"request body is larger than server.max_passthrough_bytes ({streamed.limit})") from None
        raise
    try:
        ex.upstream_status = resp.status
        response = web.StreamResponse(status=resp.status, headers=response_headers(resp.headers))
        await response.prepare(request)
        try:
            async for chunk in resp.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except _UPSTREAM_BROKE:
            # Cut the connection without the body's proper end, so the client sees a
            # broken answer instead of a complete-looking short one.
            ex.error = "upstream broke off"
            if request.transport is not None:
                request.transport.close()
        except _CLIENT_GONE:
            ex.error = "client disconnected"
        return response
    finally:
        resp.close()
