"""A Gemini provider end to end: the official openai and anthropic SDKs through the gateway
against the fake Gemini API (text, streams, tools with thought signatures, embeddings, errors,
passthrough with the client's key replaced)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import GatewayFactory, SDKClients, base_config, serve_fake
from tests.fake_gemini import GEMINI_KEY, FakeGemini

os.environ.setdefault("FAKE_GEMINI_KEY", GEMINI_KEY)
MODEL = "gemini-2.5-flash"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


@pytest.fixture
async def fake_gemini(aiohttp_server: Any) -> FakeGemini:
    return await serve_fake(aiohttp_server, FakeGemini())


def gemini_config(fake: FakeGemini, upstream_url: str) -> dict[str, Any]:
    cfg = base_config(upstream_url)
    cfg["providers"].append({"name": "google", "kind": "gemini", "api_key": {"env": "FAKE_GEMINI_KEY"},
                             "base_url": str(fake.server.make_url("")).rstrip("/"),  # type: ignore[attr-defined]
                             "timeouts": {"connect": 2, "first_byte": 2, "idle": 2}})
    cfg["models"].insert(0, {"name": "gemini-*", "provider": "google"})
    cfg["models"].insert(0, {"name": "text-embedding-*", "provider": "google"})
    return cfg


@pytest.fixture
async def gw(make_gateway: GatewayFactory, fake_gemini: FakeGemini) -> TestServer:
    return await make_gateway(gemini_config(fake_gemini, "http://127.0.0.1:9/v1"))


@pytest.fixture
async def claude(gw: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(gw.make_url("")).rstrip("/"), api_key="client-key",
                                      max_retries=0)
    yield client
    await client.close()


def _no_client_key(fake: FakeGemini) -> None:
    for rec in fake.requests:
        assert "client-key" not in str(rec.headers) and "client-key" not in rec.query


# --- Chat Completions clients --------------------------------------------------------------


async def test_chat_text_with_system_prompt_and_usage(gw: TestServer, openai_clients: SDKClients,
                                                      fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    done = await client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], max_tokens=40)
    assert done.choices[0].message.content == "Hello from fake Gemini"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.completion_tokens) == (11, 5)
    rec = fake_gemini.requests[-1]
    assert rec.path == f"/v1beta/models/{MODEL}:generateContent" and rec.query == ""
    assert rec.headers["x-goog-api-key"] == GEMINI_KEY
    sent = rec.json()
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert sent["generationConfig"] == {"maxOutputTokens": 40}
    _no_client_key(fake_gemini)


async def test_chat_stream_text_and_usage(gw: TestServer, openai_clients: SDKClients,
                                          fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    stream = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake Gemini"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 16
    rec = fake_gemini.requests[-1]
    assert (rec.path, rec.query) == (f"/v1beta/models/{MODEL}:streamGenerateContent", "alt=sse")
    assert "stream" not in rec.json() and "stream_options" not in rec.json()


async def test_chat_tool_round_trip_carries_the_thought_signature_back(
        gw: TestServer, openai_clients: SDKClients, fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    b = fake_gemini.behaviour
    b.words, b.function_calls, b.thought_signature = [], [{"name": "get_weather", "args": {"city": "Paris"}}], "c2ln"
    b.require_thought_signatures = True
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    stream = await client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL],
                                                  tool_choice="required", stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.id or ""
                slot["name"] += (call.function.name or "") if call.function else ""
                slot["arguments"] += (call.function.arguments or "") if call.function else ""
    assert finish == "tool_calls"
    assert [(c["name"], orjson.loads(c["arguments"])) for c in calls.values()] == [("get_weather", {"city": "Paris"})]
    sent = fake_gemini.requests[-1].json()
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    call = calls[0]
    messages += [{"role": "assistant", "tool_calls": [{"id": call["id"], "type": "function", "function": {
        "name": call["name"], "arguments": call["arguments"]}}]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "18C"}]
    b.function_calls, b.words = [], ["It", "is", "18C"]
    done = await client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert done.choices[0].message.content == "It is 18C"
    model_turn, answer_turn = fake_gemini.requests[-1].json()["contents"][1:]
    assert model_turn["parts"] == [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                                    "thoughtSignature": "c2ln"}]
    assert answer_turn["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}}]


async def test_chat_safety_stop_is_content_filter(gw: TestServer, openai_clients: SDKClients,
                                                  fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    fake_gemini.behaviour.finish_reason = "SAFETY"
    done = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert done.choices[0].finish_reason == "content_filter"


async def test_embeddings_through_batch_embed_contents(gw: TestServer, openai_clients: SDKClients,
                                                       fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    # The SDK asks for base64 and decodes it: the vectors arrive as floats.
    result = await client.embeddings.create(model="text-embedding-004", input=["one", "two words"])
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert result.data[0].embedding != result.data[1].embedding
    assert result.model == "text-embedding-004" and result.usage.prompt_tokens > 0
    rec = fake_gemini.requests[-1]
    assert rec.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert [r["content"] for r in rec.json()["requests"]] == [{"parts": [{"text": "one"}]},
                                                              {"parts": [{"text": "two words"}]}]
    floats = await client.embeddings.create(model="text-embedding-004", input="one", encoding_format="float",
                                            dimensions=4)
    assert len(floats.data[0].embedding) == 4
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding[:4], abs=1e-6)


async def test_errors_reach_chat_clients_in_openai_shape_without_the_key(
        gw: TestServer, openai_clients: SDKClients, fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    fake_gemini.behaviour.status = 429
    fake_gemini.behaviour.error_headers = {"retry-after": "7"}
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.response.headers["retry-after"] == "7"
    error = caught.value.response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "RESOURCE_EXHAUSTED"
    assert GEMINI_KEY not in caught.value.response.text


async def test_count_tokens_is_a_local_estimate(claude: anthropic.AsyncAnthropic, fake_gemini: FakeGemini) -> None:
    counted = await claude.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hello there"}])
    assert counted.input_tokens > 0
    assert fake_gemini.requests == []


# --- Anthropic Messages clients (through the Chat hub) -----------------------------------


async def test_messages_text_through_the_hub(claude: anthropic.AsyncAnthropic, fake_gemini: FakeGemini) -> None:
    msg = await claude.messages.create(model=MODEL, max_tokens=50, system="Be brief.",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from fake Gemini"
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (11, 5)
    sent = fake_gemini.requests[-1].json()
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["generationConfig"]["maxOutputTokens"] == 50
    _no_client_key(fake_gemini)


async def test_messages_stream_through_the_hub(claude: anthropic.AsyncAnthropic, fake_gemini: FakeGemini) -> None:
    async with claude.messages.stream(model=MODEL, max_tokens=50,
                                      messages=[{"role": "user", "content": "Hi"}]) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from fake Gemini"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 5)
    assert fake_gemini.requests[-1].query == "alt=sse"


async def test_messages_tool_use_stream_and_round_trip_through_the_hub(
        claude: anthropic.AsyncAnthropic, fake_gemini: FakeGemini) -> None:
    b = fake_gemini.behaviour
    b.words, b.function_calls, b.thought_signature = [], [{"name": "get_weather", "args": {"city": "Rome"}}], "c2ln"
    b.require_thought_signatures = True
    tool = {"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    async with claude.messages.stream(model=MODEL, max_tokens=50, tools=[tool],  # type: ignore[list-item]
                                      messages=[{"role": "user", "content": "Weather?"}]) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    use = final.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"city": "Rome"}
    b.function_calls, b.words = [], ["Sunny"]
    msg = await claude.messages.create(model=MODEL, max_tokens=50, tools=[tool], messages=[  # type: ignore[list-item]
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}])
    assert msg.content[0].text == "Sunny"  # type: ignore[union-attr]
    model_turn = fake_gemini.requests[-1].json()["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "c2ln"


async def test_errors_reach_messages_clients_in_anthropic_shape(claude: anthropic.AsyncAnthropic,
                                                                fake_gemini: FakeGemini) -> None:
    fake_gemini.behaviour.status = 503
    with pytest.raises(anthropic.APIStatusError) as caught:
        await claude.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["message"] == "fake failure 503"


# --- passthrough ---------------------------------------------------------------------------


async def test_passthrough_replaces_the_clients_key_with_the_providers(
        make_gateway: GatewayFactory, fake_gemini: FakeGemini) -> None:
    cfg = gemini_config(fake_gemini, "http://127.0.0.1:9/v1")
    cfg["models"] = [{"name": "*", "provider": "google"}]
    gw = await make_gateway(cfg)
    url = str(gw.make_url(f"/v1beta/models/{MODEL}:generateContent")) + "?key=client-key&alt=json&k%65y=client-key"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session, session.post(
            url, data=orjson.dumps(body),
            headers={"Content-Type": "application/json", "x-goog-api-key": "client-key"}) as resp:
        status, answer = resp.status, await resp.json()
    assert status == 200 and answer["candidates"][0]["content"]["parts"] == [{"text": "Hello from fake Gemini"}]
    rec = fake_gemini.requests[-1]
    assert rec.path == f"/v1beta/models/{MODEL}:generateContent" and rec.query == "alt=json"
    assert rec.headers["x-goog-api-key"] == GEMINI_KEY
    _no_client_key(fake_gemini)


# --- Responses clients (through the Chat hub) --------------------------------------------


async def test_responses_text_and_stream_through_the_hub(gw: TestServer, openai_clients: SDKClients,
                                                         fake_gemini: FakeGemini) -> None:
    _, client = openai_clients(gw)
    done = await client.responses.create(model=MODEL, input="Hi", instructions="Be brief.", store=False)
    assert done.output_text == "Hello from fake Gemini" and done.status == "completed"
    assert done.usage is not None and (done.usage.input_tokens, done.usage.output_tokens) == (11, 5)
    assert fake_gemini.requests[-1].json()["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    stream = await client.responses.create(model=MODEL, input="Hi", stream=True, store=False)
    events = [event async for event in stream]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from fake Gemini"
    assert events[-1].type == "response.completed"
    assert fake_gemini.requests[-1].query == "alt=sse"
