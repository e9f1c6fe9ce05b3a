"""Passthrough: any other request relayed to the model's provider, streamed both ways, safely
(which paths may be forwarded, which headers cross the gateway, bodies never buffered whole).

Method, path below the provider's base URL, query (byte for byte, as the client encoded it)
and body (as sent, Content-Encoding included) go upstream unchanged; a JSON body read to find
the model goes decoded. Once the answer has begun, a failure cuts the connection, so the
client sees a broken answer rather than a complete-looking short one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import StreamReader, web
from multidict import CIMultiDict

from .attempt import shape_attempt
from .errors import BadRequest, GatewayError, NotFound, PayloadTooLarge, UpstreamTimeout, UpstreamUnreachable
from .exchange import SESSION, STATE, Exchange
from .providers.base import CLIENT_CREDENTIAL_HEADERS, HOP_BY_HOP, Provider
from .retry import RETRYABLE_STATUSES
from .upstream import open_upstream

__all__ = [
    "PassthroughBody",
    "check_passthrough_path",
    "passthrough_headers",
    "relay_passthrough",
    "request_id_headers",
    "response_headers",
]

log = logging.getLogger("gateway")

# %25 too: an upstream that decodes twice would turn %252e%252e into "..".
_FORBIDDEN_IN_PATH = ("%2f", "%5c", "%2e", "%25", "%00", "\\", "@", "%40", "//", "#")
_DROP_FROM_RESPONSE = HOP_BY_HOP | {"content-encoding", "set-cookie", "server", "date"}
# Meaningless without the upgrade (which is hop-by-hop), and the browser form of
# Sec-WebSocket-Protocol carries the client's key; Expect is answered by the gateway.
_DROP_FROM_REQUEST = HOP_BY_HOP | CLIENT_CREDENTIAL_HEADERS | {"expect"}
_DROP_PREFIXES = ("x-forwarded", "sec-websocket-")
_REQUEST_ID_HEADERS = ("x-request-id", "request-id")


def check_passthrough_path(path: str) -> str:
    """The path of an origin-form target (still percent-encoded), refusing anything that could
    escape the base URL."""
    if not path.startswith("/"):
        raise BadRequest("only origin-form request targets are accepted")
    lowered = path.lower()
    if any(bad in lowered for bad in _FORBIDDEN_IN_PATH):
        raise BadRequest("the request path contains characters that are not allowed")
    # "..;x" is ".." to servers that strip matrix parameters (Envoy CVE-2021-29492 class).
    segments = path.split("/")
    if any(seg.partition(";")[0] in (".", "..") for seg in segments):
        raise BadRequest("the request path contains dot segments")
    return path


def _connection_tokens(headers: Mapping[str, str]) -> set[str]:
    """Header names listed in `Connection` (hop-by-hop by declaration, RFC 9110 7.6.1)."""
    getall = getattr(headers, "getall", None)
    values = getall("Connection", ()) if getall else [headers.get("Connection", "")]
    return {t.strip().lower() for v in values for t in v.split(",") if t.strip()}


def passthrough_headers(
    client: Mapping[str, str], provider: Provider, content_length: int | None = None, decoded: bool = False
) -> CIMultiDict[str]:
    """Client headers minus hop-by-hop and credentials, plus the provider's own credentials.

    `content_length` is kept for a streamed body, so the upstream sees a length-delimited
    request rather than a chunked one. A `decoded` body (read by the gateway) loses its
    Content-Encoding.
    """
    named = _connection_tokens(client)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in client.items():
        lower = name.lower()
        if lower in _DROP_FROM_REQUEST or lower in named or lower.startswith(_DROP_PREFIXES):
            continue
        if decoded and lower == "content-encoding":
            continue
        out.add(name, value)
    for name, value in provider.base_headers.items():
        out[name] = value
    if content_length is not None:
        out["Content-Length"] = str(content_length)
    return out


def response_headers(upstream: Mapping[str, str]) -> CIMultiDict[str]:
    """Upstream response headers safe to hand to the client."""
    named = _connection_tokens(upstream)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        lower = name.lower()
        if lower not in _DROP_FROM_RESPONSE and lower not in named:
            out.add(name, value)
    return out


class PassthroughBody:
    """A client body streamed to the upstream chunk by chunk, never buffered whole.

    A declared Content-Length above `limit` is refused before anything is sent; a chunked
    body is counted as it flows and cut off at `limit` (`exceeded` then tells the relay
    to answer 413). `limit` 0 means no cap. While it flows, the provider's first-byte
    deadline restarts with every chunk, so a slow upload is not mistaken for a slow provider.
    """

    def __init__(self, content: StreamReader, content_length: int | None, limit: int) -> None:
        if limit and content_length is not None and content_length > limit:
            raise PayloadTooLarge(f"request body is larger than server.max_passthrough_bytes ({limit})")
        self._content = content
        self.limit = limit
        self.sent = 0
        self.exceeded = False
        self._deadline: asyncio.Timeout | None = None
        self._deadline_seconds = 0.0

    def push_back(self, deadline: asyncio.Timeout, seconds: float) -> None:
        """Restart `deadline` (the provider's first-byte time) with every chunk sent."""
        self._deadline, self._deadline_seconds = deadline, seconds

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        async for chunk in self._content.iter_any():
            self.sent += len(chunk)
            if self.limit and self.sent > self.limit:
                self.exceeded = True
                raise PayloadTooLarge(f"request body is larger than server.max_passthrough_bytes ({self.limit})")
            if self._deadline is not None:
                self._deadline.reschedule(loop.time() + self._deadline_seconds)
            yield chunk


def request_id_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """Only the upstream request id, for support tickets."""
    return {h: upstream[h] for h in _REQUEST_ID_HEADERS if h in upstream}


async def relay_passthrough(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """Relay method, path, query and body unchanged, streaming both ways. GET and HEAD, which
    carry no body to replay, are retried and fail over like JSON routes (before the first byte)."""
    state = request.app[STATE]
    plan = ex.plan
    retrying = (request.method in _REPLAYABLE and plan is not None and not request.body_exists
                and (len(plan) > 1 or state.retry is not None))
    if not retrying:
        return await _relay_once(request, ex)
    assert plan is not None
    budget = len(plan) if state.retry is None else state.retry.attempts
    index = 0
    while True:
        ex.attempts += 1
        attempt = ex.attempt
        assert attempt is not None
        final = ex.attempts >= budget
        try:
            response = await _relay_once(request, ex, retryable=not final)
        except _RetryablePassthrough:
            state.health.failed(attempt.key)
            index = (index + 1) % len(plan)
            if index == 0 and state.retry is not None:
                await asyncio.sleep(state.retry.backoff_delay(ex.attempts - 1))
            shape_attempt(ex, plan[index], state.providers, state.config.server.default_max_tokens)
            continue
        except (UpstreamTimeout, UpstreamUnreachable):
            state.health.failed(attempt.key)
            raise
        if ex.upstream_status < 300:
            state.health.succeeded(attempt.key)
        return response


_REPLAYABLE = frozenset({"GET", "HEAD"})


class _RetryablePassthrough(Exception):
    """A GET/HEAD attempt failed before anything reached the client."""


async def _relay_once(request: web.Request, ex: Exchange, retryable: bool = False) -> web.StreamResponse:
    """One passthrough exchange with the current target's provider."""
    provider = ex.provider
    assert provider is not None
    if provider.in_process:
        raise NotFound(f"no route for {request.method} {request.path[:200]}", code="unknown_route")
    path, _, query = request.raw_path.partition("?")
    url = provider.passthrough_url(check_passthrough_path(path), query.partition("#")[0])
    streamed: PassthroughBody | None = None
    data: Any = None
    if ex.body_read:
        data = ex.raw_body
    elif request.body_exists:
        limit = request.app[STATE].config.server.max_passthrough_bytes
        streamed = PassthroughBody(request.content, request.content_length, limit)
        data = streamed.chunks()
    headers = passthrough_headers(request.headers, provider,
                                  request.content_length if streamed is not None else None, decoded=ex.body_read)
    # Signed over the body when the gateway holds it (a streamed one is not known yet).
    headers = await provider.sign(request.method, url, headers, data if isinstance(data, bytes) else b"")
    try:
        resp = await open_upstream(
            request.app[SESSION], provider, request.app[STATE].client_timeouts[provider.name],
            request.method, url, headers, data,
            on_deadline=streamed.push_back if streamed is not None else None,
        )
    except GatewayError as err:
        if streamed is not None and streamed.exceeded:
            raise PayloadTooLarge(
                f"request body is larger than server.max_passthrough_bytes ({streamed.limit})") from None
        if retryable and isinstance(err, UpstreamTimeout | UpstreamUnreachable):
            raise _RetryablePassthrough from None
        raise
    try:
        ex.upstream_status = resp.status
        if retryable and resp.status in RETRYABLE_STATUSES:
            raise _RetryablePassthrough
        response = web.StreamResponse(status=resp.status, headers=response_headers(resp.headers))
        response.headers["x-gateway-provider"] = provider.name
        await response.prepare(request)
        ex.response = response
        await _relay_body(request, ex, resp, response)
        return response
    finally:
        resp.close()


async def _relay_body(request: web.Request, ex: Exchange, resp: aiohttp.ClientResponse,
                      response: web.StreamResponse) -> None:
    """The provider's body as it arrives; a failure cuts the client's connection."""
    try:
        # Reads wait at most the provider's idle time (armed by open_upstream).
        async for chunk in resp.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return
    except ConnectionError:
        ex.error = "client disconnected"
        return
    except TimeoutError:
        ex.error = "upstream stalled"
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        ex.error = "upstream broke off"
    except Exception:
        log.exception("passthrough relay failed on %s %s", request.method, request.path[:512])
        ex.error = "internal gateway error"
    # Cut the connection without the body's proper end, so the client sees a broken
    # answer instead of a complete-looking short one.
    if request.transport is not None:
        request.transport.close()
