"""Both official SDKs against both kinds of provider: text, tools, images, streaming, usage, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import UPSTREAM_KEY, GatewayFactory, SDKClients, base_config
from tests.fake_upstreams import FakeAnthropic, FakeOpenAI

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL_OPENAI = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_TOOL_ANTHROPIC = {"name": "get_weather", "description": "Weather for a city",
                          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                           "required": ["city"]}}


@pytest.fixture
async def gw(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> TestServer:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["providers"].append({"name": "claude", "kind": "anthropic", "api_key": {"env": "FAKE_UPSTREAM_KEY"},
                             "base_url": str(fake_anthropic.server.make_url("")).rstrip("/")})
    cfg["models"].insert(0, {"name": "claude-*", "provider": "claude"})
    return await make_gateway(cfg)


@pytest.fixture
async def claude(gw: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(gw.make_url("")).rstrip("/"), api_key="client-key",
                                      max_retries=0)
    yield client
    await client.close()


# --- Anthropic SDK → OpenAI-compatible provider ------------------------------------------------


async def test_anthropic_sdk_text_on_openai_provider(claude: anthropic.AsyncAnthropic,
                                                     fake_openai: FakeOpenAI) -> None:
    msg = await claude.messages.create(model="gpt-4o", max_tokens=50, system="Be brief.",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from the fake upstream"
    assert msg.stop_reason == "end_turn"
    # 11 prompt tokens of which 3 cached: Anthropic counts them apart, without double counting.
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (8, 3, 5)
    sent = fake_openai.requests[-1].json()
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_completion_tokens"] == 50
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_anthropic_sdk_stream_final_message_and_usage_on_openai_provider(
        claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(model="gpt-4o", max_tokens=50,
                                      messages=[{"role": "user", "content": "Hi"}]) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from the fake upstream"
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (8, 3, 5)


async def test_anthropic_sdk_tool_round_trip_on_openai_provider(claude: anthropic.AsyncAnthropic,
                                                                fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.words = []
    fake_openai.behaviour.tool_calls = [{"name": "get_weather", "arguments": '{"city": "Paris"}'},
                                        {"name": "get_weather", "arguments": '{"city": "Rome"}'}]
    async with claude.messages.stream(model="gpt-4o", max_tokens=50, tools=[WEATHER_TOOL_ANTHROPIC],
                                      tool_choice={"type": "any"},
                                      messages=[{"role": "user", "content": "Weather?"}]) as stream:
        final = await stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"city": "Paris"}, {"city": "Rome"}]  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    sent = fake_openai.requests[-1].json()
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL_ANTHROPIC["input_schema"]
    # Second turn: the results go back as tool messages, the image as a data URL.
    fake_openai.behaviour.tool_calls = []
    fake_openai.behaviour.words = ["Sunny", "in", "both"]
    reply = await claude.messages.create(model="gpt-4o", max_tokens=50, tools=[WEATHER_TOOL_ANTHROPIC], messages=[
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": u.id, "name": u.name, "input": u.input}
                                          for u in uses]},  # type: ignore[union-attr]
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},  # type: ignore[union-attr]
            {"type": "tool_result", "tool_use_id": uses[1].id, "content": "sunny too"},  # type: ignore[union-attr]
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
            {"type": "text", "text": "and this picture?"}]}])
    assert reply.content[0].text == "Sunny in both"  # type: ignore[union-attr]
    sent = fake_openai.requests[-1].json()
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    assert [c["id"] for c in sent["messages"][1]["tool_calls"]] == [u.id for u in uses]
    assert sent["messages"][2]["tool_call_id"] == uses[0].id  # type: ignore[union-attr]
    image = next(p for p in sent["messages"][4]["content"] if p["type"] == "image_url")
    assert image["image_url"]["url"] == f"data:image/png;base64,{PNG_B64}"


async def test_anthropic_sdk_on_the_mock(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(model="mock-1", max_tokens=50,
                                      messages=[{"role": "user", "content": "count to three"}]) as stream:
        final = await stream.get_final_message()
    assert "count to three" in final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == len(final.content[0].text.split())  # type: ignore[union-attr]


async def test_count_tokens_estimated_locally_for_openai_provider(claude: anthropic.AsyncAnthropic,
                                                                  fake_openai: FakeOpenAI) -> None:
    small = await claude.messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    big = await claude.messages.count_tokens(model="gpt-4o", messages=[{"role": "user", "content": "word " * 400}])
    assert 0 < small.input_tokens < big.input_tokens
    assert 300 <= big.input_tokens <= 600
    assert fake_openai.requests == []


async def test_openai_upstream_error_reaches_anthropic_client_in_its_shape(claude: anthropic.AsyncAnthropic,
                                                                           fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.status = 429
    with pytest.raises(anthropic.RateLimitError) as info:
        await claude.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_openai_stream_cut_becomes_anthropic_error_event(claude: anthropic.AsyncAnthropic,
                                                               fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.reset_after_chunks = 3
    with pytest.raises(anthropic.APIStatusError):
        async with claude.messages.stream(model="gpt-4o", max_tokens=5,
                                          messages=[{"role": "user", "content": "x"}]) as stream:
            async for _ in stream:
                pass


# --- Anthropic SDK → Anthropic provider (native) -----------------------------------------------


async def test_anthropic_native_replaces_key_and_passes_version_and_beta(claude: anthropic.AsyncAnthropic,
                                                                        fake_anthropic: FakeAnthropic) -> None:
    msg = await claude.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "Hi"}],
                                       extra_headers={"anthropic-beta": "context-1m-2025-08-07",
                                                      "anthropic-version": "2099-01-01"})
    assert msg.content[0].text == "Hello from fake Claude"  # type: ignore[union-attr]
    sent = fake_anthropic.requests[-1]
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.headers["anthropic-version"] == "2099-01-01"  # the client's value passes through
    assert sent.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert "client-key" not in str(sent.headers)
    tokens = await claude.messages.count_tokens(model="claude-x", messages=[{"role": "user", "content": "Hi"}])
    assert tokens.input_tokens == 1234  # forwarded to the provider's endpoint


async def test_anthropic_native_stream_usage_is_accounted(claude: anthropic.AsyncAnthropic,
                                                          access_log: list[bytes]) -> None:
    async with claude.messages.stream(model="claude-x", max_tokens=10,
                                      messages=[{"role": "user", "content": "Hi"}]) as stream:
        final = await stream.get_final_message()
    assert final.usage.cache_read_input_tokens == 100
    record = orjson.loads(access_log[-1])
    assert (record["input_tokens"], record["cached_tokens"], record["output_tokens"]) == (150, 100, 7)


# --- OpenAI SDK → Anthropic provider -------------------------------------------------------------


@pytest.fixture
def oai(gw: TestServer, openai_clients: SDKClients) -> openai.AsyncOpenAI:
    return openai_clients(gw)[1]  # type: ignore[no-any-return]


async def test_openai_sdk_text_and_usage_on_anthropic_provider(oai: openai.AsyncOpenAI,
                                                               fake_anthropic: FakeAnthropic) -> None:
    reply = await oai.chat.completions.create(model="claude-x", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], stop=["END"], user="u1")
    assert reply.choices[0].message.content == "Hello from fake Claude"
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens == 150 and usage.prompt_tokens_details.cached_tokens == 100  # type: ignore[union-attr]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    sent = fake_anthropic.requests[-1].json()
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent["max_tokens"] == 4096  # the documented default
    assert sent["stop_sequences"] == ["END"] and sent["metadata"] == {"user_id": "u1"}
    assert fake_anthropic.requests[-1].headers["anthropic-version"] == "2023-06-01"  # default for OpenAI clients


async def test_openai_sdk_stream_on_anthropic_provider_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="claude-x", stream=True, stream_options={"include_usage": True},
                                               messages=[{"role": "user", "content": "Hi"}])
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake Claude"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 150


async def test_openai_sdk_parallel_tools_thinking_and_images_on_anthropic_provider(
        oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.behaviour.content = [
        {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}]
    fake_anthropic.behaviour.stop_reason = "tool_use"
    messages: list[Any] = [{"role": "user", "content": [
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]
    stream = await oai.chat.completions.create(model="claude-x", stream=True, tools=[WEATHER_TOOL_OPENAI],
                                               tool_choice="auto", parallel_tool_calls=False, messages=messages)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += (tc.function.name or "") if tc.function else ""
            entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls"
    assert [(c["id"], orjson.loads(c["arguments"])) for c in calls.values()] == [
        ("toolu_1", {"city": "Paris"}), ("toolu_2", {"city": "Rome"})]
    sent = fake_anthropic.requests[-1].json()
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    sources = [b["source"] for b in sent["messages"][0]["content"] if b["type"] == "image"]
    assert sources == [{"type": "base64", "media_type": "image/png", "data": PNG_B64},
                       {"type": "url", "url": "https://example.com/cat.jpg"}]
    # Send the results back: all tool results in one user turn, ids kept.
    messages += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for c in calls.values()]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "rainy"}]
    fake_anthropic.behaviour.content = [{"type": "text", "text": "Mixed"}]
    fake_anthropic.behaviour.stop_reason = "end_turn"
    reply = await oai.chat.completions.create(model="claude-x", tools=[WEATHER_TOOL_OPENAI], messages=messages)
    assert reply.choices[0].message.content == "Mixed"
    sent = fake_anthropic.requests[-1].json()
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in sent["messages"][2]["content"]] == ["toolu_1", "toolu_2"]
    assert [b["input"] for b in sent["messages"][1]["content"] if b["type"] == "tool_use"] == [
        {"city": "Paris"}, {"city": "Rome"}]


async def test_openai_sdk_non_stream_tool_calls_on_anthropic_provider(oai: openai.AsyncOpenAI,
                                                                     fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.behaviour.content = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}}]
    fake_anthropic.behaviour.stop_reason = "tool_use"
    reply = await oai.chat.completions.create(model="claude-x", tools=[WEATHER_TOOL_OPENAI],
                                              tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                              messages=[{"role": "user", "content": "Oslo?"}])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == "toolu_9" and orjson.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert fake_anthropic.requests[-1].json()["tool_choice"] == {"type": "tool", "name": "get_weather"}


@pytest.mark.parametrize(("status", "error_type", "expected_status"), [
    (529, "overloaded_error", 503), (429, "rate_limit_error", 429), (401, "authentication_error", 401),
    (400, "invalid_request_error", 400)])
async def test_anthropic_errors_reach_openai_client_in_its_shape(
        oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic, status: int, error_type: str,
        expected_status: int) -> None:
    fake_anthropic.behaviour.status = status
    fake_anthropic.behaviour.error_type = error_type
    with pytest.raises(openai.APIStatusError) as info:
        await oai.chat.completions.create(model="claude-x", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == expected_status
    assert error_type in str(info.value.body)


async def test_anthropic_mid_stream_error_reaches_openai_client_without_done(
        oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.behaviour.stream_error_after = 4
    stream = await oai.chat.completions.create(model="claude-x", stream=True,
                                               messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIError, match="Overloaded"):
        async for _ in stream:
            pass


async def test_anthropic_cut_stream_reaches_openai_client_as_error(
        oai: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.behaviour.cut_after = 5
    stream = await oai.chat.completions.create(model="claude-x", stream=True,
                                               messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    await asyncio.sleep(0)
