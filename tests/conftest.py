"""Shared fixtures: a fake upstream and the gateway, both real aiohttp servers on loopback."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import build_app
from gateway.config import Config, parse_config
from middleware.observe import set_access_log_writer
from tests.fake_upstreams import FakeAnthropic, FakeOpenAI

os.environ.setdefault("FAKE_UPSTREAM_KEY", "sk-test-upstream-secret-0123456789")
UPSTREAM_KEY = os.environ["FAKE_UPSTREAM_KEY"]

GatewayFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def access_log() -> list[bytes]:
    lines: list[bytes] = []
    set_access_log_writer(lines.append)
    return lines


def free_port() -> int:
    """A port nothing listens on now, for gateways the tests start (never the 4000/15000 a
    gateway started from the Quick start may hold)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FakeT = TypeVar("FakeT")


async def serve_fake(aiohttp_server: Any, fake: FakeT) -> FakeT:
    """Start a fake upstream's app on loopback; its TestServer becomes `fake.server`."""
    fake.server = await aiohttp_server(fake.app)  # type: ignore[attr-defined]
    return fake


@pytest.fixture
async def fake_openai(aiohttp_server: Any) -> FakeOpenAI:
    return await serve_fake(aiohttp_server, FakeOpenAI())


@pytest.fixture
async def fake_anthropic(aiohttp_server: Any) -> FakeAnthropic:
    return await serve_fake(aiohttp_server, FakeAnthropic())


def base_config(upstream_url: str, **extra: Any) -> dict[str, Any]:
    """A config with a fake OpenAI provider (`*` and `gpt-*`, serving Responses natively) and the
    mock (`mock-*`). Tests serve
    it on a free port (aiohttp_server); the admin listener is off."""
    cfg: dict[str, Any] = {
        "server": {"port": free_port(), "admin_port": 0},
        "providers": [
            {"name": "fake", "kind": "openai", "base_url": upstream_url, "responses": "native",
             "api_key": {"env": "FAKE_UPSTREAM_KEY"},
             "timeouts": {"connect": 2, "first_byte": 2, "idle": 2}},
            {"name": "mock", "kind": "mock"},
        ],
        "models": [
            {"name": "mock-*", "provider": "mock"},
            {"name": "renamed", "provider": "fake", "model": "upstream-model",
             "defaults": {"temperature": 0.2}, "overrides": {"user": "gateway"}},
            {"name": "gpt-*", "provider": "fake"},
            {"name": "*", "provider": "fake"},
        ],
        "observability": {"access_log": "json"},
    }
    for key, value in extra.items():
        cfg[key] = value
    return cfg


@pytest.fixture
def make_gateway(aiohttp_server: Any, access_log: list[bytes]) -> GatewayFactory:
    async def start(cfg: dict[str, Any] | Config) -> TestServer:
        config = cfg if isinstance(cfg, Config) else parse_config(cfg)
        app: web.Application = build_app(config)
        server: TestServer = await aiohttp_server(app)
        return server

    return start


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> TestServer:
    return await make_gateway(base_config(str(fake_openai.server.make_url("/v1"))))


SDKClients = Callable[[TestServer], tuple[Any, Any]]


@pytest.fixture
async def openai_clients() -> Any:
    """Factory for (sync, async) openai SDK clients pointed at a server; closed at teardown."""
    import openai

    made: list[Any] = []

    def make(server: TestServer) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
        url = str(server.make_url("/v1"))
        pair = (openai.OpenAI(base_url=url, api_key="client-key", max_retries=0),
                openai.AsyncOpenAI(base_url=url, api_key="client-key", max_retries=0))
        made.extend(pair)
        return pair

    yield make
    for client in made:
        if isinstance(client, openai.AsyncOpenAI):
            await client.close()
        else:
            client.close()
