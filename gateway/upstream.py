"""The shared upstream ClientSession and opening requests with the gateway's timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .config import ServerConfig
from .errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable

if TYPE_CHECKING:
    from .providers import Provider

__all__ = ["WS_CLOSE_TIMEOUT", "WS_HEARTBEAT", "make_session", "open_upstream", "open_upstream_websocket"]

WS_HEARTBEAT = 20.0  # seconds between pings on both legs of a relayed WebSocket
WS_CLOSE_TIMEOUT = 5.0  # how long a close waits for the peer's close frame


def make_session(server: ServerConfig) -> aiohttp.ClientSession:
    """One pooled session for every provider: no redirects, no env proxies, no cookie jar
    (a cookie one client's answer set must never ride along on another's request), bounded headers."""
    connector = aiohttp.TCPConnector(
        limit=server.max_upstream_connections,
        limit_per_host=0,
        keepalive_timeout=30,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        max_line_size=16384,
        max_field_size=16384,
        timeout=aiohttp.ClientTimeout(total=None),
    )


async def open_upstream(
    session: aiohttp.ClientSession,
    provider: Provider,
    timeout: aiohttp.ClientTimeout,
    method: str,
    url: URL,
    headers: CIMultiDict[str],
    data: Any,
    *,
    on_deadline: Callable[[asyncio.Timeout, float], None] | None = None,
) -> aiohttp.ClientResponse:
    """Send the request and wait for the response head within the first-byte deadline.

    The deadline is `timeout.sock_read`, which aiohttp starts once the body is sent. When
    the body is still being streamed from the client, `on_deadline` also receives an
    asyncio deadline to push back as the body flows, so a stalled upload fails too. Once
    the head is in, every later read may wait at most the provider's idle time.
    """
    try:
        if on_deadline is None:
            resp = await session.request(
                method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
            )
        else:
            async with asyncio.timeout(provider.timeouts.first_byte) as deadline:
                on_deadline(deadline, provider.timeouts.first_byte)
                resp = await session.request(
                    method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
                )
    except TimeoutError:
        # aiohttp's connect timeouts are TimeoutError subclasses too.
        raise UpstreamTimeout(f'provider "{provider.name}" did not answer in time') from None
    except aiohttp.ClientConnectorError:
        raise UpstreamUnreachable(f'provider "{provider.name}" is unreachable') from None
    except (aiohttp.ClientError, OSError):
        raise UpstreamUnreachable(f'provider "{provider.name}" closed the connection') from None
    if 300 <= resp.status < 400:
        resp.close()
        raise UpstreamError(f'provider "{provider.name}" answered with a redirect, which is not followed',
                            status=502)
    connection = resp.connection
    if connection is not None and connection.protocol is not None:
        # aiohttp's own read timer (a TimeoutError from any later read) now counts idle time.
        connection.protocol.read_timeout = provider.timeouts.idle
        connection.protocol.start_timeout()
    return resp


async def open_upstream_websocket(
    session: aiohttp.ClientSession,
    provider: Provider,
    url: URL,
    headers: CIMultiDict[str],
    protocols: tuple[str, ...],
    max_msg_size: int,
) -> aiohttp.ClientWebSocketResponse[bool]:
    """Complete the upstream WebSocket handshake within the first-byte deadline, or raise 502/504."""
    try:
        async with asyncio.timeout(provider.timeouts.first_byte):
            return await session.ws_connect(
                url,
                headers=headers,
                protocols=protocols,
                heartbeat=WS_HEARTBEAT,
                max_msg_size=max_msg_size,
                compress=0,
                autoclose=True,
                autoping=True,
                decode_text=False,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT),
            )
    except TimeoutError:
        raise UpstreamTimeout(f'provider "{provider.name}" did not accept the realtime connection in time') from None
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status == 429:
            retry = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "retry-after"}
            raise UpstreamError(f'provider "{provider.name}" is rate limiting realtime connections',
                                status=429, error_type="rate_limit_error", headers=retry) from None
        raise UpstreamUnreachable(
            f'provider "{provider.name}" refused the realtime connection (HTTP {exc.status})'
        ) from None
    except aiohttp.ClientConnectorError:
        raise UpstreamUnreachable(f'provider "{provider.name}" is unreachable') from None
    except (aiohttp.ClientError, OSError):
        raise UpstreamUnreachable(f'provider "{provider.name}" closed the connection') from None
