"""Bad input from either side never crashes a request: request bodies whose Content-Encoding
lies or is unknown are 4xx, provider answers of the wrong shape are 502 (or, once a stream has
begun, one error event and a clean end), always in the client's format."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from gateway.errors import MalformedUpstream
from gateway.formats import native
from tests.conftest import GatewayFactory, SDKClients, base_config
from tests.fake_upstreams import FakeAnthropic, FakeOpenAI

CHAT_BODY = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
MESSAGES_BODY = b'{"model": "gpt-4o", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}'
ROUTES = {"/v1/chat/completions": CHAT_BODY, "/v1/messages": MESSAGES_BODY}


async def post(server: TestServer, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession(auto_decompress=False) as s, s.post(
            server.make_url(path), data=data, headers={"Content-Type": "application/json", **headers}) as resp:
        return resp.status, resp.content_type, orjson.loads(await resp.read())


def assert_client_shape(path: str, body: Any) -> str:
    """The error message, after checking the body is the error shape of the route's clients."""
    if path == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        return str(body["error"]["message"])
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return str(body["error"]["message"])


# --- request bodies: Content-Encoding ----------------------------------------------------------
@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize(("encoding", "data", "status", "needle"), [
    ("gzip", b"this is not gzip", 400, "not valid gzip"),
    ("gzip", gzip.compress(CHAT_BODY)[:-9], 400, "not valid gzip"),  # cut short
    ("deflate", b"this is not deflate", 400, "not valid deflate"),
    ("br", b"\x1b\x03\x00\xf8\xa5\xa4\x00", 415, "br"),
    ("zstd", b"(\xb5/\xfd\x00X\x01\x00\x00", 415, "zstd"),
    ("compress", b"whatever", 415, "compress"),
    ("gzip, br", b"whatever", 415, "br"),
], ids=["gzip-lies", "gzip-cut", "deflate-lies", "br", "zstd", "unknown", "gzip-then-br"])
async def test_body_whose_encoding_lies_or_is_unsupported_is_4xx_in_the_clients_shape(
        gateway: TestServer, fake_openai: FakeOpenAI, path: str, encoding: str, data: bytes, status: int,
        needle: str) -> None:
    got, content_type, body = await post(gateway, path, data, {"Content-Encoding": encoding})
    assert got == status and content_type == "application/json"
    assert needle in assert_client_shape(path, body)
    assert fake_openai.requests == []


@pytest.mark.parametrize(("encoding", "encode"), [
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some clients send it
    ("identity", lambda data: data),
    ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
], ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "identity", "gzip-twice"])
async def test_encoded_bodies_are_decoded(gateway: TestServer, fake_openai: FakeOpenAI, encoding: str,
                                          encode: Any) -> None:
    status, _, body = await post(gateway, "/v1/chat/completions", encode(CHAT_BODY), {"Content-Encoding": encoding})
    assert status == 200, body
    assert fake_openai.requests[-1].json()["messages"] == [{"role": "user", "content": "hi"}]
    assert "Content-Encoding" not in fake_openai.requests[-1].headers


async def test_decoded_body_over_the_limit_is_413(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["server"]["max_request_bytes"] = 4096
    gw = await make_gateway(cfg)
    bomb = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + b"a" * 100_000 + b'"}]}'
    status, _, body = await post(gw, "/v1/chat/completions", gzip.compress(bomb), {"Content-Encoding": "gzip"})
    assert status == 413 and "max_request_bytes" in body["error"]["message"]
    assert fake_openai.requests == []


# --- provider answers of the wrong shape -------------------------------------------------------
@pytest.fixture
async def both(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> TestServer:
    """`gpt-*` on the fake OpenAI, `claude-*` on the fake Anthropic."""
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["providers"].append({"name": "claude", "kind": "anthropic", "api_key": {"env": "FAKE_UPSTREAM_KEY"},
                             "base_url": str(fake_anthropic.server.make_url("")).rstrip("/")})
    cfg["models"].insert(0, {"name": "claude-*", "provider": "claude"})
    return await make_gateway(cfg)


@pytest.fixture
async def claude(both: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(both.make_url("")).rstrip("/"), api_key="k", max_retries=0)
    yield client
    await client.close()


HELLO = [{"role": "user", "content": "hi"}]
CHAT_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                            "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@pytest.mark.parametrize("answer", [
    b"",
    b"<html>not json</html>",
    orjson.dumps({**CHAT_ANSWER, "choices": {"0": CHAT_ANSWER["choices"][0]}}),  # type: ignore[index]
], ids=["empty", "not-json", "choices-an-object"])
async def test_wrong_shaped_chat_answer_is_a_502_for_an_anthropic_client(
        claude: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI, access_log: list[bytes], answer: bytes) -> None:
    fake_openai.behaviour.answer = answer
    with pytest.raises(anthropic.APIStatusError) as info:
        await claude.messages.create(model="gpt-4o", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert "malformed" in info.value.message or "not JSON" in info.value.message


@pytest.mark.parametrize("answer", [b"", b"not json at all"], ids=["empty", "not-json"])
async def test_same_format_200_that_is_empty_or_not_json_is_a_502(
        both: TestServer, fake_openai: FakeOpenAI, openai_clients: SDKClients, answer: bytes) -> None:
    fake_openai.behaviour.answer = answer
    _, client = openai_clients(both)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_malformed"  # type: ignore[index]


async def test_anthropic_stop_reason_of_the_wrong_type_is_a_502_for_an_openai_client(
        both: TestServer, fake_anthropic: FakeAnthropic, openai_clients: SDKClients) -> None:
    fake_anthropic.behaviour.stop_reason = ["end_turn"]
    _, client = openai_clients(both)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="claude-x", messages=HELLO)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_malformed"  # type: ignore[index]


# --- failures once a stream has begun ------------------------------------------------------------
def chunk(**fields: Any) -> bytes:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    return b"data: " + orjson.dumps({**base, **fields}) + b"\n\n"


GOOD_START = chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}])


async def test_wrong_shaped_chunk_mid_stream_ends_with_one_error_event_and_a_clean_close(
        both: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.stream_frames = [GOOD_START, chunk(choices={"index": 0}), b"data: [DONE]\n\n"]
    async with aiohttp.ClientSession() as s, s.post(
            both.make_url("/v1/messages"), headers={"anthropic-version": "2023-06-01"},
            json={"model": "gpt-4o", "max_tokens": 20, "stream": True, "messages": HELLO}) as resp:
        assert resp.status == 200
        raw = await resp.read()  # a second response written into the body would break the chunked framing
    assert b"HTTP/1.1" not in raw
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1].startswith(b"event: error\n")
    assert sum(e.startswith(b"event: error") for e in events) == 1
    error = orjson.loads(events[-1].split(b"data: ", 1)[1])
    assert error["type"] == "error" and "malformed" in error["error"]["message"]


async def test_wrong_shaped_chunk_mid_stream_reaches_the_sdk_as_an_error(
        claude: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.stream_frames = [GOOD_START, chunk(choices={"index": 0}), b"data: [DONE]\n\n"]
    text = ""
    with pytest.raises(anthropic.APIStatusError, match="malformed"):
        async with claude.messages.stream(model="gpt-4o", max_tokens=20, messages=HELLO) as stream:  # type: ignore[arg-type]
            async for piece in stream.text_stream:
                text += piece
    assert text == "Hel"


@pytest.mark.parametrize("content_type", ["Text/Event-Stream; charset=utf-8", "TEXT/EVENT-STREAM"])
async def test_event_stream_media_type_is_case_insensitive(
        gateway: TestServer, fake_openai: FakeOpenAI, openai_clients: SDKClients, content_type: str) -> None:
    fake_openai.behaviour.stream_content_type = content_type
    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url("/v1/chat/completions"),
            json={"model": "gpt-4o", "stream": True, "messages": HELLO}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert (await resp.read()).endswith(b"data: [DONE]\n\n")
    _, client = openai_clients(gateway)
    stream = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)  # type: ignore[arg-type]
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake upstream"


# The provider-facing translators turn every wrong shape into their own error event, so what
# follows breaks one on purpose: the relay's last line of defence must hold for whatever else
# a future translator might raise.
@pytest.mark.parametrize("failure", [MalformedUpstream("the provider's answer was malformed: test"),
                                     RuntimeError("a bug")], ids=["gateway-error", "bug"])
async def test_failure_after_the_head_ends_the_stream_with_the_formats_error_event(
        gateway: TestServer, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, access_log: list[bytes], failure: Exception) -> None:
    def failing(self: native.ChatStreamRelay, block: bytes) -> bytes:
        raise failure

    monkeypatch.setattr(native.ChatStreamRelay, "relay_block", failing)
    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url("/v1/chat/completions"),
            json={"model": "gpt-4o", "stream": True, "messages": HELLO}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        raw = await resp.read()
    events = [e for e in raw.split(b"\n\n") if e]
    assert len(events) == 1 and events[0].startswith(b'data: {"error"')
    error = orjson.loads(events[0][len(b"data: "):])["error"]
    if isinstance(failure, MalformedUpstream):
        assert error["message"] == failure.message and error["type"] == "server_error"
        assert not caplog.records
    else:
        assert error["message"] == "internal gateway error"
        assert [r.getMessage() for r in caplog.records] == ["stream relay failed on POST /v1/chat/completions"]
    assert orjson.loads(access_log[-1])["error"]


async def test_failure_the_handler_cannot_end_cuts_the_connection_instead_of_a_second_response(
        gateway: TestServer, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def failing(self: native.ChatStreamRelay, *args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(native.ChatStreamRelay, "relay_block", failing)
    monkeypatch.setattr(native.ChatStreamRelay, "fail", failing)  # the error event cannot be made either
    async with aiohttp.ClientSession() as s, s.post(
            gateway.make_url("/v1/chat/completions"),
            json={"model": "gpt-4o", "stream": True, "messages": HELLO}) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert sum("failed after its answer began" in r.getMessage() for r in caplog.records) == 1


async def test_a_rewritten_body_nested_too_deeply_to_send_is_a_400(make_gateway: GatewayFactory,
                                                                  fake_openai: FakeOpenAI) -> None:
    # "renamed" rewrites the body (defaults, overrides, model), so the gateway serialises it again:
    # orjson reads 1024 levels but writes only 254.
    gateway = await make_gateway(base_config(str(fake_openai.server.make_url("/v1"))))
    deep = b"[" * 600 + b"]" * 600
    body = b'{"model":"renamed","messages":[{"role":"user","content":"hi"}],"metadata":{"a":' + deep + b"}}"
    status, _, answer = await post(gateway, "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert status == 400 and "nested too deeply" in answer["error"]["message"]
    assert fake_openai.requests == []
