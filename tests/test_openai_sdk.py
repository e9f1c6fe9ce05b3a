"""The official openai SDK, sync and async, against the gateway (fake upstream and built-in mock)."""

from __future__ import annotations

import asyncio
import base64
import struct

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import UPSTREAM_KEY, SDKClients
from tests.fake_upstreams import FakeOpenAI


@pytest.fixture
def clients(openai_clients: SDKClients) -> SDKClients:
    return openai_clients


async def test_async_chat_completion_relays_upstream_answer_and_usage(clients: SDKClients, gateway: TestServer, fake_openai: FakeOpenAI,
                                                                       access_log: list[bytes]) -> None:
    _, client = clients(gateway)
    reply = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == "Hello from the fake upstream"
    assert reply.usage is not None and reply.usage.prompt_tokens == 11 and reply.usage.completion_tokens == 5
    sent = fake_openai.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.json()["model"] == "gpt-4o"
    assert b'"input_tokens":11' in access_log[-1] and b'"output_tokens":5' in access_log[-1]


async def test_unchanged_body_is_forwarded_byte_for_byte(clients: SDKClients, gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    raw = b'{"model": "gpt-4o",   "messages": [{"role": "user", "content": "exact bytes"}]}'
    async with aiohttp.ClientSession() as s, s.post(gateway.make_url("/v1/chat/completions"), data=raw,
                      headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 200
    assert fake_openai.requests[-1].body == raw


async def test_sync_client_streaming_gets_every_chunk(clients: SDKClients, gateway: TestServer) -> None:
    client, _ = clients(gateway)

    def run() -> list[str]:
        stream = client.chat.completions.create(model="gpt-4o", stream=True,
                                                messages=[{"role": "user", "content": "Hi"}])
        return [c.choices[0].delta.content or "" for c in stream if c.choices]

    pieces = await asyncio.to_thread(run)
    assert "".join(pieces) == "Hello from the fake upstream"
    assert len([p for p in pieces if p]) == 5


async def test_stream_without_include_usage_hides_the_usage_chunk_but_accounts_it(clients: SDKClients,
        gateway: TestServer, fake_openai: FakeOpenAI, access_log: list[bytes]) -> None:
    _, client = clients(gateway)
    stream = await client.chat.completions.create(model="gpt-4o", stream=True,
                                                  messages=[{"role": "user", "content": "Hi"}])
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks), "the usage chunk the gateway asked for must not reach the client"
    assert all(c.usage is None for c in chunks)
    assert fake_openai.requests[-1].json()["stream_options"] == {"include_usage": True}
    assert b'"input_tokens":11' in access_log[-1] and b'"cached_tokens":3' in access_log[-1]


async def test_stream_with_include_usage_passes_the_usage_chunk(clients: SDKClients, gateway: TestServer) -> None:
    _, client = clients(gateway)
    stream = await client.chat.completions.create(model="gpt-4o", stream=True, stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "Hi"}])
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 16


async def test_model_rename_defaults_and_overrides_reach_upstream(clients: SDKClients, gateway: TestServer, fake_openai: FakeOpenAI) -> None:
    _, client = clients(gateway)
    await client.chat.completions.create(model="renamed", user="client-user",
                                         messages=[{"role": "user", "content": "Hi"}])
    sent = fake_openai.requests[-1].json()
    assert sent["model"] == "upstream-model"
    assert sent["temperature"] == 0.2  # default applied when absent
    assert sent["user"] == "gateway"  # override always wins
    await client.chat.completions.create(model="renamed", temperature=0.9, messages=[{"role": "user", "content": "x"}])
    assert fake_openai.requests[-1].json()["temperature"] == 0.9


async def test_responses_route_native_streaming_and_not(clients: SDKClients, gateway: TestServer, access_log: list[bytes]) -> None:
    _, client = clients(gateway)
    resp = await client.responses.create(model="gpt-4o", input="Hi")
    assert resp.output_text == "Hello from the fake upstream"
    assert resp.usage is not None and resp.usage.input_tokens == 9
    async with client.responses.stream(model="gpt-4o", input="Hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.output_text == "Hello from the fake upstream"
    assert b'"input_tokens":9' in access_log[-1] and b'"stream":true' in access_log[-1]


async def test_embeddings_route_native(clients: SDKClients, gateway: TestServer) -> None:
    _, client = clients(gateway)
    resp = await client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    assert resp.data[0].embedding == [0.5, 0.25]
    assert resp.usage.prompt_tokens == 4


async def test_models_route_lists_configured_models(clients: SDKClients, gateway: TestServer) -> None:
    _, client = clients(gateway)
    page = await client.models.list()
    assert [m.id for m in page.data] == ["renamed"]
    model = await client.models.retrieve("renamed")
    assert model.owned_by == "fake"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("absent")


# --- the built-in mock -----------------------------------------------------------------------


async def test_mock_streams_several_chunks_with_consistent_usage(clients: SDKClients, gateway: TestServer) -> None:
    _, client = clients(gateway)
    full = await client.chat.completions.create(model="mock-1", messages=[{"role": "user", "content": "tell me a joke"}])
    stream = await client.chat.completions.create(model="mock-1", stream=True, stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "tell me a joke"}])
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert "tell me a joke" in text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
    assert full.usage is not None and chunks[-1].usage == full.usage
    assert full.usage.completion_tokens == len(text.split())
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens


async def test_mock_respects_max_tokens_with_length_finish(clients: SDKClients, gateway: TestServer) -> None:
    _, client = clients(gateway)
    reply = await client.chat.completions.create(model="mock-1", max_completion_tokens=2,
                                                 messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 2


async def test_mock_embeddings_have_requested_dimension_in_base64_and_float(clients: SDKClients, gateway: TestServer) -> None:
    client, aclient = clients(gateway)
    # The SDK asks for base64 by default and decodes it itself.
    resp = await aclient.embeddings.create(model="mock-embed", input=["a", "b"], dimensions=12)
    assert [len(d.embedding) for d in resp.data] == [12, 12]
    assert abs(sum(x * x for x in resp.data[0].embedding) - 1.0) < 1e-5
    floats = await aclient.embeddings.create(model="mock-embed", input="a", dimensions=12, encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(resp.data[0].embedding, rel=1e-6)
    raw = await asyncio.to_thread(lambda: client.embeddings.with_raw_response.create(
        model="mock-embed", input="a", dimensions=4, encoding_format="base64").http_response.json())
    assert len(struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))) == 4


async def test_mock_responses_stream_is_a_full_event_sequence(clients: SDKClients, gateway: TestServer) -> None:
    _, client = clients(gateway)
    async with client.responses.stream(model="mock-1", input="write a haiku") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") >= 3
    assert "write a haiku" in final.output_text
    assert final.usage is not None and final.usage.output_tokens == len(final.output_text.split())
