"""The built-in mock behind the shipped gateway.toml, as the official SDKs see it: its errors
arrive like any provider's (own status, client's format, not retried), and `n` is honoured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer

from gateway.config import load_config
from tests.conftest import GatewayFactory

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "gateway.toml"


@pytest.fixture
async def shipped(make_gateway: GatewayFactory) -> TestServer:
    return await make_gateway(load_config(SHIPPED_CONFIG))


@pytest.fixture
async def openai_client(shipped: TestServer) -> Any:
    """The SDK as users create it: it retries 5xx (twice), so a retried error shows as more requests."""
    client = openai.AsyncOpenAI(base_url=str(shipped.make_url("/v1")), api_key="unused", max_retries=2)
    yield client
    await client.close()


@pytest.fixture
async def anthropic_client(shipped: TestServer) -> Any:
    client = anthropic.AsyncAnthropic(base_url=str(shipped.make_url("")), api_key="unused", max_retries=2)
    yield client
    await client.close()


CHAT_MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("body", "needle"), [
    ({"messages": []}, "messages"),
    ({"messages": "just a string"}, "messages"),
    ({}, "messages"),
    ({"messages": HELLO, "n": 0}, "n must be"),
    ({"messages": HELLO, "n": "2"}, "n must be"),
])
async def test_chat_bodies_the_mock_rejects_are_400s_the_sdk_does_not_retry(
        openai_client: Any, access_log: list[bytes], body: dict[str, Any], needle: str, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await openai_client.post("/chat/completions", cast_to=object,
                                 body={"model": CHAT_MODEL, "stream": stream, **body})
    assert info.value.status_code == 400
    assert needle in info.value.message
    assert len(access_log) == 1  # one request: a 400 is not retried


async def test_chat_messages_empty_through_the_typed_sdk_call(openai_client: Any, access_log: list[bytes]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await openai_client.chat.completions.create(model=CHAT_MODEL, messages=[])
    assert info.value.status_code == 400
    assert info.value.body["param"] == "messages"  # type: ignore[index]
    assert len(access_log) == 1


@pytest.mark.parametrize("dimensions", [0, 9000])
async def test_embeddings_with_bad_dimensions_are_400(openai_client: Any, access_log: list[bytes],
                                                      dimensions: int) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await openai_client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=dimensions)
    assert info.value.status_code == 400 and "dimensions" in info.value.message
    assert len(access_log) == 1


async def test_responses_input_of_the_wrong_type_is_400(openai_client: Any, access_log: list[bytes]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await openai_client.post("/responses", cast_to=object, body={"model": CHAT_MODEL, "input": 5})
    assert info.value.status_code == 400 and "input" in info.value.message
    assert len(access_log) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_messages_empty_is_an_anthropic_400(anthropic_client: Any, access_log: list[bytes],
                                                           stream: bool) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[],
                                               stream=stream)
    assert info.value.status_code == 400
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert len(access_log) == 1


async def test_n_gives_n_choices(openai_client: Any) -> None:
    reply = await openai_client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, n=3)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.content and c.finish_reason == "stop" for c in reply.choices)
    one = await openai_client.chat.completions.create(model=CHAT_MODEL, messages=HELLO)
    assert len(one.choices) == 1
    assert reply.usage.completion_tokens == 3 * one.usage.completion_tokens
    assert reply.usage.prompt_tokens == one.usage.prompt_tokens


async def test_n_streams_every_choice_with_its_index(openai_client: Any) -> None:
    stream = await openai_client.chat.completions.create(model=CHAT_MODEL, messages=HELLO, n=2, stream=True,
                                                         stream_options={"include_usage": True})
    text: dict[int, str] = {}
    finish: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text[choice.index] = text.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert sorted(text) == [0, 1] and text[0] == text[1] and text[0].startswith("This is the mock")
    assert finish == {0: "stop", 1: "stop"}
    assert usage is not None and usage.completion_tokens == 2 * len(text[0].split())
