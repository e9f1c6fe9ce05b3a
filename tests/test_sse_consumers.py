"""Every stream the gateway emits, read by an independent SSE client (aiohttp-sse-client's
EventSource, as third-party tools consume streams): events parse, carry the names their
format gives them, end with the format's last event, and the body ends right after it.

The gateway itself does not use aiohttp-sse-client: see "Architecture" in README.rst.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiohttp_sse_client.client import READY_STATE_CONNECTING, EventSource, MessageEvent

from tests.conftest import GatewayFactory, base_config
from tests.fake_upstreams import FakeAnthropic, FakeOpenAI


class StreamEnded(Exception):
    """The server ended the body (EventSource would reconnect next)."""


async def consume(gateway: TestServer, path: str, body: dict[str, Any]) -> list[MessageEvent]:
    """POST `body` and read the stream with EventSource until the server ends it (within 10 s)."""
    return await asyncio.wait_for(_consume(gateway, path, body), timeout=10)


async def _consume(gateway: TestServer, path: str, body: dict[str, Any]) -> list[MessageEvent]:
    events: list[MessageEvent] = []
    async with aiohttp.ClientSession() as session:
        source = EventSource(str(gateway.make_url(path)), option={"method": "POST"}, session=session, json=body,
                             headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01"},
                             reconnection_time=datetime.timedelta(0), max_connect_retry=0,
                             on_error=lambda: ended(source))
        async with source:
            try:
                async for event in source:
                    events.append(event)
            except StreamEnded:
                return events
    raise AssertionError("the stream did not end")


def ended(source: EventSource) -> None:
    if source.ready_state == READY_STATE_CONNECTING:  # the body ended; not a failed connect
        raise StreamEnded


def parsed(events: list[MessageEvent]) -> list[Any]:
    return [event.data if event.data == "[DONE]" else json.loads(event.data) for event in events]


def check_chat(events: list[MessageEvent]) -> list[Any]:
    data = parsed(events)
    assert all(event.type is None for event in events)  # Chat Completions streams name no events
    assert data[-1] == "[DONE]" and "[DONE]" not in data[:-1]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in data[:-1])
    return data[:-1]


def check_named(events: list[MessageEvent], first: str, last: str) -> list[Any]:
    """Anthropic Messages and Responses: each event's name is its data's `type`."""
    data = parsed(events)
    assert [event.type for event in events] == [d["type"] for d in data]
    assert data[0]["type"] == first and data[-1]["type"] == last
    assert [d["type"] for d in data].count(last) == 1
    return data


def chat_text(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def messages_text(data: list[Any]) -> str:
    return "".join(d["delta"].get("text", "") for d in data if d["type"] == "content_block_delta")


@pytest.fixture
async def gw(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> TestServer:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["providers"].append({"name": "claude", "kind": "anthropic", "api_key": {"env": "FAKE_UPSTREAM_KEY"},
                             "base_url": str(fake_anthropic.server.make_url("")).rstrip("/")})
    cfg["models"].insert(0, {"name": "claude-*", "provider": "claude"})
    return await make_gateway(cfg)


CHAT = {"messages": [{"role": "user", "content": "hello there"}], "stream": True}
MESSAGES = {"max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}], "stream": True}
RESPONSES = {"input": "hello there", "stream": True}


@pytest.mark.parametrize(("model", "expected"), [
    ("mock-1", "hello there"),  # the built-in mock
    ("gpt-4o", "Hello from the fake upstream"),  # an OpenAI-compatible provider, relayed as it came
    ("claude-3", "Hello from fake Claude"),  # an Anthropic provider, translated to Chat chunks
])
async def test_chat_completions_streams_are_well_formed(gw: TestServer, model: str, expected: str) -> None:
    chunks = check_chat(await consume(gw, "/v1/chat/completions", {**CHAT, "model": model}))
    assert expected in chat_text(chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


@pytest.mark.parametrize(("model", "expected"), [
    ("mock-1", "hello there"),  # the mock, translated to Messages events
    ("gpt-4o", "Hello from the fake upstream"),  # an OpenAI-compatible provider, translated
    ("claude-3", "Hello from fake Claude"),  # an Anthropic provider, relayed as it came
])
async def test_anthropic_messages_streams_are_well_formed(gw: TestServer, model: str, expected: str) -> None:
    data = check_named(await consume(gw, "/v1/messages", {**MESSAGES, "model": model}),
                       "message_start", "message_stop")
    assert expected in messages_text(data)
    assert [d["delta"]["stop_reason"] for d in data if d["type"] == "message_delta"] == ["end_turn"]


@pytest.mark.parametrize(("model", "expected"), [
    ("mock-1", "hello there"),
    ("gpt-4o", "Hello from the fake upstream"),
])
async def test_responses_streams_are_well_formed(gw: TestServer, model: str, expected: str) -> None:
    data = check_named(await consume(gw, "/v1/responses", {**RESPONSES, "model": model}),
                       "response.created", "response.completed")
    assert expected in "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
    numbers = [d["sequence_number"] for d in data]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


FailUpstream = Callable[[FakeOpenAI, FakeAnthropic], None]


def cut_openai(fake_openai: FakeOpenAI, _: FakeAnthropic) -> None:
    fake_openai.behaviour.reset_after_chunks = 3


def error_from_anthropic(_: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.behaviour.stream_error_after = 4


@pytest.mark.parametrize(("model", "fail"), [("gpt-4o", cut_openai), ("claude-3", error_from_anthropic)])
async def test_a_chat_stream_that_fails_midway_ends_with_one_error_event_and_no_done(
        gw: TestServer, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, model: str,
        fail: FailUpstream) -> None:
    fail(fake_openai, fake_anthropic)
    data = parsed(await consume(gw, "/v1/chat/completions", {**CHAT, "model": model}))
    assert "[DONE]" not in data
    assert set(data[-1]) == {"error"} and data[-1]["error"]["message"]
    assert all("error" not in d for d in data[:-1])


@pytest.mark.parametrize(("model", "fail"), [("gpt-4o", cut_openai), ("claude-3", error_from_anthropic)])
async def test_a_messages_stream_that_fails_midway_ends_with_one_error_event(
        gw: TestServer, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, model: str,
        fail: FailUpstream) -> None:
    fail(fake_openai, fake_anthropic)
    events = await consume(gw, "/v1/messages", {**MESSAGES, "model": model})
    data = parsed(events)
    assert [event.type for event in events] == [d["type"] for d in data]
    assert data[-1]["type"] == "error" and data[-1]["error"]["message"]
    assert "message_stop" not in [d["type"] for d in data]
