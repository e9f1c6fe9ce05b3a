"""Passthrough: relayed within the provider's base URL only; credentials replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import UPSTREAM_KEY
from tests.fake_upstreams import FakeOpenAI


@pytest.fixture
async def canary(aiohttp_server: Any) -> list[str]:
    """A listener on another port that records any connection the gateway makes to it."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="canary")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    hits.append(f"port:{server.port}")
    return hits


async def raw_request(server: TestServer, target: bytes, extra: bytes = b"") -> bytes:
    """Send a hand-written request line (the client libraries would normalise these targets)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"Connection: close\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def test_passthrough_relays_below_the_base_url_with_provider_credentials(
        gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url("/v1/files?purpose=batch"), data=b"payload-bytes",
            headers={"Authorization": "Bearer client-secret", "X-Custom": "kept",
                     "Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 200
        assert resp.headers["X-Upstream"] == "fake"
        body = await resp.json()
    assert body == {"path": "/v1/files", "query": "purpose=batch", "method": "POST", "body_len": 13}
    sent = fake_openai.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.headers["X-Custom"] == "kept"
    assert "client-secret" not in str(sent.headers)


async def test_passthrough_relays_upstream_status(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.status = 404
    async with aiohttp.ClientSession() as s, s.get(gateway.make_url("/v1/files/file-1")) as resp:
        assert resp.status == 404


@pytest.mark.parametrize("target", [
    b"/v1/../admin",
    b"/v1/%2e%2e/admin",
    b"/v1/%2E%2E/%2E%2E/etc",
    b"/v1/files%2f..%2fadmin",
    b"/v1/files%5c..%5cadmin",
    b"/v1/files\\..\\admin",
    b"/v1/files/./x",
    b"//evil.example/v1/files",
    b"/v1/@127.0.0.1:1/x",
    b"http://127.0.0.1:1/v1/files",
])
async def test_passthrough_escape_attempts_reach_nothing(gateway: TestServer, fake_openai: FakeOpenAI,
                                                         canary: list[str], target: bytes) -> None:
    port = canary[0].split(":")[1]
    target = target.replace(b"127.0.0.1:1", f"127.0.0.1:{port}".encode())
    reply = await raw_request(gateway, target)
    status = int(reply.split(b" ", 2)[1])
    assert status in (400, 404), reply[:200]
    assert fake_openai.requests == []
    assert canary == [f"port:{port}"]


async def test_duplicate_host_header_is_rejected(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    reply = await raw_request(gateway, b"/v1/files", b"Host: evil.example\r\n")
    assert int(reply.split(b" ", 2)[1]) == 400
    assert fake_openai.requests == []


async def test_passthrough_is_not_offered_for_the_mock(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    async with aiohttp.ClientSession() as s, s.get(gateway.make_url("/v1/files?model=mock-1")) as resp:
        assert resp.status == 404
    assert fake_openai.requests == []
