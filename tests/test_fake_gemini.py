"""The fake Gemini upstream speaks Google's wire (checked with raw aiohttp), and the Chat
translator's requests are ones it accepts and its answers ones the translator reads."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from gateway.formats import chat_on_gemini, embeddings_on_gemini
from gateway.formats.stream_pipe import StreamPipe
from tests.conftest import serve_fake
from tests.fake_gemini import GEMINI_KEY, FakeGemini
from tests.formats.helpers import decode_frames

MODEL = "gemini-2.5-flash"
HEADERS = {"x-goog-api-key": GEMINI_KEY}
BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture
async def fake_gemini(aiohttp_server: Any) -> FakeGemini:
    return await serve_fake(aiohttp_server, FakeGemini())


def _url(fake: FakeGemini, method: str, query: str = "") -> str:
    return str(fake.server.make_url(f"/v1beta/models/{MODEL}:{method}")) + query  # type: ignore[attr-defined]


async def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=orjson.dumps(body), headers={"Content-Type": "application/json", **(HEADERS if headers is None else headers)}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


# --- the fake itself ---------------------------------------------------------------------


async def test_generate_content_answers_a_candidate_with_usage_and_records_the_request(
        fake_gemini: FakeGemini) -> None:
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), BODY)
    answer = orjson.loads(raw)
    assert status == 200
    assert answer["candidates"][0]["content"] == {"parts": [{"text": "Hello from fake Gemini"}], "role": "model"}
    assert answer["candidates"][0]["finishReason"] == "STOP"
    assert answer["usageMetadata"]["totalTokenCount"] == 16 and answer["modelVersion"] == MODEL
    rec = fake_gemini.requests[-1]
    assert rec.path == f"/v1beta/models/{MODEL}:generateContent"
    assert rec.headers["x-goog-api-key"] == GEMINI_KEY and rec.json() == BODY


async def test_key_in_the_query_is_accepted_and_the_raw_query_recorded(fake_gemini: FakeGemini) -> None:
    status, _, _ = await _post(_url(fake_gemini, "generateContent", f"?key={GEMINI_KEY}"), BODY, headers={})
    assert status == 200
    assert fake_gemini.requests[-1].query == f"key={GEMINI_KEY}"


@pytest.mark.parametrize(("headers", "status", "rpc", "reason"), [
    ({}, 403, "PERMISSION_DENIED", "SERVICE_DISABLED"),
    ({"x-goog-api-key": "AIzaWrong"}, 400, "INVALID_ARGUMENT", "API_KEY_INVALID"),
])
async def test_missing_or_wrong_key_is_a_google_shaped_error(
        fake_gemini: FakeGemini, headers: dict[str, str], status: int, rpc: str, reason: str) -> None:
    got, _, raw = await _post(_url(fake_gemini, "generateContent"), BODY, headers=headers)
    error = orjson.loads(raw)["error"]
    assert got == status == error["code"]
    assert error["status"] == rpc and error["details"][0]["reason"] == reason


async def test_unknown_fields_and_empty_text_are_rejected_as_google_does(fake_gemini: FakeGemini) -> None:
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), {**BODY, "model": MODEL})
    assert status == 400 and 'Unknown name "model"' in orjson.loads(raw)["error"]["message"]
    empty = {"contents": [{"role": "user", "parts": [{"text": ""}]}]}
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), empty)
    assert status == 400 and "empty text" in orjson.loads(raw)["error"]["message"]
    status, _, _ = await _post(_url(fake_gemini, "generateContent"), {**BODY, "generationConfig": {"max_tokens": 5}})
    assert status == 400


async def test_stream_with_alt_sse_is_crlf_separated_events_without_an_end_marker(fake_gemini: FakeGemini) -> None:
    status, headers, raw = await _post(_url(fake_gemini, "streamGenerateContent", "?alt=sse"), BODY)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and all(e.startswith(b"data: {") for e in events[:-1])
    chunks = [orjson.loads(e[6:]) for e in events[:-1]]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "Hello from fake Gemini"
    assert [c["candidates"][0].get("finishReason") for c in chunks][-2:] == [None, "STOP"]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 5


async def test_stream_without_alt_sse_is_one_json_array(fake_gemini: FakeGemini) -> None:
    status, headers, raw = await _post(_url(fake_gemini, "streamGenerateContent"), BODY)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert isinstance(orjson.loads(raw), list)


async def test_function_calls_carry_the_thought_signature_on_the_first_call(fake_gemini: FakeGemini) -> None:
    fake_gemini.behaviour.words = []
    fake_gemini.behaviour.function_calls = [{"name": "a", "args": {"x": 1}}, {"name": "b"}]
    fake_gemini.behaviour.thought_signature = "c2ln"
    _, _, raw = await _post(_url(fake_gemini, "generateContent"), BODY)
    assert orjson.loads(raw)["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "b", "args": {}}},
    ]


async def test_required_thought_signatures_reject_a_call_that_lost_its_signature(fake_gemini: FakeGemini) -> None:
    fake_gemini.behaviour.require_thought_signatures = True
    call = {"functionCall": {"name": "a", "args": {}}}
    history: dict[str, Any] = {"contents": [BODY["contents"][0], {"role": "model", "parts": [call]},
                            {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {}}}]}]}
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), history)
    assert status == 400 and "thought_signature" in orjson.loads(raw)["error"]["message"]
    history["contents"][1]["parts"][0]["thoughtSignature"] = "c2ln"
    assert (await _post(_url(fake_gemini, "generateContent"), history))[0] == 200


async def test_configured_failure_and_cut_stream(fake_gemini: FakeGemini) -> None:
    fake_gemini.behaviour.status = 429
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), BODY)
    assert status == 429 and orjson.loads(raw)["error"]["status"] == "RESOURCE_EXHAUSTED"
    fake_gemini.behaviour.status = 200
    fake_gemini.behaviour.cut_after_chunks = 1
    with pytest.raises(aiohttp.ClientPayloadError):
        await _post(_url(fake_gemini, "streamGenerateContent", "?alt=sse"), BODY)


async def test_batch_embed_contents_and_count_tokens(fake_gemini: FakeGemini) -> None:
    item = {"model": f"models/{MODEL}", "content": {"parts": [{"text": "a b"}]}, "outputDimensionality": 3}
    status, _, raw = await _post(_url(fake_gemini, "batchEmbedContents"), {"requests": [item, item]})
    embeddings = orjson.loads(raw)["embeddings"]
    assert status == 200 and len(embeddings) == 2 and len(embeddings[0]["values"]) == 3
    status, _, _ = await _post(_url(fake_gemini, "batchEmbedContents"), {"requests": [{**item, "model": "models/x"}]})
    assert status == 400
    _, _, raw = await _post(_url(fake_gemini, "countTokens"), {"contents": [{"parts": [{"text": "one two three"}]}]})
    assert orjson.loads(raw)["totalTokens"] == 3


async def test_unknown_method_is_404(fake_gemini: FakeGemini) -> None:
    status, _, raw = await _post(_url(fake_gemini, "predict"), BODY)
    assert status == 404 and orjson.loads(raw)["error"]["status"] == "NOT_FOUND"


# --- the Chat translator against the fake ------------------------------------------------

CHAT: dict[str, Any] = {
    "model": "gemini-3-pro-preview",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "additionalProperties": False, "$defs": {"U": {"enum": ["c", "f"]}},
        "properties": {"city": {"type": "string"}, "unit": {"$ref": "#/$defs/U"}}, "required": ["city"]}}}],
    "tool_choice": "required", "reasoning_effort": "low", "max_tokens": 100,
    "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object", "properties": {
        "t": {"type": ["number", "null"]}}}}},
}


async def test_signed_function_call_round_trips_through_the_translator(fake_gemini: FakeGemini) -> None:
    b = fake_gemini.behaviour
    b.words, b.function_calls, b.thought_signature = [], [{"name": "get_weather", "args": {"city": "Paris"}}], "c2ln"
    b.require_thought_signatures = True
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), chat_on_gemini.translate_request(CHAT))
    assert status == 200
    answer, _ = chat_on_gemini.translate_response(orjson.loads(raw))
    message = answer["choices"][0]["message"]
    assert answer["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    follow_up = {**CHAT, "messages": [*CHAT["messages"], {"role": "assistant", "tool_calls": message["tool_calls"]},
                                      {"role": "tool", "tool_call_id": call["id"], "content": "18C"}]}
    status, _, raw = await _post(_url(fake_gemini, "generateContent"), chat_on_gemini.translate_request(follow_up))
    assert status == 200, raw
    model_turn = fake_gemini.requests[-1].json()["contents"][1]
    assert model_turn["role"] == "model" and model_turn["parts"][0]["thoughtSignature"] == "c2ln"


async def test_stream_from_the_fake_fed_in_network_chunks_translates_to_chat(fake_gemini: FakeGemini) -> None:
    pipe = StreamPipe(chat_on_gemini.ChatOnGeminiStream(MODEL, include_usage=True))
    out = b""
    async with aiohttp.ClientSession() as session, session.post(
            _url(fake_gemini, "streamGenerateContent", "?alt=sse"), headers=HEADERS,
            data=orjson.dumps(chat_on_gemini.translate_request(CHAT))) as resp:
        async for chunk in resp.content.iter_any():
            out += pipe.feed(chunk)
    frames = decode_frames([f + b"\n\n" for f in (out + pipe.finish()).split(b"\n\n") if f])
    assert "".join(f["choices"][0]["delta"].get("content", "") for f in frames[:-2] if f["choices"]) == \
        "Hello from fake Gemini"
    assert frames[-2]["usage"]["total_tokens"] == 16 and frames[-1] == "[DONE]"


async def test_embeddings_translate_against_the_fake(fake_gemini: FakeGemini) -> None:
    body = {"model": MODEL, "input": ["a", "b c"], "dimensions": 4}
    status, _, raw = await _post(_url(fake_gemini, "batchEmbedContents"), embeddings_on_gemini.translate_request(body))
    assert status == 200
    out, usage = embeddings_on_gemini.translate_response(orjson.loads(raw), body)
    assert [len(d["embedding"]) for d in out["data"]] == [4, 4] and usage.input_tokens == 2
