"""The JSON routes' exchange with the provider: send the (translated) body, relay the answer
in the client's format, a stream incrementally.

Every failure before the response head goes out is raised (and rendered as an error in the
client's format by middleware/render_errors.py); once a stream has begun, every failure ends
it with the format's own error event and a clean close instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
import orjson
from aiohttp import web

from .attempt import shape_attempt
from .errors import BadRequest, GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from .exchange import SESSION, STATE, Exchange
from .formats.codecs import Codec, sanitize_error_body
from .formats.stream_pipe import StreamPipe
from .model_router import RouteAttempt
from .passthrough import request_id_headers
from .providers.base import Provider, UpstreamBody, UpstreamResponse
from .retry import RETRYABLE_STATUSES, RetryPolicy, retry_after_seconds
from .sse import SSEError

__all__ = ["is_event_stream", "relay_exchange"]

log = logging.getLogger("gateway")

MAX_ERROR_BODY = 1024 * 1024
FIRST_EVENT_LIMIT = 64 * 1024  # bytes read while waiting for a stream's first complete event
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Reading the provider's answer failed. (A failed write to the client raises ConnectionError.)
UPSTREAM_BROKE = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)


def is_event_stream(headers: Mapping[str, str]) -> bool:
    """Whether the Content-Type names an event stream (media types are case-insensitive)."""
    ctype = headers.get("Content-Type", "")
    return ctype == "text/event-stream" or ctype.partition(";")[0].strip().lower() == "text/event-stream"


class _Retryable(Exception):
    """One attempt failed before anything reached the client, in a way another attempt may fix.
    It carries what the client gets if no attempt is left: an error response, or an error."""

    def __init__(self, response: web.StreamResponse | None = None, error: GatewayError | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__()
        self.response = response
        self.error = error
        self.retry_after = retry_after

    def give_up(self) -> web.StreamResponse:
        if self.response is not None:
            return self.response
        assert self.error is not None
        raise self.error


_NO_RETRY_SECTION = RetryPolicy()  # without [retry]: each target once, these waits in between


async def relay_exchange(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """Answer a JSON route: locally when its codec can (token estimates), else from the targets of
    its plan, one attempt after another until one answers or none is left (retries only before
    anything reached the client)."""
    codec, body = ex.codec, ex.body
    assert codec is not None and body is not None
    if codec.local is not None:
        return web.Response(body=codec.local(body), content_type="application/json")
    state = request.app[STATE]
    plan, policy = ex.plan, state.retry
    assert plan is not None
    if policy is None and len(plan) == 1:  # one attempt: nothing to retry, no health to keep
        ex.attempts = 1
        try:
            return await _attempt(request, ex, True)
        except _Retryable as failure:
            return failure.give_up()
    health = state.health
    budget = len(plan) if policy is None else policy.attempts
    policy = policy or _NO_RETRY_SECTION
    index, retries = 0, 0
    benched: set[int] = set()  # targets this request gave up on (a Retry-After too long to wait)
    while True:
        attempt = ex.attempt
        assert attempt is not None
        ex.attempts += 1
        final = ex.attempts >= budget
        if len(plan) > 1:
            health.claim_probe(attempt.key)
        try:
            response = await _attempt(request, ex, final)
        except _Retryable as failure:
            too_long = failure.retry_after is not None and failure.retry_after > policy.max_retry_after
            health.failed(attempt.key, eject_now=too_long)
            if too_long:
                benched.add(index)
            following = None if final else _next_target(plan, index, benched, failure.retry_after, policy)
            if following is None:
                return failure.give_up()
            # The same target again waits (its Retry-After, else the backoff); another target doesn't.
            wait = policy.wait_for(retries, failure.retry_after)[0] if following == index else 0.0
            retries += 1
            if wait > 0:
                await asyncio.sleep(wait)
            index = following
            ex.error = ""
            shape_attempt(ex, plan[index], state.providers, state.config.server.default_max_tokens)
            continue
        if ex.upstream_status < 300:
            health.succeeded(attempt.key)
        return response


def _next_target(plan: list[RouteAttempt], index: int, benched: set[int], retry_after: float | None,
                 policy: RetryPolicy) -> int | None:
    """The plan index of the next attempt: the same target when it asked for a wait short enough,
    else the next target not given up on (round the plan again), None when none is left."""
    if retry_after is not None and retry_after <= policy.max_retry_after:
        return index
    for step in range(1, len(plan) + 1):
        candidate = (index + step) % len(plan)
        if candidate not in benched:
            return candidate
    return None


def _served_by(ex: Exchange) -> dict[str, str]:
    """Who answered: the x-gateway-model and x-gateway-provider headers."""
    provider = ex.provider
    return {"x-gateway-model": ex.upstream_model, "x-gateway-provider": provider.name if provider else ""}


async def _attempt(request: web.Request, ex: Exchange, final: bool) -> web.StreamResponse:
    """One upstream exchange for the current target; _Retryable when it failed in a way worth
    another attempt (before anything reached the client)."""
    codec, provider, body = ex.codec, ex.provider, ex.body
    assert codec is not None and provider is not None and body is not None
    try:
        data = orjson.dumps(body) if ex.body_changed else ex.raw_body
    except orjson.JSONEncodeError:  # orjson reads 1024 levels of nesting but writes 254
        raise BadRequest("the request body is nested too deeply to be sent on") from None
    try:
        resp: UpstreamResponse = await provider.send(
            request.app[SESSION],
            request.app[STATE].client_timeouts[provider.name],
            codec.upstream_route,
            provider.request_url(codec.upstream_route, ex.upstream_model, ex.stream),
            provider.request_headers(request.headers),
            data,
            body,
        )
    except (UpstreamTimeout, UpstreamUnreachable) as err:
        err.headers.update(_served_by(ex))
        raise _Retryable(error=err) from None
    try:
        ex.upstream_status = status = resp.status
        if status >= 300:
            response = await _error(resp, ex, codec, provider)
            if status in RETRYABLE_STATUSES:
                raise _Retryable(response, retry_after=retry_after_seconds(resp.headers))
            return response
        if ex.stream and is_event_stream(resp.headers):
            return await _stream(request, ex, codec, resp, provider, final)
        try:
            raw = await _read_body(resp, provider)
        except (UpstreamTimeout, UpstreamError) as err:
            err.headers.update(_served_by(ex))
            raise _Retryable(error=err) from None
        out, ex.usage = codec.response(raw, ex.client_body or body)
        headers = request_id_headers(resp.headers)
        headers["x-gateway-model"] = ex.upstream_model
        headers["x-gateway-provider"] = provider.name
        return web.Response(body=out, status=status, content_type="application/json", headers=headers)
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
    headers.update(_served_by(ex))
    ex.error = f"upstream HTTP {resp.status}"
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def _first_event(resp: UpstreamResponse, provider: Provider, final: bool) -> bytes:
    """The stream's first bytes, read until its first event is complete, before anything is sent
    to the client: a stream that fails or starts with an error event is retryable until then."""
    readany = resp.content.readany
    first = b""
    try:
        while len(first) < FIRST_EVENT_LIMIT and b"\n\n" not in first and b"\r\n\r\n" not in first:
            chunk = await readany()
            if not chunk:
                break
            first += chunk
    except TimeoutError:
        idle = provider.timeouts.idle
        error: GatewayError = UpstreamTimeout(f'provider "{provider.name}" sent nothing for {idle:g}s')
    except UPSTREAM_BROKE:
        error = UpstreamError(f'provider "{provider.name}" broke off the stream')
    else:
        if final or (first and not _is_error_event(first)):
            return first
        error = UpstreamError(f'provider "{provider.name}" ' + ("failed at the start of the stream" if first
                                                               else "ended the stream before its first event"))
    if final:
        raise error
    raise _Retryable(error=error)


def _is_error_event(first: bytes) -> bool:
    """Whether a stream's first event is an error (`event: error`, or an error object as data)."""
    end = first.find(b"\n\n")
    head = first[:end] if end >= 0 else first
    return (b"event: error" in head or b'data: {"error"' in head or b'"type":"error"' in head
            or b'"type": "error"' in head)


async def _stream(
    request: web.Request, ex: Exchange, codec: Codec, resp: UpstreamResponse, provider: Provider, final: bool
) -> web.StreamResponse:
    """Relay the provider's events as they arrive, then the closing frames: the stream's own
    end, or one error event in the client's format whatever failed. Nothing is sent before
    the first event arrived well, so until then another attempt can still serve the client."""
    first = await _first_event(resp, provider, final)
    pipe = StreamPipe(codec.stream(ex.model, ex.client_body or {}, ex.injected_usage))
    ex.stream_translator = pipe.translator
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    response.headers.update(_served_by(ex))
    await response.prepare(request)
    ex.response = response
    readany = resp.content.readany
    try:
        try:
            if first:
                out = pipe.feed(first)
                if out:
                    await response.write(out)
            # Reads wait at most the idle time (aiohttp's read timer, armed by open_upstream).
            while not pipe.over and (chunk := await readany()):
                out = pipe.feed(chunk)
                if out:
                    await response.write(out)
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
