"""Passthrough: relayed within the provider's base URL only; credentials replaced."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.conftest import UPSTREAM_KEY, GatewayFactory, base_config
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


# --- streaming both ways -------------------------------------------------------------------
class StreamProbe:
    """An upstream that counts request bodies as they arrive and streams its answer on cue."""

    def __init__(self) -> None:
        self.head_seen = asyncio.Event()  # a request head arrived; its body may still be on the way
        self.headers: dict[str, str] = {}
        self.received = 0
        self.release = asyncio.Event()
        self.app = web.Application(client_max_size=1024**3)
        self.app.router.add_post("/v1/uploads/{tail:.*}", self.upload)
        self.app.router.add_get("/v1/stream", self.stream)

    async def upload(self, request: web.Request) -> web.Response:
        self.headers = dict(request.headers)
        self.head_seen.set()
        async for chunk in request.content.iter_any():
            self.received += len(chunk)
        return web.json_response({"received": self.received})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Connection": "keep-alive, X-Up-Hop",
                                           "X-Up-Hop": "drop me", "X-Kept": "yes"})
        await resp.prepare(request)
        await resp.write(b"first\n")
        await self.release.wait()
        await resp.write(b"second\n")
        await resp.write_eof()
        return resp


MiB = 1024 * 1024


@pytest.fixture
async def probe(aiohttp_server: Any) -> StreamProbe:
    probe = StreamProbe()
    probe.server = await aiohttp_server(probe.app)  # type: ignore[attr-defined]
    return probe


@pytest.fixture
async def probe_gateway(make_gateway: GatewayFactory, probe: StreamProbe) -> TestServer:
    cfg = base_config(str(probe.server.make_url("/v1")),  # type: ignore[attr-defined]
                      server={"admin_port": 0, "max_request_bytes": MiB, "max_passthrough_bytes": 64 * MiB})
    return await make_gateway(cfg)


async def test_large_body_streams_upstream_before_the_client_has_sent_it(
        probe_gateway: TestServer, probe: StreamProbe) -> None:
    """A 48 MiB body (48x max_request_bytes) reaches the upstream while it is still being sent."""
    chunk = b"z" * (256 * 1024)

    async def body() -> AsyncIterator[bytes]:
        yield chunk
        # Were the body buffered, the upstream would not see the request until the end: deadlock.
        await asyncio.wait_for(probe.head_seen.wait(), 5)
        for _ in range(48 * 4 - 1):
            yield chunk

    async with aiohttp.ClientSession() as s, s.post(
            probe_gateway.make_url("/v1/uploads/part"), data=body(),
            headers={"Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"received": 48 * MiB}
    assert probe.headers.get("Transfer-Encoding") == "chunked"


async def test_slow_upload_is_not_cut_by_the_first_byte_deadline(make_gateway: GatewayFactory,
                                                                  probe: StreamProbe) -> None:
    cfg = base_config(str(probe.server.make_url("/v1")))  # type: ignore[attr-defined]
    cfg["providers"][0]["timeouts"] = {"connect": 2, "first_byte": 0.4, "idle": 2}
    gateway = await make_gateway(cfg)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(6):  # ~1.2 s in all, three times the first-byte deadline
            yield b"s" * 1024
            await asyncio.sleep(0.2)

    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url("/v1/uploads/part"), data=body(),
            headers={"Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"received": 6 * 1024}


async def test_declared_length_is_kept_when_streaming(probe_gateway: TestServer, probe: StreamProbe) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            probe_gateway.make_url("/v1/uploads/part"), data=b"y" * (5 * MiB),
            headers={"Content-Type": "audio/wav"}) as resp:
        assert await resp.json() == {"received": 5 * MiB}
    assert probe.headers["Content-Length"] == str(5 * MiB)
    assert "Transfer-Encoding" not in probe.headers


async def test_json_body_read_for_its_model_is_bounded_by_max_request_bytes(
        probe_gateway: TestServer, probe: StreamProbe) -> None:
    big_json = b'{"model": "gpt-x", "pad": "' + b"p" * (2 * MiB) + b'"}'
    async with aiohttp.ClientSession() as s, s.post(
            probe_gateway.make_url("/v1/uploads/part"), data=big_json,
            headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["message"]
    assert not probe.head_seen.is_set()


async def test_json_body_with_query_model_is_streamed_unread(probe_gateway: TestServer, probe: StreamProbe) -> None:
    big_json = b'{"model": "gpt-x", "pad": "' + b"p" * (2 * MiB) + b'"}'
    async with aiohttp.ClientSession() as s, s.post(
            probe_gateway.make_url("/v1/uploads/part?model=gpt-x"), data=big_json,
            headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"received": len(big_json)}


async def test_declared_body_above_max_passthrough_bytes_is_413_before_contacting_upstream(
        make_gateway: GatewayFactory, probe: StreamProbe) -> None:
    cfg = base_config(str(probe.server.make_url("/v1")),  # type: ignore[attr-defined]
                      server={"admin_port": 0, "max_passthrough_bytes": 2 * MiB})
    gateway = await make_gateway(cfg)
    async with aiohttp.ClientSession() as s:
        async with s.post(gateway.make_url("/v1/uploads/part"), data=b"y" * (2 * MiB),
                          headers={"Content-Type": "application/octet-stream"}) as resp:
            assert resp.status == 200  # the limit itself passes
        probe.head_seen.clear()
        async with s.post(gateway.make_url("/v1/uploads/part"), data=b"y" * (2 * MiB + 1),
                          headers={"Content-Type": "application/octet-stream"}) as resp:
            assert resp.status == 413
            assert "max_passthrough_bytes" in (await resp.json())["error"]["message"]
    assert not probe.head_seen.is_set()


async def test_chunked_body_above_max_passthrough_bytes_is_cut_off_with_413(
        make_gateway: GatewayFactory, probe: StreamProbe) -> None:
    cfg = base_config(str(probe.server.make_url("/v1")),  # type: ignore[attr-defined]
                      server={"admin_port": 0, "max_passthrough_bytes": 2 * MiB})
    gateway = await make_gateway(cfg)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield b"y" * (256 * 1024)

    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url("/v1/uploads/part"), data=body(),
            headers={"Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 413
    assert probe.received <= 2 * MiB


async def test_response_streams_to_the_client_as_it_arrives(probe_gateway: TestServer, probe: StreamProbe) -> None:
    async with aiohttp.ClientSession() as s, s.get(probe_gateway.make_url("/v1/stream")) as resp:
        assert resp.status == 200
        # The upstream holds its second chunk until released: the first must already be here.
        assert await asyncio.wait_for(resp.content.readline(), 2) == b"first\n"
        probe.release.set()
        assert await resp.content.read() == b"second\n"
        assert resp.headers["X-Kept"] == "yes"
        assert "X-Up-Hop" not in resp.headers


async def test_hop_by_hop_connection_named_and_credential_headers_are_not_forwarded(
        gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    reply = await raw_request(gateway, b"/v1/files", (
        b"Connection: X-Client-Hop\r\nX-Client-Hop: secret-hop\r\nKeep-Alive: timeout=5\r\n"
        b"Proxy-Authorization: Basic abc\r\nx-api-key: client-key-1\r\napi-key: client-key-2\r\n"
        b"Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.client-key-3\r\n"
        b"X-Forwarded-Host: evil.example\r\nX-Custom: kept\r\nTE: trailers\r\n"))
    assert int(reply.split(b" ", 2)[1]) == 200
    sent = {k.lower(): v for k, v in fake_openai.requests[-1].headers.items()}
    for name in ("x-client-hop", "keep-alive", "proxy-authorization", "x-api-key", "api-key",
                 "sec-websocket-protocol", "x-forwarded-host", "te"):
        assert name not in sent, name
    assert "client-key" not in str(sent)
    assert sent["x-custom"] == "kept"
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"


@pytest.mark.parametrize("target", [
    b"/v1/%252e%252e/admin",
    b"/v1/..;/admin",
    b"/v1/files/.;x/y",
])
async def test_more_escape_attempts_are_refused(gateway: TestServer, fake_openai: FakeOpenAI, canary: list[str],
                                               target: bytes) -> None:
    reply = await raw_request(gateway, target)
    assert int(reply.split(b" ", 2)[1]) == 400, reply[:200]
    assert fake_openai.requests == []
    assert len(canary) == 1


async def test_query_headers_and_body_cannot_choose_the_upstream(
        gateway: TestServer, fake_openai: FakeOpenAI, canary: list[str]) -> None:
    port = canary[0].split(":")[1]
    elsewhere = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url(f"/v1/files?base_url={elsewhere}/v1&api_base={elsewhere}"),
            json={"model": "gpt-x", "api_base": elsewhere, "base_url": elsewhere, "extra": {"api_base": elsewhere}},
            headers={"X-Forwarded-Host": f"127.0.0.1:{port}", "Forwarded": f"host=127.0.0.1:{port}"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["path"] == "/v1/files"
    # The fake answers the realtime handshake with plain JSON, hence 502; what matters is where it went.
    with pytest.raises(aiohttp.WSServerHandshakeError):
        async with aiohttp.ClientSession() as s, s.ws_connect(
                gateway.make_url(f"/v1/realtime?model=gpt-x&base_url={elsewhere}"),
                headers={"X-Forwarded-Host": f"127.0.0.1:{port}"}):
            pass
    assert [r.path for r in fake_openai.requests] == ["/v1/files", "/v1/realtime"]
    assert canary == [f"port:{port}"]


async def test_passthrough_body_that_stalls_is_cut_after_the_idle_time(make_gateway: GatewayFactory,
                                                                      fake_openai: FakeOpenAI) -> None:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["providers"][0]["timeouts"] = {"connect": 2, "first_byte": 60, "idle": 0.5}
    gw = await make_gateway(cfg)
    fake_openai.behaviour.stall_body = True
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(gw.make_url("/v1/files")) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert time.monotonic() - started < 10  # the idle time, not the 60 s first-byte time


# --- the query and the body as the client sent them ------------------------------------------------
@pytest.mark.parametrize("query", [
    b"purpose=batch&name=a%26b%3Dc",
    b"q=a%20b&r=a+b&s=%2B&t=caf%C3%A9",
    b"x=%zz&y=&z",
])
async def test_passthrough_query_reaches_the_provider_byte_for_byte(gateway: TestServer, fake_openai: FakeOpenAI,
                                                                   query: bytes) -> None:
    reply = await raw_request(gateway, b"/v1/files?" + query)
    assert int(reply.split(b" ", 2)[1]) == 200, reply[:200]
    assert fake_openai.requests[-1].query == query.decode()


async def test_passthrough_query_from_an_encoded_url(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    url = URL(str(gateway.make_url("/v1/files")) + "?purpose=batch&name=a%26b%3Dc&x=a%20b", encoded=True)
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200
    assert fake_openai.requests[-1].query == "purpose=batch&name=a%26b%3Dc&x=a%20b"


class RawUpstream:
    """Records request bodies as they came off the wire (no decoding) with their headers."""

    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.app = web.Application(handler_args={"auto_decompress": False})
        self.app.router.add_route("*", "/{tail:.*}", self.record)

    async def record(self, request: web.Request) -> web.Response:
        self.bodies.append((dict(request.headers), await request.read()))
        return web.json_response({"ok": True})


@pytest.fixture
async def raw_upstream(aiohttp_server: Any) -> RawUpstream:
    upstream = RawUpstream()
    upstream.server = await aiohttp_server(upstream.app)  # type: ignore[attr-defined]
    return upstream


@pytest.fixture
async def raw_gateway(make_gateway: GatewayFactory, raw_upstream: RawUpstream) -> TestServer:
    return await make_gateway(base_config(str(raw_upstream.server.make_url("/v1"))))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", gzip.compress(b"a compressed upload " * 100)),
    ("gzip", b"not gzip at all: the provider decides what that is"),
    ("br", b"\x1b\x03\x00\xf8\xa5\xa4\x00"),
    ("zork", b"an encoding nobody knows"),
], ids=["gzip", "lying-gzip", "br", "unknown"])
async def test_streamed_body_goes_upstream_as_sent_with_its_encoding(
        raw_gateway: TestServer, raw_upstream: RawUpstream, encoding: str, body: bytes) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            raw_gateway.make_url("/v1/uploads/x"), data=body,
            headers={"Content-Encoding": encoding, "Content-Type": "application/octet-stream"}) as resp:
        assert resp.status == 200
    headers, received = raw_upstream.bodies[-1]
    assert received == body
    assert headers["Content-Encoding"] == encoding
    assert headers["Content-Length"] == str(len(body))


async def test_json_body_read_for_its_model_goes_upstream_decoded(
        raw_gateway: TestServer, raw_upstream: RawUpstream) -> None:
    plain = b'{"model": "gpt-4o", "input": "compressed"}'
    async with aiohttp.ClientSession() as s, s.post(
            raw_gateway.make_url("/v1/uploads/x"), data=gzip.compress(plain),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}) as resp:
        assert resp.status == 200
    headers, received = raw_upstream.bodies[-1]
    assert received == plain
    assert "Content-Encoding" not in headers


@pytest.mark.parametrize(("encoding", "status"), [("gzip", 400), ("deflate", 400), ("br", 415), ("zork", 415)])
@pytest.mark.parametrize("anthropic_client", [False, True])
async def test_json_body_read_for_its_model_with_a_bad_encoding_is_4xx_in_the_clients_shape(
        raw_gateway: TestServer, raw_upstream: RawUpstream, encoding: str, status: int,
        anthropic_client: bool) -> None:
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    if anthropic_client:
        headers["anthropic-version"] = "2023-06-01"
    async with aiohttp.ClientSession() as s, s.post(raw_gateway.make_url("/v1/uploads/x"),
                                                    data=b'{"model": "gpt-4o"}', headers=headers) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert (body["type"] == "error") if anthropic_client else (set(body) == {"error"})
    assert raw_upstream.bodies == []
