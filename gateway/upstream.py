"""The shared upstream ClientSession and opening requests with the gateway's timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .config import ServerConfig
from .errors import UpstreamTimeout, UpstreamUnreachable
from .providers import Provider

__all__ = ["make_session", "open_upstream"]


def make_session(server: ServerConfig) -> aiohttp.ClientSession:
    """One pooled session for every provider: no redirects, no env proxies, bounded headers."""
    connector = aiohttp.TCPConnector(
        limit=server.max_upstream_connections,
        limit_per_host=0,
        keepalive_timeout=30,
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
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
) -> aiohttp.ClientResponse:
    """Send the request and wait for the response head within the first-byte deadline."""
    try:
        async with asyncio.timeout(provider.timeouts.first_byte):
            return await session.request(
                method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
            )
    except TimeoutError:
        # aiohttp's connect timeouts are TimeoutError subclasses too.
        raise UpstreamTimeout(f'provider "{provider.name}" did not answer in time') from None
    except aiohttp.ClientConnectorError:
        raise UpstreamUnreachable(f'provider "{provider.name}" is unreachable') from None
    except (aiohttp.ClientError, OSError):
        raise UpstreamUnreachable(f'provider "{provider.name}" closed the connection') from None
