"""Route table, model matching, and what routes answer to methods and paths they do not serve."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from gateway.config import ModelConfig
from gateway.model_router import ModelRouter
from gateway.routes import RouteTable
from tests.conftest import GatewayFactory, base_config
from tests.fake_upstreams import FakeOpenAI


def test_route_suffix_longest_wins_and_prefixes_work() -> None:
    table = RouteTable()
    assert table.match("/v1/messages").route == "messages"
    assert table.match("/v1/messages/count_tokens").route == "anthropic_token_count"
    assert table.match("/openai/v1/chat/completions").route == "completions"
    assert table.match("/v1/models/gpt-4o").item == "gpt-4o"
    assert table.match("/v1/files").route == "passthrough"


def test_routes_config_overrides_and_extends() -> None:
    table = RouteTable({"/chat": "completions", "/v1/embeddings": "passthrough"})
    assert table.match("/team/chat").route == "completions"
    assert table.match("/v1/embeddings").route == "passthrough"


def test_model_matching_exact_then_longest_prefix_then_wildcard() -> None:
    router = ModelRouter([
        ModelConfig(name="*", provider="any"),
        ModelConfig(name="gpt-*", provider="short"),
        ModelConfig(name="gpt-4o*", provider="long"),
        ModelConfig(name="gpt-4o-mini", provider="exact", model="upstream-mini"),
    ])
    assert router.resolve("gpt-4o-mini").provider == "exact"  # type: ignore[union-attr]
    assert router.resolve("gpt-4o-mini").upstream_name("gpt-4o-mini") == "upstream-mini"  # type: ignore[union-attr]
    assert router.resolve("gpt-4o-2024").provider == "long"  # type: ignore[union-attr]
    assert router.resolve("gpt-3.5").provider == "short"  # type: ignore[union-attr]
    assert router.resolve("claude").provider == "any"  # type: ignore[union-attr]
    assert ModelRouter([ModelConfig(name="x", provider="p")]).resolve("y") is None


# --- answers in the client's shape ---------------------------------------------------------------
ANTHROPIC_CLIENT = {"anthropic-version": "2023-06-01"}


async def _call(server: TestServer, method: str, path: str, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as s, s.request(method, server.make_url(path), headers=headers) as resp:
        return resp.status, dict(resp.headers), orjson.loads(await resp.read())


@pytest.mark.parametrize("method", ["DELETE", "PUT", "POST", "PATCH"])
@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/gpt-4o"])
async def test_models_answer_only_get_with_405_and_allow(gateway: TestServer, fake_openai: FakeOpenAI,
                                                         method: str, path: str) -> None:
    status, headers, body = await _call(gateway, method, path)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert body["error"]["code"] == "method_not_allowed" and method in body["error"]["message"]
    status, headers, body = await _call(gateway, method, path, ANTHROPIC_CLIENT)
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert fake_openai.requests == []


async def test_models_still_listed_on_get(gateway: TestServer) -> None:
    status, _, body = await _call(gateway, "GET", "/v1/models")
    assert status == 200 and body["object"] == "list"


@pytest.mark.parametrize("headers", [ANTHROPIC_CLIENT, {"x-api-key": "client-key"}])
async def test_unrouted_path_answers_an_anthropic_client_in_its_shape(
        make_gateway: GatewayFactory, fake_openai: FakeOpenAI, headers: dict[str, str]) -> None:
    cfg = base_config(str(fake_openai.server.make_url("/v1")))
    cfg["models"] = [m for m in cfg["models"] if m["name"] != "*"]  # nothing takes an unrouted path
    gw = await make_gateway(cfg)
    status, _, body = await _call(gw, "GET", "/v1/nothing/here", headers)
    assert status == 404
    assert body == {"type": "error", "error": {"type": "not_found_error", "message": "no route for GET /v1/nothing/here"}}
    status, _, body = await _call(gw, "GET", "/v1/nothing/here")
    assert status == 404 and body["error"]["code"] == "unknown_route"  # an OpenAI client's shape


async def test_wrong_method_on_a_json_route_is_405_in_the_routes_format(gateway: TestServer) -> None:
    status, headers, body = await _call(gateway, "GET", "/v1/messages")
    assert status == 405 and headers["Allow"] == "POST"
    assert body["type"] == "error"
    status, headers, body = await _call(gateway, "GET", "/v1/chat/completions", ANTHROPIC_CLIENT)
    assert status == 405 and headers["Allow"] == "POST"
    assert set(body) == {"error"}  # the Chat route speaks OpenAI whatever headers come along
