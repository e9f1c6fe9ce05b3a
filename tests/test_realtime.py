"""Realtime: the WebSocket relay, its close mapping, usage, policies, and the mock session."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from gateway.accounting import ACCOUNTING
from gateway.config import load_config
from gateway.realtime import REALTIME_SESSIONS
from gateway.realtime_policy import CLIENT, REALTIME_POLICIES, SERVER, PolicyViolation, RealtimeEvent
from tests.conftest import UPSTREAM_KEY, GatewayFactory, base_config, serve_fake
from tests.fake_realtime import FakeRealtime

REALTIME = "/v1/realtime?model=gpt-realtime"
CLIENT_KEY = "sk-client-browser-key-0123456789"
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "gateway.toml"


@pytest.fixture
async def fake_rt(aiohttp_server: Any) -> FakeRealtime:
    return await serve_fake(aiohttp_server, FakeRealtime())


def rt_config(fake: FakeRealtime, **extra: Any) -> dict[str, Any]:
    return base_config(str(fake.server.make_url("/v1")), **extra)


def with_auth(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg["auth"] = {"mode": "api_key", "keys": [
        {"name": "team-a", "key_sha256": hashlib.sha256(CLIENT_KEY.encode()).hexdigest()}]}
    return cfg


@pytest.fixture
async def rt_gateway(make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> TestServer:
    return await make_gateway(rt_config(fake_rt))


@asynccontextmanager
async def connect(server: TestServer, path: str = REALTIME, **kwargs: Any
                  ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as s, s.ws_connect(server.make_url(path), **kwargs) as ws:
        yield ws


async def recv_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is WSMsgType.TEXT, msg
    event: dict[str, Any] = orjson.loads(msg.data)
    return event


async def recv_close(ws: aiohttp.ClientWebSocketResponse, within: float = 1.0) -> tuple[int, str]:
    """The close frame the gateway sends, which must arrive within `within` seconds."""
    msg = await asyncio.wait_for(ws.receive(), within)
    assert msg.type is WSMsgType.CLOSE, msg
    return msg.data, msg.extra or ""


async def upgrade_via_http(server: TestServer, path: str = REALTIME, headers: dict[str, str] | None = None
                           ) -> tuple[int, Any]:
    """An upgrade request as a plain HTTP exchange, to read an error answered before the upgrade."""
    hdrs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), **(headers or {})}
    async with aiohttp.ClientSession() as s, s.get(server.make_url(path), headers=hdrs) as resp:
        return resp.status, await resp.json(content_type=None)


async def raw_upgrade(server: TestServer, extra: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                                         bytes]:
    """A hand-made upgrade (a client that can drop or go silent at will); returns the 101 head."""
    key = base64.b64encode(os.urandom(16)).decode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET " + REALTIME.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key.encode() + b"\r\n"
        + extra + b"\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def access_line(access_log: list[bytes], route: str = "realtime") -> dict[str, Any]:
    """The access-log line of the finished session (written once its handler returns)."""
    for _ in range(100):
        for line in access_log:
            rec: dict[str, Any] = orjson.loads(line)
            if rec["route"] == route:
                return rec
        await asyncio.sleep(0.02)
    raise AssertionError(f"no access-log line for {route}")


# --- relay ----------------------------------------------------------------------------
async def test_text_and_binary_frames_relay_both_ways_in_order(rt_gateway: TestServer, fake_rt: FakeRealtime
                                                               ) -> None:
    sent: list[tuple[WSMsgType, bytes]] = []
    async with connect(rt_gateway) as ws:
        assert (await recv_json(ws))["type"] == "session.created"
        for i in range(40):
            if i % 2:
                frame = bytes([i]) * (100 + i)
                await ws.send_bytes(frame)
                sent.append((WSMsgType.BINARY, frame))
            else:
                text = orjson.dumps({"type": "input.n", "n": i})
                await ws.send_str(text.decode())
                sent.append((WSMsgType.TEXT, text))
        echoed = []
        for _ in sent:
            msg = await asyncio.wait_for(ws.receive(), 5)
            echoed.append((msg.type, msg.data.encode() if msg.type is WSMsgType.TEXT else msg.data))
        assert echoed == sent
        await ws.send_str('{"type":"test.burst","count":300}')
        numbers = [(await recv_json(ws))["n"] for _ in range(300)]
        assert numbers == list(range(300))
    assert fake_rt.received == sent


async def test_upstream_handshake_uses_provider_key_and_upstream_model(
        make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    gateway = await make_gateway(rt_config(fake_rt))
    async with connect(gateway, "/prefix/v1/realtime?model=renamed&extra=1",
                       headers={"Authorization": "Bearer client-secret", "Cookie": "c=1"}) as ws:
        await recv_json(ws)
    shake = fake_rt.handshakes[0]
    assert shake.path == "/v1/realtime"
    assert shake.query == {"model": "upstream-model", "extra": "1"}
    assert shake.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "client-secret" not in str(shake.headers)
    assert "Cookie" not in shake.headers
    assert "OpenAI-Beta" not in shake.headers


async def test_openai_beta_header_is_forwarded_only_when_the_client_sent_it(
        rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    async with connect(rt_gateway, headers={"OpenAI-Beta": "realtime=v1"}) as ws:
        await recv_json(ws)
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
    assert fake_rt.handshakes[0].headers["OpenAI-Beta"] == "realtime=v1"
    assert "OpenAI-Beta" not in fake_rt.handshakes[1].headers


async def test_browser_subprotocol_key_authenticates_is_stripped_and_realtime_is_echoed(
        make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    gateway = await make_gateway(with_auth(rt_config(fake_rt)))
    offered = ("realtime", f"openai-insecure-api-key.{CLIENT_KEY}", "openai-organization.org-1",
               "openai-project.proj-1", "openai-beta.realtime-v1")
    async with connect(gateway, protocols=offered) as ws:
        assert ws.protocol == "realtime"
        assert (await recv_json(ws))["type"] == "session.created"
    shake = fake_rt.handshakes[0]
    assert shake.protocols == ["realtime", "openai-beta.realtime-v1"]
    assert CLIENT_KEY not in str(shake.headers)
    assert "org-1" not in str(shake.headers) and "proj-1" not in str(shake.headers)
    assert shake.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_exactly_one_subprotocol_is_echoed_in_the_101(make_gateway: GatewayFactory, fake_rt: FakeRealtime
                                                           ) -> None:
    gateway = await make_gateway(with_auth(rt_config(fake_rt)))
    _, writer, head = await raw_upgrade(
        gateway, b"Sec-WebSocket-Protocol: openai-insecure-api-key." + CLIENT_KEY.encode() + b", realtime\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 101")
    protocol_lines = [line for line in head.split(b"\r\n") if line.lower().startswith(b"sec-websocket-protocol")]
    assert protocol_lines == [b"Sec-WebSocket-Protocol: realtime"]
    assert CLIENT_KEY.encode() not in head


async def test_subprotocol_key_never_reaches_the_logs(make_gateway: GatewayFactory, fake_rt: FakeRealtime,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    gateway = await make_gateway(with_auth(rt_config(fake_rt)))
    caplog.set_level(logging.DEBUG)
    # No "realtime" offered: aiohttp logs the offered protocols; the key must not be in them.
    async with connect(gateway, protocols=(f"openai-insecure-api-key.{CLIENT_KEY}",)) as ws:
        await recv_json(ws)
    assert "openai-insecure-api-key.<redacted>" in caplog.text
    assert CLIENT_KEY not in caplog.text


# --- failures before the upgrade are plain HTTP errors ----------------------------------
async def test_missing_or_wrong_key_is_http_401_before_upgrade(make_gateway: GatewayFactory,
                                                               fake_rt: FakeRealtime) -> None:
    gateway = await make_gateway(with_auth(rt_config(fake_rt)))
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with connect(gateway):
            pass
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with connect(gateway, protocols=("realtime", "openai-insecure-api-key.wrong")):
            pass
    assert info.value.status == 401
    status, body = await upgrade_via_http(gateway)
    assert status == 401
    assert body["error"]["type"] == "authentication_error"
    assert fake_rt.handshakes == []


async def test_unknown_model_is_404_and_missing_model_400_before_upgrade(
        make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    cfg = rt_config(fake_rt)
    cfg["models"] = [m for m in cfg["models"] if m["name"] != "*"]
    gateway = await make_gateway(cfg)
    status, body = await upgrade_via_http(gateway, "/v1/realtime?model=claude-x")
    assert status == 404
    assert body["error"]["code"] == "model_not_found"
    status, body = await upgrade_via_http(gateway, "/v1/realtime")
    assert status == 400
    assert fake_rt.handshakes == []


async def test_provider_without_realtime_is_404(make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    cfg = rt_config(fake_rt)
    cfg["providers"].append({"name": "claude", "kind": "anthropic", "base_url": "http://127.0.0.1:1",
                             "api_key": {"env": "FAKE_UPSTREAM_KEY"}})
    cfg["models"].insert(0, {"name": "claude-*", "provider": "claude"})
    gateway = await make_gateway(cfg)
    status, body = await upgrade_via_http(gateway, "/v1/realtime?model=claude-x")
    assert status == 404
    assert body["error"]["code"] == "unsupported_route"


async def test_plain_http_request_to_realtime_is_426(rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    async with aiohttp.ClientSession() as s, s.get(rt_gateway.make_url(REALTIME)) as resp:
        assert resp.status == 426
        assert resp.headers["Upgrade"] == "websocket"
        assert (await resp.json())["error"]["code"] == "upgrade_required"
    assert fake_rt.handshakes == []


async def test_upstream_connect_failure_is_502_before_upgrade(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(base_config(f"http://127.0.0.1:{free_port()}/v1"))
    status, body = await upgrade_via_http(gateway)
    assert status == 502
    assert body["error"]["code"] == "upstream_unreachable"
    assert UPSTREAM_KEY not in str(body)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with connect(gateway):
            pass
    assert info.value.status == 502


@pytest.mark.parametrize(("upstream_status", "expected"), [(403, 502), (500, 502), (429, 429)])
async def test_upstream_refusing_the_upgrade_is_an_http_error(rt_gateway: TestServer, fake_rt: FakeRealtime,
                                                             upstream_status: int, expected: int) -> None:
    fake_rt.reject_status = upstream_status
    status, body = await upgrade_via_http(rt_gateway)
    assert status == expected
    assert f"HTTP {upstream_status}" in body["error"]["message"] or expected == 429


# --- close propagation ------------------------------------------------------------------
async def test_client_close_code_and_reason_reach_the_upstream(rt_gateway: TestServer, fake_rt: FakeRealtime
                                                               ) -> None:
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.close(code=4000, message=b"client is done")
    await asyncio.wait_for(fake_rt.ended.wait(), 1)
    assert fake_rt.closes == [(4000, "client is done")]


async def test_upstream_close_code_and_reason_reach_the_client(rt_gateway: TestServer, fake_rt: FakeRealtime
                                                               ) -> None:
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"test.close","code":4001,"reason":"upstream is done"}')
        assert await recv_close(ws) == (4001, "upstream is done")


async def test_upstream_drop_closes_the_client_within_a_second(rt_gateway: TestServer, fake_rt: FakeRealtime,
                                                               access_log: list[bytes]) -> None:
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"test.drop"}')
        assert await recv_close(ws, within=1.0) == (1014, "upstream connection lost")
    assert (await access_line(access_log))["error"] == "upstream connection lost"


async def test_client_drop_closes_the_upstream_within_a_second(rt_gateway: TestServer, fake_rt: FakeRealtime
                                                               ) -> None:
    _, writer, head = await raw_upgrade(rt_gateway)
    assert head.startswith(b"HTTP/1.1 101")
    assert len(fake_rt.handshakes) == 1
    writer.transport.abort()  # no close frame
    started = time.monotonic()
    await asyncio.wait_for(fake_rt.ended.wait(), 1)
    assert time.monotonic() - started < 1
    assert fake_rt.closes == [(1001, "client went away")]


async def test_no_compression_on_either_leg(rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    _, writer, head = await raw_upgrade(rt_gateway, b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 101")
    assert b"sec-websocket-extensions" not in head.lower()
    assert "Sec-WebSocket-Extensions" not in fake_rt.handshakes[0].headers


async def test_silent_client_is_caught_by_the_heartbeat(rt_gateway: TestServer, fake_rt: FakeRealtime,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.realtime.WS_HEARTBEAT", 0.2)
    _, writer, head = await raw_upgrade(rt_gateway)  # then never reads, never pongs
    assert head.startswith(b"HTTP/1.1 101")
    await asyncio.wait_for(fake_rt.ended.wait(), 2)
    writer.close()
    assert fake_rt.closes == [(1001, "client went away")]


async def test_silent_upstream_is_caught_by_the_heartbeat(rt_gateway: TestServer, fake_rt: FakeRealtime,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.upstream.WS_HEARTBEAT", 0.2)
    fake_rt.answer_pings = False
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        assert await recv_close(ws, within=2.0) == (1014, "upstream connection lost")


async def test_oversize_client_frame_closes_with_1009_and_limit_itself_passes(
        make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    limit = 4096
    gateway = await make_gateway(rt_config(fake_rt, server={"admin_port": 0, "ws_max_message_bytes": limit}))
    async with connect(gateway) as ws:
        await recv_json(ws)
        await ws.send_bytes(b"a" * limit)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type is WSMsgType.BINARY and len(msg.data) == limit
        await ws.send_bytes(b"a" * (limit + 1))
        code, _ = await recv_close(ws)
        assert code == 1009
    await asyncio.wait_for(fake_rt.ended.wait(), 1)
    assert fake_rt.closes == [(1001, "client went away")]
    assert [len(data) for _, data in fake_rt.received] == [limit]


async def test_oversize_upstream_frame_closes_the_client_with_1014(
        make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    gateway = await make_gateway(rt_config(fake_rt, server={"admin_port": 0, "ws_max_message_bytes": 4096}))
    async with connect(gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"test.big","size":4097}')
        assert await recv_close(ws) == (1014, "upstream message too big")
    await asyncio.wait_for(fake_rt.ended.wait(), 1)
    assert fake_rt.closes == [(1009, "")]  # the gateway's upstream socket refused it


async def test_slow_client_holds_back_the_upstream(rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    count, pad = 3000, 16 * 1024  # ~48 MiB, far beyond the socket buffers on the way
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str(orjson.dumps({"type": "test.burst", "count": count, "pad": pad}).decode())
        await asyncio.sleep(1.0)  # the client reads nothing meanwhile
        assert fake_rt.burst_sent < count, "nothing pushed back: the relay buffered the whole burst"
        numbers = [(await recv_json(ws))["n"] for _ in range(count)]
    assert numbers == list(range(count))


async def test_shutdown_closes_open_sessions_with_going_away(rt_gateway: TestServer, fake_rt: FakeRealtime
                                                             ) -> None:
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        assert len(rt_gateway.app[REALTIME_SESSIONS]) == 1
        closing = asyncio.create_task(rt_gateway.close())
        assert await recv_close(ws, within=2.0) == (1001, "gateway shutting down")
        await asyncio.wait_for(closing, 10)
    assert fake_rt.closes == [(1001, "gateway shutting down")]
    assert len(rt_gateway.app[REALTIME_SESSIONS]) == 0


# --- usage and policies --------------------------------------------------------------------
async def test_response_done_usage_reaches_accounting_and_access_log(
        make_gateway: GatewayFactory, fake_rt: FakeRealtime, access_log: list[bytes]) -> None:
    gateway = await make_gateway(with_auth(rt_config(fake_rt)))
    usages = [
        {"total_tokens": 130, "input_tokens": 100, "output_tokens": 30,
         "input_token_details": {"cached_tokens": 40, "text_tokens": 60, "audio_tokens": 40},
         "output_token_details": {"text_tokens": 10, "audio_tokens": 20}},
        {"total_tokens": 25, "input_tokens": 20, "output_tokens": 5},
    ]
    async with connect(gateway, headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as ws:
        await recv_json(ws)
        for usage in usages:
            await ws.send_str(orjson.dumps({"type": "test.usage", "usage": usage}).decode())
            assert (await recv_json(ws))["type"] == "response.done"
        totals = gateway.app[ACCOUNTING].totals(identity="team-a", model="gpt-realtime")
        assert (totals.records, totals.input_tokens, totals.output_tokens, totals.cached_tokens) == (2, 120, 35, 40)
    rec = await access_line(access_log)
    assert rec["status"] == 101
    assert rec["key"] == "team-a" and rec["provider"] == "fake" and rec["model"] == "gpt-realtime"
    assert (rec["input_tokens"], rec["output_tokens"], rec["cached_tokens"]) == (120, 35, 40)
    assert rec["error"] is None
    # Recorded as they happened, not a second time when the session ended.
    assert gateway.app[ACCOUNTING].totals(identity="team-a").records == 2


async def test_http_usage_goes_through_the_same_accounting(make_gateway: GatewayFactory, fake_rt: FakeRealtime
                                                            ) -> None:
    gateway = await make_gateway(rt_config(fake_rt))
    body = {"model": "mock-1", "messages": [{"role": "user", "content": "count these four words"}]}
    async with aiohttp.ClientSession() as s, s.post(gateway.make_url("/v1/chat/completions"), json=body) as resp:
        usage = (await resp.json())["usage"]
    totals = gateway.app[ACCOUNTING].totals(model="mock-1")
    assert (totals.records, totals.input_tokens, totals.output_tokens) == (
        1, usage["prompt_tokens"], usage["completion_tokens"])


def forbid_word(word: str, direction: str) -> Any:
    async def policy(event: RealtimeEvent) -> PolicyViolation | None:
        if event.direction == direction and not event.binary and word.encode() in event.data:
            return PolicyViolation("forbidden_word", f'the word "{word}" is not allowed here')
        return None

    return policy


async def test_policy_ends_the_session_on_a_client_event(rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    rt_gateway.app[REALTIME_POLICIES].append(forbid_word("banana", CLIENT))
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"conversation.item.create","event_id":"evt_c1","item":{"text":"apple"}}')
        assert (await recv_json(ws))["event_id"] == "evt_c1"  # echoed by the fake: allowed
        await ws.send_str('{"type":"conversation.item.create","event_id":"evt_c2","item":{"text":"banana"}}')
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["error"] == {"type": "policy_violation", "code": "forbidden_word",
                                  "message": 'the word "banana" is not allowed here', "param": None,
                                  "event_id": "evt_c2"}
        assert await recv_close(ws) == (1008, "policy_violation: forbidden_word")
    await asyncio.wait_for(fake_rt.ended.wait(), 1)
    assert all(b"banana" not in data for _, data in fake_rt.received)
    assert fake_rt.closes == [(1000, "session ended by gateway policy")]


async def test_policy_ends_the_session_on_a_server_event(rt_gateway: TestServer, fake_rt: FakeRealtime,
                                                         access_log: list[bytes]) -> None:
    rt_gateway.app[REALTIME_POLICIES].append(forbid_word("secret", SERVER))
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"echo.me","text":"a secret"}')  # the fake echoes it back
        error = await recv_json(ws)
        assert error["type"] == "error" and error["error"]["type"] == "policy_violation"
        assert error["error"]["event_id"] is None
        assert await recv_close(ws) == (1008, "policy_violation: forbidden_word")
    assert (await access_line(access_log))["error"] == "policy violation: forbidden_word"


async def test_policy_sees_every_event_in_order(rt_gateway: TestServer) -> None:
    seen: list[tuple[str, str]] = []

    async def record(event: RealtimeEvent) -> PolicyViolation | None:
        seen.append((event.direction, event.type if not event.binary else "<binary>"))
        return None

    rt_gateway.app[REALTIME_POLICIES].append(record)
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"one"}')
        await recv_json(ws)
        await ws.send_bytes(b"\x00\x01")
        await ws.receive()
    assert seen == [(SERVER, "session.created"), (CLIENT, "one"), (SERVER, "one"),
                    (CLIENT, "<binary>"), (SERVER, "<binary>")]


# --- the mock provider's session ------------------------------------------------------
@functools.cache
def server_event_adapter() -> Any:
    from openai.types.realtime import RealtimeServerEvent
    from pydantic import TypeAdapter

    return TypeAdapter(RealtimeServerEvent)


def validate_server_event(event: dict[str, Any]) -> Any:
    """Parse with the official SDK's GA event union; raises if the shape is wrong."""
    return server_event_adapter().validate_python(event)


async def run_turn(ws: aiohttp.ClientWebSocketResponse, text: str) -> list[dict[str, Any]]:
    await ws.send_str(orjson.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}).decode())
    created = await recv_json(ws)
    assert created["type"] == "conversation.item.created"
    await ws.send_str('{"type":"response.create"}')
    events = []
    while True:
        event = await recv_json(ws)
        events.append(event)
        if event["type"] == "response.done":
            return [created, *events]


async def test_mock_realtime_session_works_with_the_shipped_config(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(load_config(SHIPPED_CONFIG))
    async with connect(gateway, "/v1/realtime?model=gpt-realtime", protocols=("realtime",)) as ws:
        assert ws.protocol == "realtime"
        created = await recv_json(ws)
        assert created["type"] == "session.created" and created["session"]["model"] == "gpt-realtime"
        await ws.send_str(orjson.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": "Be brief.", "output_modalities": ["text"]}}).decode())
        updated = await recv_json(ws)
        assert updated["type"] == "session.updated" and updated["session"]["instructions"] == "Be brief."
        events = await run_turn(ws, "hello there realtime mock")
        types = [e["type"] for e in events]
        assert types[:5] == ["conversation.item.created", "response.created", "response.output_item.added",
                             "response.content_part.added", "response.output_text.delta"]
        assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                              "response.output_item.done", "response.done"]
        for event in [created, updated, *events]:
            validate_server_event(event)
        deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        done = events[-1]["response"]
        assert deltas == events[-4]["text"] == done["output"][0]["content"][0]["text"]
        assert deltas == "This is the mock provider answering: hello there realtime mock"
        usage = done["usage"]
        # The chat tokenizer: 3 per item plus one per word; instructions count as an item.
        assert usage["input_tokens"] == (3 + 4) + (3 + 2)
        assert usage["output_tokens"] == len(deltas.split())
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        # The second turn sees the first answer as input, as the real API does.
        second = (await run_turn(ws, "again"))[-1]["response"]["usage"]
        assert second["input_tokens"] == usage["input_tokens"] + (3 + usage["output_tokens"]) + (3 + 1)


async def test_mock_realtime_usage_matches_the_chat_mock(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(load_config(SHIPPED_CONFIG))
    text = "what is the weather like today"
    async with aiohttp.ClientSession() as s, s.post(gateway.make_url("/v1/chat/completions"), json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}) as resp:
        chat = (await resp.json())["usage"]
    async with connect(gateway) as ws:
        await recv_json(ws)
        usage = (await run_turn(ws, text))[-1]["response"]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (chat["prompt_tokens"], chat["completion_tokens"])


async def test_mock_realtime_answers_unknown_and_invalid_events_with_errors(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(load_config(SHIPPED_CONFIG))
    async with connect(gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"no.such.event","event_id":"evt_x"}')
        error = await recv_json(ws)
        validate_server_event(error)
        assert error["error"]["code"] == "invalid_value"
        assert error["error"]["param"] == "type" and error["error"]["event_id"] == "evt_x"
        await ws.send_str("not json")
        assert (await recv_json(ws))["error"]["code"] == "invalid_json"
        await ws.send_str('{"type":"session.update","session":{"type":"transcription"}}')
        assert (await recv_json(ws))["error"]["param"] == "session.type"
        await ws.send_str('{"type":"response.cancel"}')
        assert (await recv_json(ws))["error"]["code"] == "response_cancel_not_active"
        # The session stays usable after errors.
        assert (await run_turn(ws, "still here"))[-1]["response"]["status"] == "completed"


async def test_mock_realtime_max_output_tokens_makes_the_response_incomplete(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(load_config(SHIPPED_CONFIG))
    async with connect(gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"session.update","session":{"type":"realtime","max_output_tokens":3}}')
        await recv_json(ws)
        response = (await run_turn(ws, "one two three four"))[-1]["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert response["usage"]["output_tokens"] == 3


async def test_openai_sdk_realtime_client_talks_to_the_mock_through_the_gateway(
        make_gateway: GatewayFactory, access_log: list[bytes]) -> None:
    pytest.importorskip("websockets")
    import openai
    from openai.types.realtime import ResponseDoneEvent, ResponseTextDeltaEvent, SessionUpdatedEvent

    gateway = await make_gateway(load_config(SHIPPED_CONFIG))
    client = openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key="unused", max_retries=0)
    deltas: list[str] = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello"}]})
        await conn.response.create()
        async for event in conn:
            if isinstance(event, SessionUpdatedEvent):
                assert event.session.type == "realtime"
            elif isinstance(event, ResponseTextDeltaEvent):
                deltas.append(event.delta)
            elif isinstance(event, ResponseDoneEvent):
                assert event.response.usage is not None
                assert event.response.usage.output_tokens == len("".join(deltas).split())
                break
    await client.close()
    assert "".join(deltas) == "This is the mock provider answering: Say hello"
    rec = await access_line(access_log)
    assert rec["provider"] == "mock" and rec["output_tokens"] == len("".join(deltas).split())


async def test_openai_sdk_realtime_client_through_the_relay(rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    pytest.importorskip("websockets")
    import openai

    client = openai.AsyncOpenAI(base_url=str(rt_gateway.make_url("/v1")), api_key="client-key", max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        first = await conn.recv()
        assert first.type == "session.created"
        await conn.send({"type": "response.create", "event_id": "evt_sdk"})
        echoed = await conn.recv_bytes()
        assert orjson.loads(echoed)["event_id"] == "evt_sdk"
    await client.close()
    assert fake_rt.handshakes[0].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "client-key" not in str(fake_rt.handshakes[0].headers)


async def test_mock_realtime_items_can_be_retrieved_and_deleted(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(load_config(SHIPPED_CONFIG))
    async with connect(gateway) as ws:
        await recv_json(ws)
        item_id = (await run_turn(ws, "keep me"))[0]["item"]["id"]
        await ws.send_str(orjson.dumps({"type": "conversation.item.retrieve", "item_id": item_id}).decode())
        retrieved = await recv_json(ws)
        validate_server_event(retrieved)
        assert retrieved["item"]["content"][0]["text"] == "keep me"
        await ws.send_str(orjson.dumps({"type": "conversation.item.delete", "item_id": item_id}).decode())
        deleted = await recv_json(ws)
        validate_server_event(deleted)
        assert deleted == {**deleted, "type": "conversation.item.deleted", "item_id": item_id}
        await ws.send_str(orjson.dumps({"type": "conversation.item.retrieve", "item_id": item_id}).decode())
        assert (await recv_json(ws))["error"]["code"] == "item_not_found"


async def test_failing_policy_ends_the_session_closed_not_open(rt_gateway: TestServer, fake_rt: FakeRealtime) -> None:
    async def broken(event: RealtimeEvent) -> PolicyViolation | None:
        if event.direction == CLIENT:
            raise RuntimeError("policy bug")
        return None

    rt_gateway.app[REALTIME_POLICIES].append(broken)
    async with connect(rt_gateway) as ws:
        await recv_json(ws)
        await ws.send_str('{"type":"anything"}')
        assert await recv_close(ws) == (1011, "internal gateway error")
    await asyncio.wait_for(fake_rt.ended.wait(), 1)
    assert fake_rt.received == []


async def test_realtime_fails_over_at_the_handshake(make_gateway: GatewayFactory, fake_rt: FakeRealtime) -> None:
    cfg = rt_config(fake_rt)
    cfg["providers"].append({"name": "down", "kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                             "api_key": {"env": "FAKE_UPSTREAM_KEY"}})
    cfg["models"][:0] = [{"name": "rt-down", "provider": "down", "model": "gone"},
                         {"name": "rt-live", "provider": "fake", "model": "gpt-realtime-upstream"},
                         {"name": "rt", "targets": [{"model": "rt-down"}, {"model": "rt-live", "priority": 1}]}]
    gateway = await make_gateway(cfg)
    async with connect(gateway, "/v1/realtime?model=rt") as ws:
        assert (await recv_json(ws))["type"] == "session.created"
    assert fake_rt.handshakes[-1].query["model"] == "gpt-realtime-upstream"
