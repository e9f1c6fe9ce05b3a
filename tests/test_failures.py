"""Failure behaviour: every error in the client's format with the right status, streams end cleanly."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import UPSTREAM_KEY, GatewayFactory, SDKClients, base_config
from tests.fake_upstreams import FakeOpenAI

CHAT = "/v1/chat/completions"


async def post(server: TestServer, path: str, data: bytes, headers: dict[str, str] | None = None
               ) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession() as s, s.post(server.make_url(path), data=data, headers=headers or {
            "Content-Type": "application/json"}) as resp:
        body = await resp.read()
        return resp.status, dict(resp.headers), orjson.loads(body)


def assert_openai_error(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]
    return err


@pytest.mark.parametrize(("raw", "needle"), [
    (b'{"model": "gpt-4o", "messages": [', "not valid JSON"),
    (b"[" * 10000 + b"]" * 10000, "not valid JSON"),
    (b'{"model": "gpt-4o", "temperature": NaN, "messages": []}', "not valid JSON"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\\ud800"}]}', "not valid JSON"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "not valid JSON"),
    (b'"just a string"', "JSON object"),
    (b"", "empty"),
    (b'{"messages": []}', "names no model"),
    (b'{"model": 5, "messages": []}', "non-empty string"),
    (b'{"model": "gpt-4o", "stream": "yes", "messages": []}', "stream"),
])
async def test_malformed_requests_get_400_in_openai_shape(gateway: TestServer, fake_openai: FakeOpenAI,
                                                          raw: bytes, needle: str) -> None:
    status, _, body = await post(gateway, CHAT, raw)
    assert status == 400
    assert needle in assert_openai_error(body)["message"]
    assert fake_openai.requests == []


async def test_non_utf8_charset_is_rejected_with_400(gateway: TestServer) -> None:
    status, _, body = await post(gateway, CHAT, '{"model": "gpt-4o", "messages": []}'.encode("utf-16"),
                                 {"Content-Type": "application/json; charset=utf-16"})
    assert status == 400 and "charset" in assert_openai_error(body)["message"]


async def test_body_over_the_limit_gets_413(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["server"]["max_request_bytes"] = 2048
    gw = await make_gateway(cfg)
    ok = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + b"a" * 1900 + b'"}]}'
    too_big = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + b"a" * 2100 + b'"}]}'
    assert (await post(gw, CHAT, ok))[0] == 200
    status, _, body = await post(gw, CHAT, too_big)
    assert status == 413 and "max_request_bytes" in assert_openai_error(body)["message"]


async def test_unknown_model_is_404_listing_nothing_secret(make_gateway: GatewayFactory,
                                                           fake_openai: FakeOpenAI) -> None:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["models"] = [m for m in cfg["models"] if m["name"] != "*"]
    gw = await make_gateway(cfg)
    status, _, body = await post(gw, CHAT, b'{"model": "claude-x", "messages": []}')
    err = assert_openai_error(body)
    assert status == 404 and err["code"] == "model_not_found"
    text = orjson.dumps(body).decode()
    assert UPSTREAM_KEY not in text and "fake" not in text and "127.0.0.1" not in text


async def test_unknown_route_without_a_provider_is_404(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["models"] = [m for m in cfg["models"] if m["name"] != "*"]
    gw = await make_gateway(cfg)
    async with aiohttp.ClientSession() as s, s.get(gw.make_url("/v1/files")) as resp:
        assert resp.status == 404
        assert_openai_error(await resp.json())
    assert fake_openai.requests == []


async def test_upstream_unreachable_is_502(make_gateway: GatewayFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gw = await make_gateway(base_config(f"http://127.0.0.1:{port}/v1"))
    status, _, body = await post(gw, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 502 and assert_openai_error(body)["code"] == "upstream_unreachable"


async def test_upstream_first_byte_timeout_is_504(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.hang = True
    started = time.monotonic()
    status, _, body = await post(gateway, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 504 and assert_openai_error(body)["code"] == "upstream_timeout"
    assert time.monotonic() - started < 10


async def test_cookies_set_by_an_upstream_are_never_sent_back(make_gateway: GatewayFactory,
                                                              fake_openai: FakeOpenAI) -> None:
    # By name, not IP: a cookie jar would keep cookies for "localhost" (it ignores IP hosts).
    gateway = await make_gateway(base_config(f"http://localhost:{fake_openai.server.port}/v1"))
    fake_openai.behaviour.status = 429
    fake_openai.behaviour.error_headers = {"Set-Cookie": "session=from-upstream; Path=/"}
    status, _, _ = await post(gateway, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 429
    fake_openai.behaviour.status = 200
    status, _, _ = await post(gateway, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 200
    assert "Cookie" not in fake_openai.requests[-1].headers


def idle_config(upstream_url: str) -> dict[str, Any]:
    """A long first-byte time and a short idle time: which one a stall hits tells them apart."""
    cfg = base_config(upstream_url)
    cfg["providers"][0]["timeouts"] = {"connect": 2, "first_byte": 60, "idle": 0.5}
    return cfg


async def test_upstream_stalling_mid_body_is_504_after_the_idle_time(
        make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.stall_body = True
    gw = await make_gateway(idle_config(str(fake_openai.server.make_url("/v1"))))
    started = time.monotonic()
    status, _, body = await post(gw, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 504 and "stalled" in assert_openai_error(body)["message"]
    assert time.monotonic() - started < 10  # the idle time, not the 60 s first-byte time


async def test_stream_stall_is_cut_after_the_idle_time(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.stall_after_chunks = 2
    gw = await make_gateway(idle_config(str(fake_openai.server.make_url("/v1"))))
    started = time.monotonic()
    events = await read_sse(gw, STREAM)
    assert time.monotonic() - started < 10
    assert events[-1].startswith(b'data: {"error"') and b"sent nothing" in events[-1]


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_upstream_errors_are_relayed_with_their_status(gateway: TestServer, fake_openai: FakeOpenAI,
                                                             openai_clients: SDKClients, status: int) -> None:
    fake_openai.behaviour.status = status
    fake_openai.behaviour.error_headers = {"Retry-After": "7"}
    _, client = openai_clients(gateway)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status
    assert info.value.response.headers.get("retry-after") == "7"
    assert f"fake failure {status}" in info.value.message


async def test_upstream_error_echoing_the_key_is_redacted(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.status = 401
    fake_openai.behaviour.error_body = orjson.dumps({"error": {
        "message": f"Incorrect API key provided: {UPSTREAM_KEY}. Also sk-abc***************wxyz.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
    status, _, body = await post(gateway, CHAT, b'{"model": "gpt-4o", "messages": []}')
    message = assert_openai_error(body)["message"]
    assert status == 401
    assert UPSTREAM_KEY not in message and "sk-abc" not in message and "[redacted]" in message


async def test_non_json_upstream_error_is_wrapped(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.status = 502
    fake_openai.behaviour.error_body = b"<html>bad gateway</html>"
    status, _, body = await post(gateway, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 502 and "HTTP 502" in assert_openai_error(body)["message"]


async def test_upstream_redirect_is_not_followed(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.redirect_to = "http://127.0.0.1:1/elsewhere"
    status, _, body = await post(gateway, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 502 and "redirect" in assert_openai_error(body)["message"]
    assert len(fake_openai.requests) == 1


async def read_sse(server: TestServer, body: bytes) -> list[bytes]:
    async with aiohttp.ClientSession() as s, s.post(server.make_url(CHAT), data=body) as resp:
        assert resp.status == 200
        raw = await resp.read()
    return [e for e in raw.split(b"\n\n") if e]


STREAM = b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "x"}]}'


async def test_upstream_reset_mid_stream_sends_one_error_event_and_no_done(
        gateway: TestServer, fake_openai: FakeOpenAI, openai_clients: SDKClients) -> None:
    fake_openai.behaviour.reset_after_chunks = 3
    events = await read_sse(gateway, STREAM)
    assert events[-1].startswith(b'data: {"error"')
    assert sum(e.startswith(b'data: {"error"') for e in events) == 1
    assert b"data: [DONE]" not in events
    assert len(events) == 4  # three relayed chunks, then the error
    _, client = openai_clients(gateway)
    stream = await client.chat.completions.create(model="gpt-4o", stream=True, messages=[{"role": "user",
                                                                                         "content": "x"}])
    with pytest.raises(openai.APIError, match="broke off"):
        async for _ in stream:
            pass


async def test_upstream_idle_mid_stream_times_out_with_an_error_event(gateway: TestServer,
                                                                      fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.stall_after_chunks = 2
    started = time.monotonic()
    events = await read_sse(gateway, STREAM)
    assert time.monotonic() - started < 10
    assert events[-1].startswith(b'data: {"error"') and b"sent nothing" in events[-1]
    assert b"data: [DONE]" not in events


async def test_first_chunk_reaches_client_before_upstream_sends_the_last(gateway: TestServer,
                                                                         fake_openai: FakeOpenAI) -> None:
    gate = asyncio.Event()
    fake_openai.behaviour.hold_last = gate
    async with aiohttp.ClientSession() as s, s.post(gateway.make_url(CHAT), data=STREAM) as resp:
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        assert b"chat.completion.chunk" in first
        assert not gate.is_set()  # the upstream is still holding its last chunks
        gate.set()
        rest = await resp.read()
    assert rest.endswith(b"data: [DONE]\n\n")


async def test_client_disconnect_closes_the_upstream_within_a_second(gateway: TestServer,
                                                                     fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.stall_after_chunks = 2
    async with aiohttp.ClientSession() as s:
        resp = await s.post(gateway.make_url(CHAT), data=STREAM)
        await resp.content.readuntil(b"\n\n")
        for _ in range(50):
            if fake_openai.open_streams == 1:
                break
            await asyncio.sleep(0.02)
        assert fake_openai.open_streams == 1
        resp.close()
        left = time.monotonic()
    for _ in range(100):
        if fake_openai.open_streams == 0:
            break
        await asyncio.sleep(0.01)
    assert fake_openai.open_streams == 0
    assert fake_openai.closed_streams[-1] - left < 1.0


async def test_slow_chunks_are_all_relayed(gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.chunk_delay = 0.05
    events = await read_sse(gateway, STREAM)
    assert events[-1] == b"data: [DONE]"
    assert len(events) == 1 + 5 + 1 + 1


async def test_api_key_auth_rejects_missing_and_wrong_keys(make_gateway: GatewayFactory,
                                                           fake_openai: FakeOpenAI, openai_clients: SDKClients,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_A_KEY", "client-key")
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["auth"] = {"mode": "api_key", "keys": [{"name": "team-a", "key": {"env": "TEAM_A_KEY"},
                                                "models": ["gpt-*"]}]}
    gw = await make_gateway(cfg)
    status, _, body = await post(gw, CHAT, b'{"model": "gpt-4o", "messages": []}')
    assert status == 401 and assert_openai_error(body)["type"] == "authentication_error"
    status, _, body = await post(gw, CHAT, b'{"model": "gpt-4o", "messages": []}',
                                 {"Authorization": "Bearer wrong"})
    assert status == 401
    _, client = openai_clients(gw)  # api_key="client-key"
    reply = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="mock-1", messages=[{"role": "user", "content": "x"}])
