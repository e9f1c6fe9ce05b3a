"""The JSON routes' exchange with the provider: send the (translated) body, relay the answer
in the client's format, a stream incrementally.

Every failure before the response head goes out is raised (and rendered as an error in the
client's format by middleware/render_errors.py); once a stream has begun, every failure ends
it with the format's own error event and a clean close instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp
import orjson
from aiohttp import web

from .errors import GatewayError, UpstreamError, UpstreamTimeout
from .exchange import SESSION, STATE, Exchange
from .formats.codecs import Codec, sanitize_error_body
from .formats.stream_pipe import StreamPipe
from .passthrough import request_id_headers
from .providers.base import Provider, UpstreamBody, UpstreamResponse
from .sse import SSEError

__all__ = ["is_event_stream", "relay_exchange"]

log = logging.getLogger("gateway")

MAX_ERROR_BODY = 1024 * 1024
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Reading the provider's answer failed. (A failed write to the client raises ConnectionError.)
UPSTREAM_BROKE = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)


def is_event_stream(headers: Mapping[str, str]) -> bool:
    """Whether the Content-Type names an event stream (media types are case-insensitive)."""
    ctype = headers.get("Content-Type", "")
    return ctype == "text/event-stream" or ctype.partition(";")[0].strip().lower() == "text/event-stream"


async def relay_exchange(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """Answer a JSON route: locally when its codec can (token estimates), else from the provider."""
    codec, provider, body = ex.codec, ex.provider, ex.body
    assert codec is not None and provider is not None and body is not None
    if codec.local is not None:
        return web.Response(body=codec.local(body), content_type="application/json")
    resp: UpstreamResponse = await provider.send(
        request.app[SESSION],
        request.app[STATE].client_timeouts[provider.name],
        codec.upstream_route,
        provider.request_url(codec.upstream_route, ex.upstream_model, ex.stream),
        provider.request_headers(request.headers),
        orjson.dumps(body) if ex.body_changed else ex.raw_body,
        body,
    )
    try:
        ex.upstream_status = resp.status
        if resp.status >= 300:
            return await _error(resp, ex, codec, provider)
        if ex.stream and is_event_stream(resp.headers):
            return await _stream(request, ex, codec, resp, provider)
        out, ex.usage = codec.response(await _read_body(resp, provider), ex.client_body or body)
        return web.Response(body=out, status=resp.status, content_type="application/json",
                            headers=request_id_headers(resp.headers))
    finally:
        resp.close()


async def _read_body(resp: UpstreamResponse, provider: Provider) -> bytes:
    """The whole body; the idle timeout is armed by open_upstream."""
    try:
        return bytes(await resp.read())
    except TimeoutError:
        raise UpstreamTimeout(f'provider "{provider.name}" stalled while sending its answer') from None
    except UPSTREAM_BROKE:
        raise UpstreamError(f'provider "{provider.name}" broke off its answer') from None


async def _read_at_most(content: UpstreamBody, limit: int, provider: Provider) -> bytes:
    """The body's first `limit` bytes (a read returns what has arrived, so read until then)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit and (chunk := await content.read(limit - size)):
            chunks.append(chunk)
            size += len(chunk)
    except TimeoutError:
        raise UpstreamTimeout(f'provider "{provider.name}" stalled while sending its answer') from None
    except UPSTREAM_BROKE:
        raise UpstreamError(f'provider "{provider.name}" broke off its answer') from None
    return b"".join(chunks)


async def _error(resp: UpstreamResponse, ex: Exchange, codec: Codec, provider: Provider) -> web.Response:
    """The provider's error with its status, in the client's format, the key redacted."""
    raw = sanitize_error_body(await _read_at_most(resp.content, MAX_ERROR_BODY, provider), provider.api_key)
    status, body = codec.error(resp.status, raw)
    headers = {k: v for k, v in resp.headers.items() if k.lower() in ("retry-after", "retry-after-ms")}
    ex.error = f"upstream HTTP {resp.status}"
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def _stream(
    request: web.Request, ex: Exchange, codec: Codec, resp: UpstreamResponse, provider: Provider
) -> web.StreamResponse:
    """Relay the provider's events as they arrive, then the closing frames: the stream's own
    end, or one error event in the client's format whatever failed."""
    pipe = StreamPipe(codec.stream(ex.model, ex.client_body or {}, ex.injected_usage))
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    ex.response = response
    readany = resp.content.readany
    try:
        try:
            # Reads wait at most the idle time (aiohttp's read timer, armed by open_upstream).
            while chunk := await readany():
                out = pipe.feed(chunk)
                if out:
                    await response.write(out)
                if pipe.over:
                    break
            tail = pipe.finish()
        except ConnectionError:
            raise  # the client is gone: nothing more can reach it
        except TimeoutError:
            tail = pipe.fail(f'provider "{provider.name}" sent nothing for {provider.timeouts.idle:g}s', 504)
        except UPSTREAM_BROKE:
            tail = pipe.fail(f'provider "{provider.name}" broke off the stream', 502)
        except SSEError as exc:
            tail = pipe.fail(f'provider "{provider.name}" sent an invalid stream: {exc}', 502)
        except GatewayError as err:  # e.g. MalformedUpstream from a translator
            ex.error = err.message
            tail = pipe.fail(err.message, err.status)
        except Exception:
            log.exception("stream relay failed on %s %s", request.method, request.path[:512])
            ex.error = "internal gateway error"
            tail = pipe.fail("internal gateway error", 500)
        if tail:
            await response.write(tail)
        await response.write_eof()
    except ConnectionError:
        ex.error = "client disconnected"
    finally:
        ex.usage = pipe.translator.usage
        if pipe.translator.failed:
            ex.error = ex.error or "stream failed"
    return response
