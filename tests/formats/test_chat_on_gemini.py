"""Chat Completions client → Gemini provider: requests, responses, streams, errors."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest, MalformedUpstream
from gateway.formats import gemini
from gateway.formats.chat_on_gemini import (
    ChatOnGeminiStream,
    translate_error,
    translate_request,
    translate_response,
)
from gateway.formats.gemini_schema import MAX_DEPTH, gemini_schema
from gateway.sse import DONE_FRAME, SSEEvent
from tests.formats.helpers import FIXTURES, decode_frames, fixture_cases, run_stream

CREATED = 1767225600
_FIXTURES = FIXTURES / "chat_on_gemini"


def _stream(opts: dict[str, Any]) -> ChatOnGeminiStream:
    return ChatOnGeminiStream(opts["model"], include_usage=opts["include_usage"], created=opts["created"])


# --- golden fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("case", fixture_cases("chat_on_gemini/requests"))
def test_request_fixture_translates_to_expected_gemini_body(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["in"])
    assert translate_request(case["in"]) == case["out"]
    assert case["in"] == before  # the client's body is never mutated


@pytest.mark.parametrize("case", fixture_cases("chat_on_gemini/responses"))
def test_response_fixture_translates_to_expected_chat_completion(case: dict[str, Any]) -> None:
    assert translate_response(case["in"], created=CREATED)[0] == case["out"]


@pytest.mark.parametrize("case", fixture_cases("chat_on_gemini/errors"))
def test_error_fixture_translates_status_and_body(case: dict[str, Any]) -> None:
    status, body = translate_error(case["status"], case["body"].encode())
    assert status == case["out_status"]
    assert orjson.loads(body) == case["out_body"]


@pytest.mark.parametrize("case", fixture_cases("chat_on_gemini/streams"))
def test_stream_fixture_fed_whole_gives_expected_frames_and_state(case: dict[str, Any]) -> None:
    translator = _stream(case["options"])
    frames = run_stream(translator, case["in"].encode(), byte_at_a_time=False)
    assert decode_frames(frames) == case["out"]
    assert translator.done == case["state"]["done"]
    assert translator.failed == case["state"]["failed"]
    assert translator.usage.to_chat() == case["state"]["usage"]


@pytest.mark.parametrize("case", fixture_cases("chat_on_gemini/streams"))
def test_stream_fixture_fed_one_byte_at_a_time_gives_identical_frames(case: dict[str, Any]) -> None:
    raw = case["in"].encode()
    whole = run_stream(_stream(case["options"]), raw, byte_at_a_time=False)
    split = run_stream(_stream(case["options"]), raw, byte_at_a_time=True)
    assert split == whole
    assert decode_frames(split) == case["out"]


@pytest.mark.parametrize("case", fixture_cases("chat_on_gemini/streams"))
def test_stream_ends_with_exactly_one_terminator(case: dict[str, Any]) -> None:
    out = case["out"]
    terminators = [i for i, item in enumerate(out) if item == "[DONE]" or "error" in item]
    assert terminators == [len(out) - 1]


def test_stream_and_whole_answer_agree_on_content_and_tool_call_ids() -> None:
    """What an SDK accumulates from the stream equals the non-stream translation."""
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    case = orjson.loads((_FIXTURES / "streams/parallel_function_calls.json").read_bytes())
    chunks = decode_frames(run_stream(_stream(case["options"]), case["in"].encode(), byte_at_a_time=False))
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks[:-1]:
        list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    streamed = state.get_final_completion().choices[0]
    whole = orjson.loads((_FIXTURES / "responses/function_calls.json").read_bytes())["cases"][0]["out"]["choices"][0]
    assert streamed.finish_reason == whole["finish_reason"] == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed.message.tool_calls or []] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in whole["message"]["tool_calls"]]


# --- request behaviour -------------------------------------------------------------------

_BASE = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"n": 0}, "n"),
        ({"seed": 1.5}, "seed"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_completion_tokens": "10"}, "max_completion_tokens"),
        ({"stop": 5}, "stop"),
        ({"stop": ["ok", 5]}, "stop[1]"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"response_format": {"type": "grammar"}}, "response_format"),
        ({"response_format": "json"}, "response_format"),
        ({"tools": [{"type": "custom", "custom": {"name": "g"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"name": 7}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ],
)
def test_unsupported_or_wrongly_typed_fields_are_a_400_naming_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        translate_request({**_BASE, **extra})
    assert info.value.status == 400
    assert info.value.param == param


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "data:image/png,not-base64"}},
        {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": 5}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "flac"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "refusal", "refusal": "no"},
    ],
)
def test_unsupported_user_content_is_rejected(part: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        translate_request({**_BASE, "messages": [{"role": "user", "content": [part]}]})


def test_tool_message_answering_no_earlier_call_is_rejected() -> None:
    messages = [{"role": "user", "content": "go"}, {"role": "tool", "tool_call_id": "call_unknown", "content": "42"}]
    with pytest.raises(BadRequest) as info:
        translate_request({**_BASE, "messages": messages})
    assert info.value.param == "messages[1].tool_call_id"


def test_tool_message_without_tool_call_id_is_rejected() -> None:
    with pytest.raises(BadRequest, match="tool_call_id"):
        translate_request({**_BASE, "messages": [{"role": "tool", "content": "42"}]})


def test_n_of_one_sends_no_candidate_count() -> None:
    assert "generationConfig" not in translate_request({**_BASE, "n": 1})


def test_tool_arguments_nested_too_deeply_to_send_are_a_400() -> None:
    deep = "[" * 300 + "]" * 300
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":' + deep + "}"}}
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
    with pytest.raises(BadRequest) as info:
        translate_request({**_BASE, "messages": messages})
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_thought_signature_survives_the_openai_sdk_types_into_the_next_request() -> None:
    """The signed call comes back from a client that keeps only the SDK's typed fields."""
    from openai.types.chat import ChatCompletion

    answer = orjson.loads((_FIXTURES / "responses/function_calls.json").read_bytes())["cases"][0]["in"]
    completion = ChatCompletion.model_validate(translate_response(answer)[0])
    message = completion.choices[0].message
    calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
             for c in message.tool_calls or [] if c.type == "function"]
    follow_up = {
        "model": "gemini-3-pro-preview",
        "messages": [{"role": "user", "content": "weather and time?"},
                     {"role": "assistant", "content": message.content, "tool_calls": calls},
                     *({"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in calls)],
    }
    model_turn = translate_request(follow_up)["contents"][1]
    assert model_turn == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7Q+sig/one=="},
        {"functionCall": {"name": "get_time", "args": {}}},
    ]}


# --- schemas -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}},
         "recursive"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}, "does not resolve"),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.com/schema.json"}}}, "not a local"),
        ("object", "JSON Schema object"),
    ],
)
def test_schemas_gemini_cannot_express_are_a_400(schema: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        gemini_schema(schema, "tools[0].function.parameters")
    assert info.value.param == "tools[0].function.parameters"


def test_schema_nested_beyond_the_limit_is_a_400_not_a_crash() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH + 5):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(BadRequest, match="too large or nested"):
        gemini_schema(schema, "p")


def test_schema_whose_refs_expand_exponentially_is_a_400() -> None:
    defs: dict[str, Any] = {"D0": {"type": "string"}}
    for i in range(1, 30):
        defs[f"D{i}"] = {"type": "object", "properties": {"a": {"$ref": f"#/$defs/D{i - 1}"},
                                                          "b": {"$ref": f"#/$defs/D{i - 1}"}}}
    with pytest.raises(BadRequest, match="too large"):
        gemini_schema({"$ref": "#/$defs/D29", "$defs": defs}, "p")


def test_schema_several_types_become_any_of_and_all_of_merges() -> None:
    schema = {"type": ["string", "integer", "null"], "allOf": [{"description": "id or name"}]}
    assert gemini_schema(schema, "p") == {
        "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "description": "id or name", "nullable": True}


# --- response behaviour ------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"candidates": "none"},
        {"candidates": [5]},
        {"candidates": []},
        {"candidates": [{"content": {"parts": [7]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]},
        {"candidates": [{"content": {"parts": [{"text": 3}]}}]},
        {"candidates": [{"index": "0", "content": {"parts": []}}]},
        {"candidates": [{"finishReason": 1}]},
        {"candidates": [{"content": {"parts": [{"text": "x"}]}}], "responseId": 9},
    ],
)
def test_answers_of_the_wrong_shape_are_malformed_upstream(answer: dict[str, Any]) -> None:
    with pytest.raises(MalformedUpstream) as info:
        translate_response(answer)
    assert info.value.status == 502


def test_response_usage_counts_cached_and_thinking_tokens_once() -> None:
    usage = gemini.usage_from_gemini({"promptTokenCount": 1000, "cachedContentTokenCount": 900,
                                      "candidatesTokenCount": 50, "thoughtsTokenCount": 200,
                                      "toolUsePromptTokenCount": 30, "totalTokenCount": 1280})
    assert (usage.input_tokens, usage.cached_tokens) == (1030, 900)
    assert (usage.output_tokens, usage.reasoning_tokens) == (250, 200)
    assert usage.total_tokens == 1280


def test_response_without_response_id_gets_a_chat_id_and_distinct_call_ids() -> None:
    part = {"functionCall": {"name": "f", "args": {}}}
    out = translate_response({"candidates": [{"content": {"parts": [part, part]}, "finishReason": "STOP"}]})[0]
    ids = [c["id"] for c in out["choices"][0]["message"]["tool_calls"]]
    assert out["id"].startswith("chatcmpl-")
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)


def test_split_call_id_reverses_call_id() -> None:
    assert gemini.split_call_id(gemini.call_id(None, "c2ln", "r", 3)) == ("call_r_3", "c2ln")
    assert gemini.split_call_id("call_plain") == ("call_plain", None)


# --- stream behaviour --------------------------------------------------------------------


def _chunk(parts: list[dict[str, Any]], finish: str | None = None, index: int = 0) -> SSEEvent:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
    if finish:
        candidate["finishReason"] = finish
    return SSEEvent("", orjson.dumps({"candidates": [candidate], "responseId": "r"}))


def _feed(translator: ChatOnGeminiStream, events: list[SSEEvent]) -> list[Any]:
    frames: list[bytes] = []
    for event in events:
        frames += translator.feed(event)
    return decode_frames(frames)


def test_stream_finish_chunk_waits_for_eof_before_done() -> None:
    translator = ChatOnGeminiStream("m", include_usage=False)
    out = _feed(translator, [_chunk([{"text": "hi"}], "STOP")])
    assert out[-1]["choices"][0]["finish_reason"] == "stop"
    assert not translator.done  # Gemini has no end marker: only EOF ends the stream
    assert translator.finish() == [DONE_FRAME]
    assert translator.done and translator.finish() == []


def test_stream_chunks_after_a_candidate_finished_are_ignored() -> None:
    translator = ChatOnGeminiStream("m", include_usage=False)
    out = _feed(translator, [_chunk([{"text": "a"}], "STOP"), _chunk([{"text": "late"}])])
    assert [c["choices"][0]["delta"] for c in out] == [{"role": "assistant", "content": ""}, {"content": "a"}, {}]


def test_stream_fail_emits_one_error_frame_then_nothing() -> None:
    translator = ChatOnGeminiStream("m", include_usage=True)
    assert decode_frames(translator.fail("upstream timed out", 504)) == [
        {"error": {"message": "upstream timed out", "type": "server_error", "param": None, "code": "upstream_error"}}]
    assert translator.failed
    assert translator.fail("again") == []
    assert translator.feed(_chunk([{"text": "x"}])) == []
    assert translator.finish() == []


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'{"candidates": 5}', b'{"candidates": [{"content": 1}]}',
                                  b'{"candidates": [{"content": {"parts": [{"text": 5}]}}]}'])
def test_stream_event_of_the_wrong_shape_fails_the_stream_once(data: bytes) -> None:
    translator = ChatOnGeminiStream("m", include_usage=False)
    out = _feed(translator, [SSEEvent("", data), _chunk([{"text": "x"}], "STOP")])
    assert len(out) == 1 and out[0]["error"]["code"] == "upstream_error"
    assert translator.failed and translator.finish() == []


def test_stream_error_event_of_any_shape_ends_the_stream_with_its_message() -> None:
    translator = ChatOnGeminiStream("m", include_usage=False)
    out = _feed(translator, [SSEEvent("", b'{"error": {"code": 429, "message": "slow down", '
                                          b'"status": "RESOURCE_EXHAUSTED"}}')])
    assert out == [{"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                              "code": "RESOURCE_EXHAUSTED"}}]
    other = ChatOnGeminiStream("m", include_usage=False)
    assert _feed(other, [SSEEvent("", b'{"error": "boom"}')])[0]["error"]["message"] == "upstream error"


def test_stream_without_include_usage_has_no_usage_key_or_usage_chunk() -> None:
    translator = ChatOnGeminiStream("m", include_usage=False)
    out = _feed(translator, [_chunk([{"text": "hi"}], "STOP")]) + decode_frames(translator.finish())
    assert out[-1] == "[DONE]"
    assert all("usage" not in chunk and chunk["choices"] for chunk in out[:-1])


def test_stream_empty_upstream_is_one_error_frame() -> None:
    translator = ChatOnGeminiStream("m", include_usage=True)
    assert decode_frames(run_stream(translator, b"", byte_at_a_time=False))[0]["error"]["code"] == "upstream_error"
    assert translator.failed
