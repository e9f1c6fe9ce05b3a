"""One request, many targets: virtual models, failover across provider kinds, retries, health.

Fake upstreams fail on demand; the official SDKs are the clients; health runs on an injected
clock (no sleeping tests)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from gateway.admin import build_admin_app
from gateway.exchange import STATE
from tests.conftest import GatewayFactory, SDKClients, serve_fake
from tests.fake_upstreams import FakeAnthropic, FakeOpenAI

USER = [{"role": "user", "content": "Hi"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def second_openai(aiohttp_server: Any) -> FakeOpenAI:
    return await serve_fake(aiohttp_server, FakeOpenAI())


def failover_config(primary: FakeOpenAI, secondary: FakeOpenAI, claude: FakeAnthropic,
                    **extra: Any) -> dict[str, Any]:
    """Three providers, plain models for each, and virtual models over them."""
    def openai_provider(name: str, fake: FakeOpenAI) -> dict[str, Any]:
        return {"name": name, "kind": "openai", "base_url": str(fake.server.make_url("/v1")),
                "api_key": {"env": "FAKE_UPSTREAM_KEY"}, "timeouts": {"connect": 2, "first_byte": 2, "idle": 2}}

    cfg: dict[str, Any] = {
        "server": {"port": 4000, "admin_port": 0},
        "providers": [
            openai_provider("primary", primary), openai_provider("secondary", secondary),
            {"name": "claude", "kind": "anthropic", "api_key": {"env": "FAKE_UPSTREAM_KEY"},
             "base_url": str(claude.server.make_url("")).rstrip("/")},
            {"name": "nowhere", "kind": "openai", "base_url": "http://127.0.0.1:1/v1",
             "api_key": {"env": "FAKE_UPSTREAM_KEY"}, "timeouts": {"connect": 1, "first_byte": 1, "idle": 1}},
        ],
        "models": [
            {"name": "gpt-a", "provider": "primary", "model": "gpt-a-upstream"},
            {"name": "gpt-b", "provider": "secondary", "model": "gpt-b-upstream", "defaults": {"temperature": 0.5}},
            {"name": "claude-h", "provider": "claude", "model": "claude-haiku"},
            {"name": "dead", "provider": "nowhere", "model": "dead-upstream"},
            {"name": "resilient", "targets": [{"model": "gpt-a", "priority": 0}, {"model": "claude-h", "priority": 1}]},
            {"name": "to-openai", "targets": [{"model": "claude-h"}, {"model": "gpt-a", "priority": 1}]},
            {"name": "shared", "targets": [{"model": "gpt-a", "weight": 3}, {"model": "gpt-b", "weight": 1}]},
            {"name": "via-dead", "targets": [{"model": "dead"}, {"model": "gpt-b", "priority": 1}]},
        ],
        "observability": {"access_log": "json"},
        "retry": {"attempts": 3, "backoff": 0.01, "max_retry_after": 1},
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
async def claude_fake(aiohttp_server: Any) -> FakeAnthropic:
    return await serve_fake(aiohttp_server, FakeAnthropic())


@pytest.fixture
async def gw(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI,
             claude_fake: FakeAnthropic) -> TestServer:
    return await make_gateway(failover_config(fake_openai, second_openai, claude_fake))


@pytest.fixture
def oai(gw: TestServer, openai_clients: SDKClients) -> openai.AsyncOpenAI:
    return openai_clients(gw)[1]


@pytest.fixture
async def claude_client(gw: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(gw.make_url("")).rstrip("/"), api_key="k", max_retries=0)
    yield client
    await client.close()


def log_records(lines: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lines]


# --- failover across provider kinds ------------------------------------------------------------


async def test_chat_client_fails_over_from_openai_to_anthropic(
        oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI, claude_fake: FakeAnthropic,
        access_log: list[bytes]) -> None:
    fake_openai.behaviour.status = 503
    raw = await oai.chat.completions.with_raw_response.create(model="resilient", messages=USER)
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hello from fake Claude"
    assert raw.headers["x-gateway-provider"] == "claude" and raw.headers["x-gateway-model"] == "claude-haiku"
    assert len(fake_openai.requests) == 1 and len(claude_fake.requests) == 1
    sent = claude_fake.requests[0].json()
    assert sent["model"] == "claude-haiku" and sent["messages"][0]["content"][0]["text"] == "Hi"
    assert fake_openai.requests[0].json()["model"] == "gpt-a-upstream"
    record = log_records(access_log)[-1]
    assert record["provider"] == "claude" and record["served_model"] == "claude-haiku"
    assert record["model"] == "resilient" and record["attempts"] == 2 and record["status"] == 200
    assert record["error"] is None


async def test_chat_stream_fails_over_before_the_first_byte(
        oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI, claude_fake: FakeAnthropic) -> None:
    fake_openai.behaviour.status = 500
    stream = await oai.chat.completions.create(model="resilient", messages=USER, stream=True,
                                               stream_options={"include_usage": True})
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == "Hello from fake Claude" and usage is not None and usage.completion_tokens == 7
    assert claude_fake.requests[0].json()["stream"] is True


async def test_messages_client_fails_over_from_anthropic_to_openai(
        claude_client: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI, claude_fake: FakeAnthropic) -> None:
    claude_fake.behaviour.status = 529
    raw = await claude_client.messages.with_raw_response.create(model="to-openai", max_tokens=20, messages=USER)
    msg = await raw.parse()
    assert msg.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    assert raw.headers["x-gateway-provider"] == "primary"
    assert fake_openai.requests[0].json()["model"] == "gpt-a-upstream"


async def test_anthropic_stream_starting_with_overloaded_error_fails_over(
        claude_client: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI, claude_fake: FakeAnthropic) -> None:
    claude_fake.behaviour.stream_error_after = 0  # a 200 whose first event is `error: overloaded_error`
    async with claude_client.messages.stream(model="to-openai", max_tokens=20, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    assert len(claude_fake.requests) == 1 and len(fake_openai.requests) == 1


async def test_no_retry_once_a_byte_reached_the_client(
        oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI, claude_fake: FakeAnthropic) -> None:
    fake_openai.behaviour.reset_after_chunks = 2
    stream = await oai.chat.completions.create(model="resilient", messages=USER, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    assert len(fake_openai.requests) == 1 and claude_fake.requests == []


async def test_connect_failure_fails_over(oai: openai.AsyncOpenAI, second_openai: FakeOpenAI) -> None:
    raw = await oai.chat.completions.with_raw_response.create(model="via-dead", messages=USER)
    assert raw.headers["x-gateway-provider"] == "secondary"
    sent = second_openai.requests[0].json()
    assert sent["model"] == "gpt-b-upstream" and sent["temperature"] == 0.5  # the target's defaults apply


# --- retries ---------------------------------------------------------------------------------


async def test_plain_model_retries_retryable_statuses(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI,
                                                      access_log: list[bytes]) -> None:
    fake_openai.behaviour.status = 502
    fake_openai.behaviour.fail_times = 2
    reply = await oai.chat.completions.create(model="gpt-a", messages=USER)
    assert reply.choices[0].message.content == "Hello from the fake upstream"
    assert len(fake_openai.requests) == 3
    assert log_records(access_log)[-1]["attempts"] == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_non_retryable_errors_are_answered_at_once(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI,
                                                         claude_fake: FakeAnthropic, status: int) -> None:
    fake_openai.behaviour.status = status
    with pytest.raises(openai.APIStatusError) as info:
        await oai.chat.completions.create(model="resilient", messages=USER)
    assert info.value.status_code == status
    assert len(fake_openai.requests) == 1 and claude_fake.requests == []
    assert info.value.response.headers["x-gateway-provider"] == "primary"


async def test_every_attempt_failing_gives_the_last_error_in_the_clients_format(
        claude_client: anthropic.AsyncAnthropic, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.status = 503
    with pytest.raises(anthropic.APIStatusError) as info:
        await claude_client.messages.create(model="gpt-a", max_tokens=5, messages=USER)
    assert info.value.status_code == 529  # a 503 is Anthropic's overloaded_error
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert len(fake_openai.requests) == 3  # [retry] attempts


async def test_short_retry_after_is_waited_on_the_same_target(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI,
                                                              claude_fake: FakeAnthropic) -> None:
    fake_openai.behaviour.status = 429
    fake_openai.behaviour.fail_times = 1
    fake_openai.behaviour.error_headers = {"retry-after-ms": "50"}
    reply = await oai.chat.completions.create(model="resilient", messages=USER)
    assert reply.choices[0].message.content == "Hello from the fake upstream"
    assert len(fake_openai.requests) == 2 and claude_fake.requests == []


async def test_long_retry_after_moves_on_and_ejects(gw: TestServer, oai: openai.AsyncOpenAI,
                                                    fake_openai: FakeOpenAI, claude_fake: FakeAnthropic) -> None:
    fake_openai.behaviour.status = 429
    fake_openai.behaviour.error_headers = {"Retry-After": "30"}
    reply = await oai.chat.completions.create(model="resilient", messages=USER)
    assert reply.choices[0].message.content == "Hello from fake Claude"
    assert len(fake_openai.requests) == 1
    health = gw.app[STATE].health
    assert health.state("primary/gpt-a-upstream") == "ejected"
    # ejected targets go last: the next request starts with Claude
    await oai.chat.completions.create(model="resilient", messages=USER)
    assert len(fake_openai.requests) == 1 and len(claude_fake.requests) == 2


async def test_streamed_passthrough_body_is_never_replayed_but_get_is_retried(
        gw: TestServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.behaviour.status = 503
    fake_openai.behaviour.fail_times = 1
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.make_url("/v1/files?model=gpt-a")) as resp:
            assert resp.status == 200
        assert len(fake_openai.requests) == 2
        fake_openai.behaviour.fail_times = 1

        async def body() -> AsyncIterator[bytes]:
            yield b"part one "
            yield b"part two"

        async with s.post(gw.make_url("/v1/uploads?model=gpt-a"), data=body()) as resp:
            assert resp.status == 503
        assert len(fake_openai.requests) == 3


# --- weights and health ----------------------------------------------------------------------


async def test_weighted_shares_over_many_requests(oai: openai.AsyncOpenAI, fake_openai: FakeOpenAI,
                                                  second_openai: FakeOpenAI) -> None:
    served: Counter[str] = Counter()
    for _ in range(40):
        raw = await oai.chat.completions.with_raw_response.create(model="shared", messages=USER)
        served[raw.headers["x-gateway-provider"]] += 1
    assert served == {"primary": 30, "secondary": 10}
    assert len(fake_openai.requests) == 30 and len(second_openai.requests) == 10


async def test_ejection_cooldown_and_probe(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                           second_openai: FakeOpenAI, claude_fake: FakeAnthropic,
                                           openai_clients: SDKClients, aiohttp_server: Any) -> None:
    cfg = failover_config(fake_openai, second_openai, claude_fake, health={"eject_after": 2, "cooldown": 30})
    gw = await make_gateway(cfg)
    clock = Clock()
    health = gw.app[STATE].health
    health._clock = clock
    _, oai = openai_clients(gw)
    key = "primary/gpt-a-upstream"
    fake_openai.behaviour.status = 500
    for _ in range(2):  # two consecutive failures eject the primary
        await oai.chat.completions.create(model="resilient", messages=USER)
    assert health.state(key) == "ejected" and len(fake_openai.requests) == 2
    await oai.chat.completions.create(model="resilient", messages=USER)
    assert len(fake_openai.requests) == 2  # not asked while ejected (Claude first)
    admin = await aiohttp_server(build_admin_app(gw.app[STATE].config, gw.app))
    async with aiohttp.ClientSession() as s, s.get(admin.make_url("/readyz")) as resp:
        ready = await resp.json()
    assert resp.status == 200 and ready["providers"]["primary"]["state"] == "ejected"
    assert ready["providers"]["claude"]["state"] == "healthy"
    clock.now += 31  # cooldown over: the next request probes the primary
    fake_openai.behaviour.status = 200
    raw = await oai.chat.completions.with_raw_response.create(model="resilient", messages=USER)
    assert raw.headers["x-gateway-provider"] == "primary" and health.state(key) == "healthy"

