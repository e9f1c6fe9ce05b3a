"""A Vertex AI provider end to end: Gemini models (publishers/google) and Claude models
(publishers/anthropic rawPredict) through the gateway with the official SDKs, OAuth tokens
from a service account whose JWT grant a fake token endpoint verifies with the key's
public half, cached, shared by concurrent requests and refreshed when stale."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import gateway.config
from gateway.config import ConfigError, parse_config
from tests.conftest import GatewayFactory, SDKClients, base_config, serve_fake
from tests.fake_gemini import FakeGemini, google_error
from tests.fake_upstreams import FakeAnthropic

PROJECT, LOCATION = "my-project", "us-east5"
GEMINI, CLAUDE = "gemini-2.5-flash", "claude-sonnet-4@20250514"
PUBLISHERS = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what Google's endpoint expects in `aud`


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def service_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeTokenEndpoint:
    """Google's OAuth token endpoint for service accounts: checks the JWT-bearer grant (its RS256
    signature against the account's public key, issuer, audience, scope, lifetime) and issues
    tokens `ya29.fake-N`."""

    def __init__(self, public_key: rsa.RSAPublicKey, email: str) -> None:
        self.public_key, self.email = public_key, email
        self.issued: list[str] = []
        self.expires_in = 3600
        self.delay = 0.0
        self.app = web.Application()
        self.app.router.add_post("/token", self.token)

    @property
    def uri(self) -> str:
        return str(self.server.make_url("/token"))  # type: ignore[attr-defined]

    def _refuse(self, why: str) -> web.Response:
        return web.json_response({"error": "invalid_grant", "error_description": why}, status=400)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._refuse("unsupported grant type")
        head, claims, signature = str(form.get("assertion", "")).split(".")
        try:
            self.public_key.verify(_b64(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return self._refuse("Invalid JWT Signature.")
        header, payload = json.loads(_b64(head)), json.loads(_b64(claims))
        now = time.time()
        if header.get("alg") != "RS256" or payload.get("iss") != self.email or payload.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return self._refuse("Invalid JWT: wrong algorithm, issuer or audience")
        if SCOPE not in str(payload.get("scope", "")).split() or not payload["iat"] - 60 <= now <= payload["exp"]:
            return self._refuse("Invalid JWT: scope or lifetime")
        await asyncio.sleep(self.delay)
        self.issued.append(f"ya29.fake-{len(self.issued) + 1}")
        return web.json_response({"access_token": self.issued[-1], "expires_in": self.expires_in,
                                  "token_type": "Bearer"})


class FakeVertexGemini(FakeGemini):
    """The Gemini API as Vertex serves it: bearer tokens instead of API keys."""

    def __init__(self, tokens: FakeTokenEndpoint) -> None:
        super().__init__()
        self.tokens = tokens

    def _key_failure(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens.issued:
            return self._error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        return None


class FakeVertex:
    """Vertex AI's publisher model endpoints: Google's Gemini wire and Anthropic's on rawPredict."""

    def __init__(self, tokens: FakeTokenEndpoint) -> None:
        self.tokens = tokens
        self.gemini = FakeVertexGemini(tokens)
        self.anthropic = FakeAnthropic()
        self.claude_raw_paths: list[str] = []  # as on the request line, still percent-encoded
        self.app = web.Application()
        models = "/v1/projects/{project}/locations/{location}/publishers"
        self.app.router.add_post(models + "/google/models/{target}", self.gemini.call)
        self.app.router.add_post(models + "/anthropic/models/{model:[^/:]+}:{method}", self.claude)

    async def claude(self, request: web.Request) -> web.StreamResponse:
        self.claude_raw_paths.append(request.raw_path)
        failure = self.gemini._key_failure(request)
        if failure is not None:
            return failure
        body = await request.json()
        if request.match_info["method"] not in ("rawPredict", "streamRawPredict"):
            return web.Response(status=404, body=google_error(404, "Method not found"), content_type="application/json")
        if request.match_info["model"] == "count-tokens":  # the model is in the body here
            if body.get("anthropic_version") != "vertex-2023-10-16" or "model" not in body:
                return web.json_response({"type": "error", "error": {
                    "type": "invalid_request_error", "message": "anthropic_version and model required"}}, status=400)
            return await self.anthropic.count_tokens(request)
        if body.get("anthropic_version") != "vertex-2023-10-16" or "model" in body:
            return web.json_response({"type": "error", "error": {
                "type": "invalid_request_error", "message": "anthropic_version: vertex-2023-10-16 required; "
                                                            "model: Extra inputs are not permitted"}}, status=400)
        return await self.anthropic.messages(request)


@pytest.fixture
async def tokens(aiohttp_server: Any, service_key: rsa.RSAPrivateKey) -> FakeTokenEndpoint:
    return await serve_fake(aiohttp_server, FakeTokenEndpoint(service_key.public_key(),
                                                              "gateway@my-project.iam.gserviceaccount.com"))


@pytest.fixture
async def vertex(aiohttp_server: Any, tokens: FakeTokenEndpoint) -> FakeVertex:
    return await serve_fake(aiohttp_server, FakeVertex(tokens))


def key_file(tmp_path: Path, key: rsa.RSAPrivateKey, tokens: FakeTokenEndpoint) -> Path:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": _pem(key),
        "client_email": tokens.email, "client_id": "1", "token_uri": tokens.uri}))
    return path


def vertex_config(vertex: FakeVertex, credentials: Path) -> dict[str, Any]:
    cfg = base_config("http://127.0.0.1:9/v1")
    cfg["providers"].append({
        "name": "vertex", "kind": "vertex", "project": PROJECT, "location": LOCATION,
        "credentials": {"file": str(credentials)},
        "base_url": str(vertex.server.make_url("")).rstrip("/"),  # type: ignore[attr-defined]
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5}})
    cfg["models"].insert(0, {"name": "gemini-*", "provider": "vertex"})
    cfg["models"].insert(0, {"name": "claude-*", "provider": "vertex"})
    return cfg


@pytest.fixture
async def gw(make_gateway: GatewayFactory, vertex: FakeVertex, tokens: FakeTokenEndpoint, tmp_path: Path,
             service_key: rsa.RSAPrivateKey) -> TestServer:
    return await make_gateway(vertex_config(vertex, key_file(tmp_path, service_key, tokens)))


@pytest.fixture
async def claude(gw: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(gw.make_url("")).rstrip("/"), api_key="client-key",
                                      max_retries=0)
    yield client
    await client.close()


# --- Gemini models on Vertex -------------------------------------------------------------


async def test_gemini_chat_on_vertex_with_a_service_account_token(
        gw: TestServer, openai_clients: SDKClients, vertex: FakeVertex, tokens: FakeTokenEndpoint) -> None:
    _, client = openai_clients(gw)
    done = await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    assert done.choices[0].message.content == "Hello from fake Gemini"
    assert done.usage is not None and done.usage.total_tokens == 16
    rec = vertex.gemini.requests[-1]
    assert rec.path == f"{PUBLISHERS}/google/models/{GEMINI}:generateContent"
    assert rec.headers["Authorization"] == "Bearer ya29.fake-1"
    assert "client-key" not in str(rec.headers)


async def test_gemini_chat_stream_and_messages_stream_on_vertex(
        gw: TestServer, openai_clients: SDKClients, claude: anthropic.AsyncAnthropic, vertex: FakeVertex) -> None:
    _, client = openai_clients(gw)
    stream = await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from fake Gemini"
    rec = vertex.gemini.requests[-1]
    assert (rec.path, rec.query) == (f"{PUBLISHERS}/google/models/{GEMINI}:streamGenerateContent", "alt=sse")
    async with claude.messages.stream(model=GEMINI, max_tokens=20,
                                      messages=[{"role": "user", "content": "Hi"}]) as events:
        final = await events.get_final_message()
    assert final.content[0].text == "Hello from fake Gemini"  # type: ignore[union-attr]
    assert final.usage.output_tokens == 5


async def test_embeddings_on_vertex_are_a_clear_400(gw: TestServer, openai_clients: SDKClients) -> None:
    _, client = openai_clients(gw)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="gemini-embedding-001", input="hi")
    assert caught.value.code == "unsupported_route"


# --- Claude models on Vertex -------------------------------------------------------------


async def test_claude_messages_on_vertex_raw_predict(claude: anthropic.AsyncAnthropic, vertex: FakeVertex) -> None:
    msg = await claude.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].text == "Hello from fake Claude" and msg.model == CLAUDE  # type: ignore[union-attr]
    assert msg.usage.input_tokens == 20 and msg.usage.cache_read_input_tokens == 100
    rec = vertex.anthropic.requests[-1]
    assert rec.path == f"{PUBLISHERS}/anthropic/models/{CLAUDE}:rawPredict"
    assert rec.query == "" and vertex.claude_raw_paths[-1].endswith(f"/{CLAUDE}:rawPredict")  # "@" unescaped
    sent = rec.json()
    assert sent["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent
    assert rec.headers["Authorization"] == "Bearer ya29.fake-1" and "x-api-key" not in rec.headers


async def test_claude_messages_stream_on_vertex(claude: anthropic.AsyncAnthropic, vertex: FakeVertex) -> None:
    async with claude.messages.stream(model=CLAUDE, max_tokens=50,
                                      messages=[{"role": "user", "content": "Hi"}]) as events:
        text = "".join([t async for t in events.text_stream])
        final = await events.get_final_message()
    assert text == "Hello from fake Claude" and final.stop_reason == "end_turn"
    rec = vertex.anthropic.requests[-1]
    assert rec.path == f"{PUBLISHERS}/anthropic/models/{CLAUDE}:streamRawPredict" and rec.json()["stream"] is True


async def test_claude_count_tokens_on_vertex(claude: anthropic.AsyncAnthropic, vertex: FakeVertex) -> None:
    counted = await claude.messages.count_tokens(model=CLAUDE, messages=[{"role": "user", "content": "Hi"}])
    assert counted.input_tokens == 1234
    rec = vertex.anthropic.requests[-1]
    assert rec.path == f"{PUBLISHERS}/anthropic/models/count-tokens:rawPredict"
    assert rec.json()["model"] == CLAUDE and rec.json()["anthropic_version"] == "vertex-2023-10-16"


async def test_chat_client_on_claude_on_vertex_stream(gw: TestServer, openai_clients: SDKClients,
                                                      vertex: FakeVertex) -> None:
    _, client = openai_clients(gw)
    stream = await client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from fake Claude"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert vertex.anthropic.requests[-1].path.endswith(":streamRawPredict")


# --- tokens ------------------------------------------------------------------------------


async def test_token_is_fetched_once_for_concurrent_requests_and_kept(
        gw: TestServer, openai_clients: SDKClients, vertex: FakeVertex, tokens: FakeTokenEndpoint) -> None:
    _, client = openai_clients(gw)
    tokens.delay = 0.2  # every request arrives while the first refresh is under way
    answers = await asyncio.gather(*[client.chat.completions.create(
        model=GEMINI, messages=[{"role": "user", "content": f"Hi {i}"}]) for i in range(8)])
    assert all(a.choices[0].message.content == "Hello from fake Gemini" for a in answers)
    await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "again"}])
    assert tokens.issued == ["ya29.fake-1"]
    assert {r.headers["Authorization"] for r in vertex.gemini.requests} == {"Bearer ya29.fake-1"}


async def test_a_stale_token_is_refreshed(gw: TestServer, openai_clients: SDKClients, vertex: FakeVertex,
                                          tokens: FakeTokenEndpoint) -> None:
    _, client = openai_clients(gw)
    tokens.expires_in = 1  # stale after half its life
    await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    await asyncio.sleep(0.6)
    await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    assert tokens.issued == ["ya29.fake-1", "ya29.fake-2"]
    assert vertex.gemini.requests[-1].headers["Authorization"] == "Bearer ya29.fake-2"


async def test_a_token_google_refuses_is_replaced_on_the_next_request(
        gw: TestServer, openai_clients: SDKClients, vertex: FakeVertex, tokens: FakeTokenEndpoint) -> None:
    _, client = openai_clients(gw)
    await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    tokens.issued[0] = "revoked"
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    assert vertex.gemini.requests[-1].headers["Authorization"] == "Bearer ya29.fake-2"


async def test_a_grant_signed_with_another_key_is_refused_and_reported(
        make_gateway: GatewayFactory, openai_clients: SDKClients, vertex: FakeVertex, tokens: FakeTokenEndpoint,
        tmp_path: Path) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    gw = await make_gateway(vertex_config(vertex, key_file(tmp_path, stranger, tokens)))
    _, client = openai_clients(gw)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 502
    message = caught.value.response.json()["error"]["message"]
    assert "access token" in message and "Invalid JWT Signature" in message and "PRIVATE KEY" not in message
    assert tokens.issued == [] and vertex.gemini.requests == []


# --- passthrough and config --------------------------------------------------------------


async def test_passthrough_on_vertex_carries_the_gateways_token_not_the_clients(
        make_gateway: GatewayFactory, vertex: FakeVertex, tokens: FakeTokenEndpoint, tmp_path: Path,
        service_key: rsa.RSAPrivateKey) -> None:
    cfg = vertex_config(vertex, key_file(tmp_path, service_key, tokens))
    cfg["models"] = [{"name": "*", "provider": "vertex"}]
    gw = await make_gateway(cfg)
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session, session.post(
            gw.make_url(f"{PUBLISHERS}/google/models/{GEMINI}:generateContent"), data=orjson.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": "Bearer client-key"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["candidates"][0]["content"]["parts"] == [{"text": "Hello from fake Gemini"}]
    assert vertex.gemini.requests[-1].headers["Authorization"] == "Bearer ya29.fake-1"


def test_vertex_config_checks_the_key_file_and_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.json").write_text('{"type": "authorized_user"}')
    provider = {"name": "v", "kind": "vertex", "project": "p", "location": "l",
                "credentials": {"file": str(tmp_path / "bad.json")}}
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [provider], "models": [{"name": "*", "provider": "v"}]})
    assert caught.value.problems == [
        'providers[0].credentials: must hold a service-account key file (JSON with "type": "service_account")']
    monkeypatch.setattr(gateway.config, "_has_google_auth", lambda: False)
    del provider["credentials"]
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [provider], "models": [{"name": "*", "provider": "v"}]})
    assert caught.value.problems == ["providers[0].kind: needs google-auth: pip install 'llm-gateway[vertex]'"]


