"""Azure OpenAI end to end: both URL styles (v1 and deployment + api-version) through the
gateway with the official SDKs, against a fake Azure that checks the path, the api-version
query and the `api-key` header of every request."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import ConfigError, parse_config
from tests.conftest import GatewayFactory, SDKClients, base_config, serve_fake
from tests.fake_upstreams import FakeOpenAI, Recorded

API_VERSION = "2024-10-21"
DEPLOYMENT = "my-gpt4o.v2"
DEPLOYMENT_PATH = f"/openai/deployments/{DEPLOYMENT}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def azure_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class FakeAzure:
    """Azure OpenAI's data plane: `/openai/v1/…` and `/openai/deployments/{d}/…?api-version=`
    (plus `/openai/responses?api-version=`), answered by a FakeOpenAI once the `api-key`
    header and, on the deployment style, the `api-version` query check out."""

    def __init__(self) -> None:
        self.openai = FakeOpenAI()
        self.seen: list[Recorded] = []  # every request, raw path and query as on the request line
        self.deployments: list[str] = []
        self.app = web.Application(middlewares=[self._check])
        r = self.app.router
        r.add_post("/openai/v1/chat/completions", self.openai.chat)
        r.add_post("/openai/v1/responses", self.openai.responses)
        r.add_post("/openai/v1/embeddings", self.openai.embeddings)
        r.add_post("/openai/deployments/{deployment}/chat/completions", self._deployment(self.openai.chat))
        r.add_post("/openai/deployments/{deployment}/embeddings", self._deployment(self.openai.embeddings))
        r.add_post("/openai/responses", self.openai.responses)
        r.add_route("*", "/openai/{tail:.*}", self.openai.echo)

    @web.middleware
    async def _check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.seen.append(await Recorded.of(request))
        if request.headers.get("api-key") != os.environ["FAKE_UPSTREAM_KEY"] or "Authorization" in request.headers:
            return azure_error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
        versioned = not request.path.startswith("/openai/v1/")
        if versioned and request.query.get("api-version") is None:
            return azure_error(404, "404", "Resource not found")
        if not versioned and "api-version" in request.query:
            return azure_error(400, "BadRequest", "api-version is not allowed on the v1 surface")
        return await handler(request)

    def _deployment(self, handler: Handler) -> Handler:
        async def call(request: web.Request) -> web.StreamResponse:
            self.deployments.append(request.match_info["deployment"])
            return await handler(request)

        return call


@pytest.fixture
async def azure(aiohttp_server: Any) -> FakeAzure:
    return await serve_fake(aiohttp_server, FakeAzure())


def azure_config(azure: FakeAzure, style: str) -> dict[str, Any]:
    origin = str(azure.server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    provider: dict[str, Any] = {"name": "azure", "kind": "azure", "api_key": {"env": "FAKE_UPSTREAM_KEY"},
                                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5}}
    if style == "v1":
        provider["base_url"] = origin + "/openai/v1"
    else:
        provider.update(base_url=origin + "/openai", api_version=API_VERSION)
    cfg = base_config("http://127.0.0.1:9/v1")
    cfg["providers"].append(provider)
    cfg["models"] = [{"name": "gpt-4o", "provider": "azure", "model": DEPLOYMENT},
                     {"name": "claude-on-azure", "provider": "azure", "model": DEPLOYMENT},
                     {"name": "*", "provider": "azure"}]
    return cfg


@pytest.fixture(params=["v1", "deployment"])
async def gw(request: pytest.FixtureRequest, make_gateway: GatewayFactory, azure: FakeAzure) -> TestServer:
    server = await make_gateway(azure_config(azure, request.param))
    server.style = request.param  # type: ignore[attr-defined]
    return server


@pytest.fixture
async def deployment_gw(make_gateway: GatewayFactory, azure: FakeAzure) -> TestServer:
    return await make_gateway(azure_config(azure, "deployment"))


@pytest.fixture
async def claude(deployment_gw: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(deployment_gw.make_url("")).rstrip("/"), api_key="client-key",
                                      max_retries=0)
    yield client
    await client.close()


def expected(gw: TestServer, route: str) -> tuple[str, str]:
    """(raw path, raw query) Azure must see for `route` in the gateway's URL style."""
    if gw.style == "v1":  # type: ignore[attr-defined]
        return f"/openai/v1/{route}", ""
    if route == "responses":
        return "/openai/responses", f"api-version={API_VERSION}"
    return f"{DEPLOYMENT_PATH}/{route}", f"api-version={API_VERSION}"


# --- Chat, embeddings, Responses with the OpenAI SDK, both URL styles ---------------------


async def test_chat_goes_to_the_style_path_with_the_api_key(gw: TestServer, openai_clients: SDKClients,
                                                            azure: FakeAzure) -> None:
    _, client = openai_clients(gw)
    done = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert done.choices[0].message.content == "Hello from the fake upstream"
    assert done.usage is not None and done.usage.total_tokens == 16
    path, query = expected(gw, "chat/completions")
    rec = azure.seen[-1]
    assert (rec.path, rec.query) == (path, query)
    assert rec.headers["api-key"] == os.environ["FAKE_UPSTREAM_KEY"]
    assert "client-key" not in str(rec.headers) and "Authorization" not in rec.headers
    assert rec.json()["model"] == DEPLOYMENT
    if gw.style == "deployment":  # type: ignore[attr-defined]
        assert azure.deployments == [DEPLOYMENT]


async def test_chat_stream(gw: TestServer, openai_clients: SDKClients, azure: FakeAzure) -> None:
    _, client = openai_clients(gw)
    stream = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake upstream"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 16
    path, query = expected(gw, "chat/completions")
    assert (azure.seen[-1].path, azure.seen[-1].query) == (path, query)
    assert azure.seen[-1].json()["stream"] is True


async def test_embeddings(gw: TestServer, openai_clients: SDKClients, azure: FakeAzure) -> None:
    _, client = openai_clients(gw)
    out = await client.embeddings.create(model="gpt-4o", input="hi")
    assert out.data[0].embedding == [0.5, 0.25] and out.usage.prompt_tokens == 4
    path, query = expected(gw, "embeddings")
    assert (azure.seen[-1].path, azure.seen[-1].query) == (path, query)


async def test_responses_are_native_on_azure(gw: TestServer, openai_clients: SDKClients, azure: FakeAzure) -> None:
    _, client = openai_clients(gw)
    done = await client.responses.create(model="gpt-4o", input="Hi")
    assert done.id == "resp_fake" and done.output_text == "Hello from the fake upstream"
    path, query = expected(gw, "responses")
    rec = azure.seen[-1]
    assert (rec.path, rec.query) == (path, query)
    assert rec.json()["model"] == DEPLOYMENT  # the deployment goes in the body on this path
    stream = await client.responses.create(model="gpt-4o", input="Hi", stream=True)
    kinds = [e.type async for e in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert (azure.seen[-1].path, azure.seen[-1].query) == (path, query)
    # The stored response lives at Azure: retrieval is passed through, with api-version.
    got = await client.responses.retrieve("resp_fake", extra_query={"model": "gpt-4o"})
    assert got.model_extra is not None and got.model_extra["path"] == path + "/resp_fake"
    assert azure.seen[-1].query.endswith(query)


async def test_passthrough_keeps_the_clients_api_version_or_adds_the_providers(
        gw: TestServer, azure: FakeAzure) -> None:
    v1 = gw.style == "v1"  # type: ignore[attr-defined]
    base = "/openai/v1" if v1 else "/openai"
    async with aiohttp.ClientSession() as session:
        async with session.get(gw.make_url("/v1/files"), headers={"Authorization": "Bearer client-key"}) as resp:
            assert resp.status == 200
            echoed = await resp.json()
        assert echoed["path"] == base + "/files"
        assert echoed["query"] == ("" if v1 else f"api-version={API_VERSION}")
        if not v1:
            url = gw.make_url("/openai/files").with_query({"api-version": "2025-04-01-preview", "purpose": "x"})
            async with session.get(url, headers={"api-key": "client-key"}) as resp:
                assert resp.status == 200
                echoed = await resp.json()
            assert echoed["path"] == "/openai/files"
            assert echoed["query"] == "api-version=2025-04-01-preview&purpose=x"
    assert all("client-key" not in str(r.headers) for r in azure.seen)


# --- other clients through the Chat hub ------------------------------------------------------


AZURE_STREAM = [  # Azure's first chunk has no choices, only prompt_filter_results
    {"id": "", "object": "", "created": 0, "model": "", "choices": [],
     "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}]},
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
         "content_filter_results": {}}]},
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [
        {"index": 0, "delta": {"content": "Hi from Azure"}, "finish_reason": None,
         "content_filter_results": {"hate": {"filtered": False}}}]},
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [
        {"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
     "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}},
]


async def test_messages_client_on_azure_through_chat(claude: anthropic.AsyncAnthropic, azure: FakeAzure) -> None:
    msg = await claude.messages.create(model="claude-on-azure", max_tokens=50, system="Be brief.",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == 5
    rec = azure.seen[-1]
    assert (rec.path, rec.query) == (DEPLOYMENT_PATH + "/chat/completions", f"api-version={API_VERSION}")
    sent = rec.json()
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    azure.openai.behaviour.stream_frames = [b"data: " + orjson.dumps(f) + b"\n\n" for f in AZURE_STREAM]
    azure.openai.behaviour.stream_frames.append(b"data: [DONE]\n\n")
    async with claude.messages.stream(model="claude-on-azure", max_tokens=50,
                                      messages=[{"role": "user", "content": "Hi"}]) as events:
        text = "".join([t async for t in events.text_stream])
        final = await events.get_final_message()
    assert text == "Hi from Azure" and final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 7 and final.usage.output_tokens == 3


async def test_openai_stream_with_azure_preamble_passes_through(deployment_gw: TestServer,
                                                                openai_clients: SDKClients, azure: FakeAzure) -> None:
    azure.openai.behaviour.stream_frames = [b"data: " + orjson.dumps(f) + b"\n\n" for f in AZURE_STREAM]
    azure.openai.behaviour.stream_frames.append(b"data: [DONE]\n\n")
    _, client = openai_clients(deployment_gw)
    stream = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True)
    chunks = [c async for c in stream]
    assert chunks[0].choices == []  # same format: Azure's chunks as they are
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi from Azure"


CONTENT_FILTER_ERROR = orjson.dumps({"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation",
                   "content_filter_result": {"hate": {"filtered": True, "severity": "high"}}}}})


async def test_content_filter_error_reaches_each_client_in_its_format(
        deployment_gw: TestServer, openai_clients: SDKClients, claude: anthropic.AsyncAnthropic,
        azure: FakeAzure) -> None:
    azure.openai.behaviour.status = 400
    azure.openai.behaviour.error_body = CONTENT_FILTER_ERROR
    _, client = openai_clients(deployment_gw)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "content_filter"
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(model="claude-on-azure", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert refused.value.status_code == 400
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "content management policy" in refused.value.body["error"]["message"]  # type: ignore[index]


async def test_upstream_key_rejection_is_relayed(deployment_gw: TestServer, openai_clients: SDKClients,
                                                         azure: FakeAzure, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", "another-key")  # the fake now expects a key the gateway lacks
    _, client = openai_clients(deployment_gw)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401  # same format: Azure's answer relayed as it is
    assert caught.value.body == {"code": "401", "message": "Access denied due to invalid subscription key or "
                                                           "wrong API endpoint."}


# --- config ------------------------------------------------------------------------------------


def test_azure_config_keys() -> None:
    cfg = parse_config({"providers": [{"name": "a", "kind": "azure", "api_key": {"env": "HOME"},
                                       "base_url": "https://r.openai.azure.com/openai", "api_version": API_VERSION}],
                        "models": [{"name": "*", "provider": "a"}]})
    assert cfg.providers[0].kind == "azure"
    for bad, problem in [({"api_version": ""}, "providers[0].api_version: must not be empty"),
                         ({"base_url": None}, "providers[0].base_url: required key missing"),
                         ({"api_key": None}, "providers[0].api_key: required key missing")]:
        raw: dict[str, Any] = {"name": "a", "kind": "azure", "api_key": {"env": "HOME"},
                               "base_url": "https://r.openai.azure.com/openai/v1"}
        raw.update(bad)
        raw = {k: v for k, v in raw.items() if v is not None}
        with pytest.raises(ConfigError) as caught:
            parse_config({"providers": [raw], "models": [{"name": "*", "provider": "a"}]})
        assert problem in str(caught.value)


def test_deployment_names_are_escaped_in_the_path() -> None:
    from gateway.providers import build_provider

    cfg = parse_config({"providers": [{"name": "a", "kind": "azure", "api_key": {"env": "HOME"},
                                       "base_url": "https://r.openai.azure.com/openai", "api_version": "2025-04-01-preview"}],
                        "models": [{"name": "*", "provider": "a"}]})
    provider = build_provider(cfg.providers[0])
    url = provider.request_url("completions", "a b/../c?d", stream=True)
    assert str(url) == ("https://r.openai.azure.com/openai/deployments/a%20b%2F..%2Fc%3Fd/chat/completions"
                        "?api-version=2025-04-01-preview")
    assert provider.native_responses and provider.family_for("anything") == "openai"
