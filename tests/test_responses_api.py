"""The Responses API on providers without it (issue 10), end to end with the official openai SDK:
an OpenAI-compatible server with only Chat Completions (`responses = "translate"`) and an
Anthropic server through the Chat hub; the state the gateway keeps for them (previous_response_id,
GET/DELETE/input_items, owner scoping, restart persistence, redis); native providers untouched."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from gateway.config import parse_config
from gateway.formats.codecs import select_codec
from gateway.providers import build_provider
from gateway.routes import PASSTHROUGH, RESPONSES, RESPONSES_ITEM_SPEC, RouteTable
from tests.conftest import GatewayFactory, free_port, serve_fake
from tests.fake_gemini import GEMINI_KEY, FakeGemini
from tests.fake_upstreams import FakeAnthropic, FakeOpenAI
from tests.test_responses_store import redis_url  # noqa: F401  (a real redis-server, module-scoped)

os.environ.setdefault("ALICE_KEY", "gw-key-alice-0123456789")
os.environ.setdefault("BOB_KEY", "gw-key-bob-0123456789")

TRANSLATED = ("chat-model", "claude-3")  # an OpenAI-compatible Chat-only server; Anthropic via the hub
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}


def gateway_config(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, tmp_path: Path,
                   **extra: Any) -> dict[str, Any]:
    """`chat-model` and `*` on a Chat-only server, `claude-*` on Anthropic, `native-model` on a
    server with its own /v1/responses."""
    upstream = str(fake_openai.server.make_url("/v1"))
    key = {"env": "FAKE_UPSTREAM_KEY"}
    timeouts = {"connect": 2, "first_byte": 2, "idle": 2}
    cfg: dict[str, Any] = {
        "server": {"port": free_port(), "admin_port": 0},
        "providers": [
            {"name": "chatonly", "kind": "openai", "base_url": upstream, "api_key": key, "timeouts": timeouts,
             "responses": "translate"},
            {"name": "native", "kind": "openai", "base_url": upstream, "api_key": key, "timeouts": timeouts,
             "responses": "native"},
            {"name": "claude", "kind": "anthropic", "api_key": key, "timeouts": timeouts,
             "base_url": str(fake_anthropic.server.make_url("")).rstrip("/")},
        ],
        "models": [
            {"name": "chat-model", "provider": "chatonly"},
            {"name": "claude-*", "provider": "claude"},
            {"name": "native-model", "provider": "native"},
            {"name": "*", "provider": "chatonly"},
        ],
        "observability": {"access_log": "json"},
    }
    cfg.update(extra)
    return cfg


Start = Callable[..., Any]


@pytest.fixture
def start(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic,
          tmp_path: Path) -> Start:
    """Start a gateway whose config file would be tmp_path/gateway.toml (the sqlite store goes
    beside it)."""

    async def run(**extra: Any) -> TestServer:
        cfg = gateway_config(fake_openai, fake_anthropic, tmp_path, **extra)
        return await make_gateway(parse_config(cfg, source=str(tmp_path / "gateway.toml"), base_dir=tmp_path))

    return run


@pytest.fixture
async def sdk() -> AsyncIterator[Callable[..., openai.AsyncOpenAI]]:
    made: list[openai.AsyncOpenAI] = []

    def make(server: TestServer, key: str = "client-key") -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=key, max_retries=0)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def expected_text(model: str) -> str:
    return "Hello from fake Claude" if model.startswith("claude") else "Hello from the fake upstream"


def upstream_paths(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> list[str]:
    return [r.path for r in fake_openai.requests + fake_anthropic.requests]


# --- capability: which codec serves Responses ------------------------------------------------


def _provider(**cfg: Any) -> Any:
    config = parse_config({"providers": [{"name": "p", "api_key": {"env": "FAKE_UPSTREAM_KEY"}, **cfg}]})
    return build_provider(config.providers[0])


def test_responses_are_native_on_api_openai_com_and_translated_elsewhere_unless_configured() -> None:
    assert _provider(kind="openai").native_responses
    assert not _provider(kind="openai", base_url="http://localhost:8000/v1").native_responses
    assert _provider(kind="openai", base_url="http://localhost:8000/v1", responses="native").native_responses
    assert not _provider(kind="openai", responses="translate").native_responses
    assert not _provider(kind="anthropic").native_responses
    assert parse_config({"providers": [{"name": "m", "kind": "mock"}]}).providers[0].kind == "mock"
    assert build_provider(parse_config({"providers": [{"name": "m", "kind": "mock"}]}).providers[0]).native_responses


def test_codec_is_chosen_by_capability() -> None:
    native = select_codec(RESPONSES, "openai", True)
    translated = select_codec(RESPONSES, "openai", False)
    hub = select_codec(RESPONSES, "anthropic", False)
    assert native.request is None and not native.stateful and native.upstream_route == "responses"
    assert translated.stateful and translated.upstream_route == "completions"
    assert hub.stateful and hub.upstream_route == "messages"
    # A family without a native Responses API is translated whatever the flag says.
    assert select_codec(RESPONSES, "anthropic", True) is hub


def test_stored_response_routes_match_by_suffix_and_leave_the_api_actions_to_passthrough() -> None:
    table = RouteTable({"/openai/responses": "responses"})
    item = table.match("/v1/responses/resp_1")
    assert item.spec is RESPONSES_ITEM_SPEC and item.item == "resp_1"
    listing = table.match("/v1/responses/resp_1/input_items")
    assert listing.spec is RESPONSES_ITEM_SPEC and listing.item == "resp_1"
    assert table.match("/openai/responses/resp_2/").item == "resp_2"
    for path in ("/v1/responses/compact", "/v1/responses/input_tokens", "/v1/responses/resp_1/cancel",
                 "/v1/responses/input_items", "/v1/other/resp_1"):
        assert table.match(path).route is PASSTHROUGH, path
    assert table.match("/v1/responses").route is RESPONSES


def test_a_redis_store_needs_a_url() -> None:
    with pytest.raises(Exception, match=r"responses\.redis_url"):
        parse_config({"responses": {"store": "redis"}})
    config = parse_config({"responses": {"store": "redis"}, "rate_limit": {"redis_url": {"env": "FAKE_UPSTREAM_KEY"}}})
    assert config.responses.store == "redis"


# --- translation end to end: create, stream=True, responses.stream() -----------------------


@pytest.mark.parametrize("model", TRANSLATED)
async def test_create_is_translated_and_never_reaches_a_responses_endpoint(
        start: Start, sdk: Any, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, model: str) -> None:
    client = sdk(await start())
    resp = await client.responses.create(model=model, input="Hi there", instructions="Be brief",
                                         max_output_tokens=50)
    assert resp.output_text == expected_text(model)
    assert resp.id.startswith("resp_") and resp.output[0].id.startswith("msg_")
    assert resp.status == "completed" and resp.model == model and resp.instructions == "Be brief"
    assert resp.usage is not None and resp.usage.output_tokens > 0
    assert "/v1/responses" not in upstream_paths(fake_openai, fake_anthropic)
    if model == "chat-model":
        sent = fake_openai.requests[-1].json()
        assert fake_openai.requests[-1].path == "/v1/chat/completions"
        assert sent["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi there"}]
        assert sent["max_completion_tokens"] == 50
        assert resp.usage.input_tokens == 11 and resp.usage.input_tokens_details.cached_tokens == 3
    else:
        sent = fake_anthropic.requests[-1].json()
        assert sent["system"] in ("Be brief", [{"type": "text", "text": "Be brief"}])
        assert sent["max_tokens"] == 50


@pytest.mark.parametrize("model", TRANSLATED)
async def test_streams_carry_the_full_event_sequence_and_end_as_the_plain_answer(
        start: Start, sdk: Any, model: str) -> None:
    client = sdk(await start())
    plain = await client.responses.create(model=model, input="Hi")
    events = [event async for event in await client.responses.create(model=model, input="Hi", stream=True)]
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == expected_text(model)
    assert events[0].response.id == events[-1].response.id
    async with client.responses.stream(model=model, input="Hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.output_text == plain.output_text == expected_text(model)
    assert final.usage == plain.usage
    assert [(i.type, i.status) for i in final.output] == [(i.type, i.status) for i in plain.output]


# --- state: previous_response_id with a tool round trip --------------------------------------


def _tool_call_upstream(model: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, on: bool) -> None:
    if model == "chat-model":
        fake_openai.behaviour.tool_calls = [{"name": "get_weather", "arguments": '{"city":"Paris"}'}] if on else []
        fake_openai.behaviour.words = [] if on else ["Sunny", "in", "Paris"]
    elif on:
        fake_anthropic.behaviour.content = [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                             "input": {"city": "Paris"}}]
        fake_anthropic.behaviour.stop_reason = "tool_use"
    else:
        fake_anthropic.behaviour.content = [{"type": "text", "text": "Sunny in Paris"}]
        fake_anthropic.behaviour.stop_reason = "end_turn"


@pytest.mark.parametrize("model", TRANSLATED)
@pytest.mark.parametrize("streamed", [False, True])
async def test_previous_response_id_rebuilds_the_conversation_with_a_tool_round_trip(
        start: Start, sdk: Any, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, model: str,
        streamed: bool) -> None:
    client = sdk(await start())
    _tool_call_upstream(model, fake_openai, fake_anthropic, on=True)
    if streamed:  # the first turn stored after a completed stream
        async with client.responses.stream(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL],
                                           instructions="Use tools") as stream:
            first = await stream.get_final_response()
    else:
        first = await client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL],
                                              instructions="Use tools")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and orjson.loads(call.arguments) == {"city": "Paris"}

    _tool_call_upstream(model, fake_openai, fake_anthropic, on=False)
    second = await client.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.output_text == "Sunny in Paris" and second.previous_response_id == first.id
    third = await client.responses.create(model=model, previous_response_id=second.id, input="Thanks!")
    assert third.output_text == "Sunny in Paris"

    if model == "chat-model":
        sent = fake_openai.requests[-1].json()["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
        assert sent[0]["content"] == "Weather in Paris?"  # instructions are not carried over
        assert sent[1]["tool_calls"][0]["id"] == call.call_id
        assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
        assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}
        assert sent[3]["content"] == "Sunny in Paris" and sent[4]["content"] == "Thanks!"
    else:
        sent = fake_anthropic.requests[-1].json()
        assert "system" not in sent
        roles = [(m["role"], [b["type"] for b in m["content"]] if isinstance(m["content"], list) else "text")
                 for m in sent["messages"]]
        assert roles[0][0] == "user" and roles[1:3] == [("assistant", ["tool_use"]), ("user", ["tool_result"])]
        assert sent["messages"][1]["content"][0]["id"] == call.call_id
        assert sent["messages"][2]["content"][0]["tool_use_id"] == call.call_id
        assert [m["role"] for m in sent["messages"]][3:] == ["assistant", "user"]
    items = await client.responses.input_items.list(third.id, order="asc")
    assert [i.type for i in items.data] == ["message", "function_call", "function_call_output", "message",
                                            "message"]


async def test_unknown_previous_response_id_is_404_and_without_a_store_400(
        start: Start, sdk: Any, fake_openai: FakeOpenAI) -> None:
    client = sdk(await start())
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(model="chat-model", previous_response_id="resp_nope", input="Hi")
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "previous_response_not_found"
    assert body["param"] == "previous_response_id" and "resp_nope" in body["message"]
    off = sdk(await start(responses={"store": "off"}))
    with pytest.raises(openai.BadRequestError, match="store is off"):
        await off.responses.create(model="chat-model", previous_response_id="resp_nope", input="Hi")
    assert [r.path for r in fake_openai.requests] == []  # nothing went upstream


async def test_background_and_conversation_are_a_clear_400_on_a_translating_provider(
        start: Start, sdk: Any) -> None:
    client = sdk(await start())
    with pytest.raises(openai.BadRequestError, match="background"):
        await client.responses.create(model="claude-3", input="Hi", background=True)
    with pytest.raises(openai.BadRequestError, match="conversation"):
        await client.responses.create(model="chat-model", input="Hi", conversation="conv_1")
    with pytest.raises(openai.BadRequestError, match="web_search"):
        await client.responses.create(model="chat-model", input="Hi", tools=[{"type": "web_search"}])


# --- GET / DELETE / input_items, owners, store: false, failed streams ---------------------------


async def test_get_input_items_and_delete_a_stored_response(start: Start, sdk: Any) -> None:
    client = sdk(await start())
    created = await client.responses.create(model="claude-3", input="Hi", metadata={"k": "v"})
    got = await client.responses.retrieve(created.id)
    assert got.model_dump() == created.model_dump()
    items = await client.responses.input_items.list(created.id)
    assert len(items.data) == 1 and items.data[0].type == "message"
    assert items.data[0].content[0].type == "input_text" and items.data[0].content[0].text == "Hi"
    await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve(created.id)
    assert isinstance(caught.value.body, dict) and created.id in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.input_items.list(created.id)


async def test_a_stored_response_belongs_to_the_key_that_created_it(start: Start, sdk: Any) -> None:
    auth = {"mode": "api_key", "keys": [{"name": "alice", "key": {"env": "ALICE_KEY"}},
                                        {"name": "bob", "key": {"env": "BOB_KEY"}}]}
    server = await start(auth=auth)
    alice, bob = sdk(server, os.environ["ALICE_KEY"]), sdk(server, os.environ["BOB_KEY"])
    created = await alice.responses.create(model="chat-model", input="Hi")
    for attempt in (lambda: bob.responses.retrieve(created.id), lambda: bob.responses.delete(created.id),
                    lambda: bob.responses.input_items.list(created.id),
                    lambda: bob.responses.create(model="chat-model", previous_response_id=created.id, input="Hi")):
        with pytest.raises(openai.NotFoundError):
            await attempt()
    assert (await alice.responses.retrieve(created.id)).id == created.id


async def test_store_false_and_failed_streams_are_not_stored(
        start: Start, sdk: Any, fake_openai: FakeOpenAI) -> None:
    client = sdk(await start())
    unstored = await client.responses.create(model="chat-model", input="Hi", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(unstored.id)
    fake_openai.behaviour.reset_after_chunks = 3
    events = [e async for e in await client.responses.create(model="chat-model", input="Hi", stream=True)]
    assert events[-1].type == "response.failed"
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(events[-1].response.id)


async def test_stored_responses_survive_a_restart_with_sqlite(start: Start, sdk: Any, tmp_path: Path) -> None:
    first = await start()
    created = await sdk(first).responses.create(model="chat-model", input="Remember me")
    await first.close()
    assert (tmp_path / "responses.sqlite3").is_file()  # beside the config file
    client = sdk(await start())
    assert (await client.responses.retrieve(created.id)).output_text == created.output_text
    follow = await client.responses.create(model="chat-model", previous_response_id=created.id, input="Again")
    assert follow.output_text == "Hello from the fake upstream"


async def test_the_redis_store_serves_the_same_state(start: Start, sdk: Any, redis_url: str,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_RESPONSES_REDIS", redis_url)
    client = sdk(await start(responses={"store": "redis", "redis_url": {"env": "TEST_RESPONSES_REDIS"}}))
    created = await client.responses.create(model="claude-3", input="Hi")
    assert (await client.responses.retrieve(created.id)).model_dump() == created.model_dump()
    follow = await client.responses.create(model="claude-3", previous_response_id=created.id, input="More")
    assert follow.previous_response_id == created.id
    await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)


async def test_a_provider_kind_added_later_serves_responses_through_the_hub(
        make_gateway: GatewayFactory, aiohttp_server: Any, sdk: Any, tmp_path: Path) -> None:
    os.environ.setdefault("FAKE_GEMINI_KEY", GEMINI_KEY)
    fake = await serve_fake(aiohttp_server, FakeGemini())
    cfg = {"server": {"port": free_port(), "admin_port": 0},
           "providers": [{"name": "google", "kind": "gemini", "api_key": {"env": "FAKE_GEMINI_KEY"},
                          "base_url": str(fake.server.make_url("")).rstrip("/")}],
           "models": [{"name": "*", "provider": "google"}]}
    client = sdk(await make_gateway(parse_config(cfg, source=str(tmp_path / "gateway.toml"))))
    first = await client.responses.create(model="gemini-2.5-flash", input="Hi", instructions="Be brief")
    assert first.output_text == "Hello from fake Gemini" and first.usage is not None
    async with client.responses.stream(model="gemini-2.5-flash", input="Hi", instructions="Be brief") as stream:
        final = await stream.get_final_response()
    assert final.output_text == first.output_text and final.usage == first.usage
    await client.responses.create(model="gemini-2.5-flash", previous_response_id=first.id, input="More")
    sent = fake.requests[-1].json()
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert "systemInstruction" not in sent  # instructions are not carried over


# --- native providers: untouched -------------------------------------------------------------


async def test_native_provider_gets_responses_and_their_state_unchanged(
        start: Start, sdk: Any, fake_openai: FakeOpenAI) -> None:
    server = await start(models=[{"name": "native-model", "provider": "native"},
                                 {"name": "chat-model", "provider": "chatonly"},
                                 {"name": "*", "provider": "native"}])
    client = sdk(server)
    resp = await client.responses.create(model="native-model", input="Hi", previous_response_id="resp_upstream",
                                         store=True)
    assert resp.id == "resp_fake"  # the provider's own answer
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/responses"
    assert sent.json() == {"model": "native-model", "input": "Hi", "previous_response_id": "resp_upstream",
                           "store": True}
    async with ClientSession() as session:
        # Not stored here: the request goes to the `*` model's provider (or ?model='s), unchanged.
        async with session.get(server.make_url("/v1/responses/resp_fake/input_items?limit=2")) as got:
            assert got.status == 200
            echoed = await got.json()
        assert echoed == {"path": "/v1/responses/resp_fake/input_items", "query": "limit=2", "method": "GET",
                          "body_len": 0}
        async with session.delete(server.make_url("/v1/responses/resp_fake?model=native-model")) as deleted:
            assert (await deleted.json())["method"] == "DELETE"
        # On a translating provider an id the gateway does not hold is a 404 in OpenAI shape.
        async with session.get(server.make_url("/v1/responses/resp_fake?model=chat-model")) as missing:
            assert missing.status == 404
            assert (await missing.json())["error"]["type"] == "invalid_request_error"
