"""Azure OpenAI Realtime: the gateway's upstream handshake on Azure's WebSocket paths (v1 and
deployment style) with the `api-key` header, against a fake Azure that refuses anything else."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.conftest import UPSTREAM_KEY, GatewayFactory, base_config, serve_fake
from tests.fake_realtime import FakeRealtime

API_VERSION = "2025-04-01-preview"
DEPLOYMENT = "my-realtime.v1"


class FakeAzureRealtime(FakeRealtime):
    """FakeRealtime on Azure's paths: `/openai/v1/realtime?model=` and
    `/openai/realtime?api-version=&deployment=`, answering 401 without the right `api-key`
    (or with a bearer token) and 404 for a query of the other style."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_get("/openai/v1/realtime", self.v1)
        self.app.router.add_get("/openai/realtime", self.deployment_style)

    def _refusal(self, request: web.Request) -> web.Response | None:
        if request.headers.get("api-key") != UPSTREAM_KEY or "Authorization" in request.headers:
            return web.json_response({"error": {"code": "401", "message": "Access denied"}}, status=401)
        return None

    async def v1(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        if "api-version" in request.query or request.query.get("model") != DEPLOYMENT:
            return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
        return await self.realtime(request)

    async def deployment_style(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        if (request.query.get("api-version"), request.query.get("deployment")) != (API_VERSION, DEPLOYMENT) \
                or "model" in request.query:
            return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
        return await self.realtime(request)


@pytest.fixture
async def fake_azure(aiohttp_server: Any) -> FakeAzureRealtime:
    return await serve_fake(aiohttp_server, FakeAzureRealtime())


def azure_config(fake: FakeAzureRealtime, style: str) -> dict[str, Any]:
    origin = str(fake.server.make_url("")).rstrip("/")
    provider: dict[str, Any] = {"name": "azure", "kind": "azure", "api_key": {"env": "FAKE_UPSTREAM_KEY"}}
    if style == "v1":
        provider["base_url"] = origin + "/openai/v1"
    else:
        provider.update(base_url=origin + "/openai", api_version=API_VERSION)
    cfg = base_config("http://127.0.0.1:9/v1")
    cfg["providers"].append(provider)
    cfg["models"] = [{"name": "gpt-realtime", "provider": "azure", "model": DEPLOYMENT}]
    return cfg


async def talk(gateway: TestServer, query: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Connect as a client, read the greeting, send one event and read its echo."""
    async with aiohttp.ClientSession() as s, s.ws_connect(gateway.make_url(f"/v1/realtime?{query}"),
                                                          headers={"Authorization": "Bearer client"}) as ws:
        greeting = await asyncio.wait_for(ws.receive(), 5)
        await ws.send_str(orjson.dumps({"type": "session.update", "session": {"type": "realtime"}}).decode())
        echo = await asyncio.wait_for(ws.receive(), 5)
        assert greeting.type is WSMsgType.TEXT and echo.type is WSMsgType.TEXT
        return orjson.loads(greeting.data), orjson.loads(echo.data)


@pytest.mark.parametrize(("style", "path", "query"), [
    ("v1", "/openai/v1/realtime", {"model": DEPLOYMENT, "extra": "1"}),
    ("deployment", "/openai/realtime", {"extra": "1", "api-version": API_VERSION, "deployment": DEPLOYMENT}),
])
async def test_azure_realtime_handshake_path_query_and_key(make_gateway: GatewayFactory, fake_azure: FakeAzureRealtime,
                                                            style: str, path: str, query: dict[str, str]) -> None:
    gateway = await make_gateway(azure_config(fake_azure, style))
    greeting, echo = await talk(gateway, "model=gpt-realtime&extra=1")
    assert greeting["type"] == "session.created" and echo["type"] == "session.update"
    shake = fake_azure.handshakes[0]
    assert shake.path == path and shake.query == query
    assert shake.headers["api-key"] == UPSTREAM_KEY
    assert "Authorization" not in shake.headers and "client" not in str(shake.headers)


async def test_azure_refusing_the_handshake_is_an_http_error(make_gateway: GatewayFactory,
                                                             fake_azure: FakeAzureRealtime,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = await make_gateway(azure_config(fake_azure, "deployment"))
    monkeypatch.setattr("tests.test_azure_realtime.UPSTREAM_KEY", "another-key")  # the fake expects another key
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await s.ws_connect(gateway.make_url("/v1/realtime?model=gpt-realtime"))
    assert caught.value.status == 502 and fake_azure.handshakes == []  # Azure's 401 is the gateway's fault
