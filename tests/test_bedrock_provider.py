"""Amazon Bedrock (Converse) end to end: the official SDKs through the gateway against a fake
Bedrock that verifies every SigV4 signature and streams eventstream frames split at every
byte; plus the eventstream decoding on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer

from gateway.config import ConfigError, parse_config
from gateway.errors import MalformedUpstream
from gateway.formats import embeddings_on_bedrock
from gateway.providers import build_provider
from gateway.providers.bedrock import _Bytes, _EventStreamBody
from tests.conftest import GatewayFactory, SDKClients, base_config, serve_fake
from tests.fake_bedrock import FakeBedrock, embedding_of, event, eventstream_frame, exception

REGION = "us-west-2"
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
async def bedrock(aiohttp_server: Any) -> FakeBedrock:
    return await serve_fake(aiohttp_server, FakeBedrock(ACCESS_KEY, SECRET_KEY, REGION))


def bedrock_config(bedrock: FakeBedrock, **keys: Any) -> dict[str, Any]:
    provider: dict[str, Any] = {
        "name": "bedrock", "kind": "bedrock", "region": REGION,
        "base_url": str(bedrock.server.make_url("")).rstrip("/"),  # type: ignore[attr-defined]
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5}}
    provider.update(keys)
    cfg = base_config("http://127.0.0.1:9/v1")
    cfg["providers"].append(provider)
    cfg["models"] = [{"name": "claude", "provider": "bedrock", "model": MODEL},
                     {"name": "haiku-profile", "provider": "bedrock", "model": ARN},
                     {"name": "*", "provider": "bedrock"}]
    return cfg


@pytest.fixture
def static_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("TEST_AWS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("TEST_AWS_SECRET", SECRET_KEY)
    return {"aws_access_key_id": {"env": "TEST_AWS_KEY_ID"}, "aws_secret_access_key": {"env": "TEST_AWS_SECRET"}}


@pytest.fixture
async def gw(make_gateway: GatewayFactory, bedrock: FakeBedrock, static_keys: dict[str, Any]) -> TestServer:
    return await make_gateway(bedrock_config(bedrock, **static_keys))


@pytest.fixture
async def claude(gw: TestServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=str(gw.make_url("")).rstrip("/"), api_key="client-key", max_retries=0)
    yield client
    await client.close()


# --- Chat clients ---------------------------------------------------------------------------


async def test_chat_is_signed_and_sent_to_converse(gw: TestServer, openai_clients: SDKClients,
                                                   bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    done = await client.chat.completions.create(model="claude", max_tokens=50, messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert done.choices[0].message.content == "Hello from fake Bedrock" and done.choices[0].finish_reason == "stop"
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.completion_tokens) == (16, 5)
    assert bedrock.verified == 1 and bedrock.models == [MODEL]
    assert bedrock.raw_paths[-1] == f"/model/{quote(MODEL, safe='')}/converse"
    rec = bedrock.requests[-1]
    assert rec.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "client-key" not in str(rec.headers)
    sent = rec.json()
    assert sent["system"] == [{"text": "Be brief."}] and sent["inferenceConfig"] == {"maxTokens": 50}


async def test_chat_stream_from_eventstream_split_at_every_byte(gw: TestServer, openai_clients: SDKClients,
                                                                bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    stream = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from fake Bedrock"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 21
    assert bedrock.raw_paths[-1].endswith("/converse-stream") and bedrock.verified == 1


async def test_inference_profile_arn_is_one_escaped_path_segment(gw: TestServer, openai_clients: SDKClients,
                                                                 bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    await client.chat.completions.create(model="haiku-profile", messages=[{"role": "user", "content": "Hi"}])
    assert bedrock.raw_paths[-1] == f"/model/{quote(ARN, safe='')}/converse" and "%2F" in bedrock.raw_paths[-1]
    assert bedrock.models[-1] == ARN and bedrock.verified == 1


async def test_tool_names_round_trip_and_tool_history_keeps_tool_config(
        gw: TestServer, openai_clients: SDKClients, bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    tools = [{"type": "function", "function": {"name": "get.weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    sent_name = bedrock_name("get.weather")
    bedrock.behaviour.tool_call = {"name": sent_name, "input": {"city": "Oslo"}}
    done = await client.chat.completions.create(model="claude", tools=tools,  # type: ignore[arg-type]
                                                messages=[{"role": "user", "content": "Weather?"}])
    call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, call.function.arguments, done.choices[0].finish_reason) == (
        "get.weather", '{"city":"Oslo"}', "tool_calls")
    assert bedrock.requests[-1].json()["toolConfig"]["tools"][0]["toolSpec"]["name"] == sent_name
    stream = await client.chat.completions.create(model="claude", tools=tools, stream=True,  # type: ignore[arg-type]
                                                  messages=[{"role": "user", "content": "Weather?"}])
    pieces = [tc for c in [c async for c in stream] if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert pieces[0].function.name == "get.weather"  # type: ignore[union-attr]
    assert "".join(p.function.arguments or "" for p in pieces) == '{"city":"Oslo"}'  # type: ignore[union-attr]
    bedrock.behaviour.tool_call = None
    # The follow-up names no tools: Converse still needs toolConfig for the history's blocks.
    done = await client.chat.completions.create(model="claude", messages=[
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "get.weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "rain"}])
    assert done.choices[0].message.content == "Hello from fake Bedrock"
    assert bedrock.requests[-1].json()["toolConfig"]["tools"][0]["toolSpec"]["name"] == sent_name


def bedrock_name(name: str) -> str:
    from gateway.formats.chat_on_converse import bedrock_tool_name

    return bedrock_tool_name(name)


# --- Messages and Responses clients through the Chat hub --------------------------------------


async def test_messages_client_through_chat(claude: anthropic.AsyncAnthropic, bedrock: FakeBedrock) -> None:
    msg = await claude.messages.create(model="claude", max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].text == "Hello from fake Bedrock" and msg.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert msg.usage.cache_read_input_tokens == 4 and msg.usage.output_tokens == 5
    async with claude.messages.stream(model="claude", max_tokens=50,
                                      messages=[{"role": "user", "content": "Hi"}]) as events:
        text = "".join([t async for t in events.text_stream])
        final = await events.get_final_message()
    assert text == "Hello from fake Bedrock" and final.stop_reason == "end_turn"
    assert bedrock.verified == 2


async def test_messages_client_tool_names_map_back_through_the_hub(claude: anthropic.AsyncAnthropic,
                                                                     bedrock: FakeBedrock) -> None:
    sent_name = bedrock_name("get.weather")
    bedrock.behaviour.tool_call = {"name": sent_name, "input": {"city": "Oslo"}}
    tools: Any = [{"name": "get.weather", "input_schema": {"type": "object"}}]
    msg = await claude.messages.create(model="claude", max_tokens=50, tools=tools,
                                       messages=[{"role": "user", "content": "Weather?"}])
    use = msg.content[-1]
    assert use.type == "tool_use" and use.name == "get.weather" and use.input == {"city": "Oslo"}
    assert msg.stop_reason == "tool_use"
    async with claude.messages.stream(model="claude", max_tokens=50, tools=tools,
                                      messages=[{"role": "user", "content": "Weather?"}]) as events:
        final = await events.get_final_message()
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [("get.weather", {"city": "Oslo"})]
    assert bedrock.requests[-1].json()["toolConfig"]["tools"][0]["toolSpec"]["name"] == sent_name


async def test_responses_client_through_chat(gw: TestServer, openai_clients: SDKClients,
                                             bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    done = await client.responses.create(model="claude", input="Hi", store=False)
    assert done.output_text == "Hello from fake Bedrock"
    stream = await client.responses.create(model="claude", input="Hi", stream=True, store=False)
    deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello from fake Bedrock"


# --- embeddings (InvokeModel: Titan, Cohere) ----------------------------------------------------


async def test_titan_embeddings_signed_to_invoke(gw: TestServer, openai_clients: SDKClients,
                                                 bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    out = await client.embeddings.create(model="amazon.titan-embed-text-v2:0", input="hello embedded world",
                                         dimensions=3, encoding_format="float")
    assert [d.embedding for d in out.data] == [embedding_of("hello embedded world", 3)]
    assert out.usage.prompt_tokens == 3 and out.usage.total_tokens == 3
    assert out.model == "amazon.titan-embed-text-v2:0"
    assert bedrock.verified == 1
    assert bedrock.raw_paths[-1] == f"/model/{quote('amazon.titan-embed-text-v2:0', safe='')}/invoke"
    assert bedrock.requests[-1].json() == {"inputText": "hello embedded world", "dimensions": 3, "normalize": True}


async def test_titan_embeddings_base64_as_the_sdk_asks(gw: TestServer, openai_clients: SDKClients,
                                                       bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    out = await client.embeddings.create(model="amazon.titan-embed-text-v1", input=["one text"])  # SDK: base64
    assert out.data[0].embedding == embedding_of("one text")  # decoded by the SDK from float32
    assert bedrock.requests[-1].json() == {"inputText": "one text"}


async def test_titan_refuses_several_inputs_naming_input(gw: TestServer, openai_clients: SDKClients,
                                                         bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="amazon.titan-embed-text-v2:0", input=["a", "b"])
    assert caught.value.param == "input" and "one text" in caught.value.message
    assert bedrock.requests == []


async def test_cohere_embeddings_batch(gw: TestServer, openai_clients: SDKClients, bedrock: FakeBedrock) -> None:
    _, client = openai_clients(gw)
    texts = ["first text", "the second, longer text"]
    out = await client.embeddings.create(model="cohere.embed-english-v3", input=texts)
    assert [d.embedding for d in out.data] == [embedding_of(t) for t in texts]
    assert [d.index for d in out.data] == [0, 1]
    assert out.usage.prompt_tokens == sum(-(-len(t.encode()) // 4) for t in texts)  # estimated: bytes / 4
    assert bedrock.requests[-1].json() == {"texts": texts, "input_type": "search_document"}
    assert bedrock.raw_paths[-1] == "/model/cohere.embed-english-v3/invoke" and bedrock.verified == 1
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model="cohere.embed-multilingual-v3", input="x", dimensions=8)
    assert caught.value.param == "dimensions"


def test_cohere_typed_embeddings_answer_is_read() -> None:
    request = {"model": "cohere", "input": ["a", "bb"], "encoding_format": "float"}
    out, usage = embeddings_on_bedrock.translate_response(
        {"embeddings": {"float": [[1.0, 2.0], [3.0, 4.0]]}, "id": "x", "texts": ["a", "bb"]}, request)
    assert [d["embedding"] for d in out["data"]] == [[1.0, 2.0], [3.0, 4.0]] and usage.input_tokens == 2
    with pytest.raises(MalformedUpstream):
        embeddings_on_bedrock.translate_response({"embeddings": [[1.0]]}, request)


async def test_embedding_validation_error_reaches_client(gw: TestServer, openai_clients: SDKClients) -> None:
    _, client = openai_clients(gw)
    with pytest.raises(openai.BadRequestError) as caught:  # Titan v1 takes no dimensions
        await client.embeddings.create(model="amazon.titan-embed-text-v1", input="hi", dimensions=3)
    assert "Malformed input request" in caught.value.message


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("upstream", "status", "error_class"), [
    ((429, "ThrottlingException", "Too many requests, please wait."), 429, openai.RateLimitError),
    ((400, "ValidationException", "Malformed input request"), 400, openai.BadRequestError),
    ((429, "ModelNotReadyException", "Model is not ready"), 503, openai.InternalServerError),
    ((503, "ServiceUnavailableException", "Service unavailable"), 503, openai.InternalServerError),
])
async def test_bedrock_exceptions_map_to_statuses(gw: TestServer, openai_clients: SDKClients, bedrock: FakeBedrock,
                                                  upstream: tuple[int, str, str], status: int,
                                                  error_class: type[Exception]) -> None:
    bedrock.behaviour.error = upstream
    _, client = openai_clients(gw)
    with pytest.raises(error_class) as caught:
        await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.body["message"] == upstream[2]  # type: ignore[attr-defined]
    assert caught.value.body["code"] == upstream[1]  # type: ignore[attr-defined]


async def test_throttling_reaches_anthropic_clients_as_rate_limit(claude: anthropic.AsyncAnthropic,
                                                                  bedrock: FakeBedrock) -> None:
    bedrock.behaviour.error = (429, "ThrottlingException", "Too many requests")
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_exception_frame_mid_stream_ends_in_an_error(gw: TestServer, openai_clients: SDKClients,
                                                           bedrock: FakeBedrock) -> None:
    bedrock.behaviour.stream_exception = "throttlingException"
    _, client = openai_clients(gw)
    stream = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}],
                                                  stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            seen.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(seen) == "Hello" and "Too many tokens" in caught.value.message


async def test_a_wrong_secret_fails_the_signature_check(make_gateway: GatewayFactory, bedrock: FakeBedrock,
                                                        openai_clients: SDKClients,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AWS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("TEST_AWS_SECRET", "not-the-secret")
    gw = await make_gateway(bedrock_config(bedrock, aws_access_key_id={"env": "TEST_AWS_KEY_ID"},
                                           aws_secret_access_key={"env": "TEST_AWS_SECRET"}))
    _, client = openai_clients(gw)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert "signature" in caught.value.message and bedrock.verified == 0
    assert "not-the-secret" not in str(caught.value.body)


async def test_credentials_from_botocores_chain(make_gateway: GatewayFactory, bedrock: FakeBedrock,
                                                openai_clients: SDKClients, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Any) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    gw = await make_gateway(bedrock_config(bedrock))
    _, client = openai_clients(gw)
    done = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert done.choices[0].message.content == "Hello from fake Bedrock" and bedrock.verified == 1


async def test_session_token_is_sent_and_signed(make_gateway: GatewayFactory, aiohttp_server: Any,
                                                openai_clients: SDKClients, static_keys: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = await serve_fake(aiohttp_server, FakeBedrock(ACCESS_KEY, SECRET_KEY, REGION, session_token="tok-1"))
    monkeypatch.setenv("TEST_AWS_TOKEN", "tok-1")
    gw = await make_gateway(bedrock_config(fake, aws_session_token={"env": "TEST_AWS_TOKEN"}, **static_keys))
    _, client = openai_clients(gw)
    await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert fake.verified == 1 and "x-amz-security-token" in fake.requests[-1].headers["Authorization"]


async def test_bedrock_api_key_is_a_bearer_token(make_gateway: GatewayFactory, aiohttp_server: Any,
                                                 openai_clients: SDKClients, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = await serve_fake(aiohttp_server, FakeBedrock(ACCESS_KEY, SECRET_KEY, REGION, api_key="bedrock-api-key"))
    monkeypatch.setenv("TEST_BEDROCK_KEY", "bedrock-api-key")
    gw = await make_gateway(bedrock_config(fake, api_key={"env": "TEST_BEDROCK_KEY"}))
    _, client = openai_clients(gw)
    done = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}])
    assert done.choices[0].message.content == "Hello from fake Bedrock" and fake.verified == 1


# --- eventstream decoding and config ------------------------------------------------------------


async def _decode(raw: bytes, step: int) -> bytes:
    body = _EventStreamBody(_Chunks([raw[i : i + step] for i in range(0, len(raw), step)]))
    out = b""
    while chunk := await body.readany():
        out += chunk
    return out


class _Chunks(_Bytes):
    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__(b"")
        self._chunks = chunks

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


async def test_eventstream_frames_decode_the_same_at_any_split() -> None:
    raw = (event("messageStart", {"role": "assistant"}) + event("contentBlockDelta", {"delta": {"text": "ü"}})
           + exception("throttlingException", "slow down"))
    whole = await _decode(raw, len(raw))
    assert whole == (b'event: messageStart\ndata: {"role":"assistant"}\n\n'
                     b'event: contentBlockDelta\ndata: {"delta":{"text":"\xc3\xbc"}}\n\n'
                     b'event: error\ndata: {"exception":"throttlingException","message":"slow down"}\n\n')
    for step in (1, 2, 7, 13):
        assert await _decode(raw, step) == whole


async def test_a_corrupt_frame_breaks_the_stream() -> None:
    frame = bytearray(eventstream_frame({":message-type": "event", ":event-type": "messageStart"}, b"{}"))
    frame[-6] ^= 0xFF  # payload byte: the message CRC no longer matches
    with pytest.raises(aiohttp.ClientPayloadError):
        await _decode(bytes(frame), 3)


def test_bedrock_config_and_urls() -> None:
    cfg = parse_config({"providers": [{"name": "b", "kind": "bedrock", "region": "eu-central-1"}],
                        "models": [{"name": "*", "provider": "b"}]})
    provider = build_provider(cfg.providers[0])
    assert str(provider.request_url("completions", ARN, stream=True)) == (
        f"https://bedrock-runtime.eu-central-1.amazonaws.com/model/{quote(ARN, safe='')}/converse-stream")
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [{"name": "b", "kind": "bedrock"}], "models": [{"name": "*", "provider": "b"}]})
    assert "providers[0].region: required key missing" in str(caught.value)


async def test_passthrough_is_refused_not_sent_unsigned(gw: TestServer, bedrock: FakeBedrock) -> None:
    url = gw.make_url("/model/x/invoke")
    async with aiohttp.ClientSession() as session, session.post(
            url, data=b"{}", headers={"Authorization": "Bearer client-key"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "unsupported_route"
    assert bedrock.requests == []


def test_bedrock_needs_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.config

    real = gateway.config.find_spec
    monkeypatch.setattr(gateway.config, "find_spec", lambda name: None if name == "botocore" else real(name))
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [{"name": "b", "kind": "bedrock", "region": "us-east-1"}],
                      "models": [{"name": "*", "provider": "b"}]})
    assert "needs botocore: pip install 'llm-gateway[bedrock]'" in str(caught.value)
