"""Property tests: whatever JSON a client or Gemini sends, the Gemini translators raise only
the gateway's own errors (a 400 for a client body, a 502 for a provider answer), never
crash, and a stream ends at most once."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import BadRequest, MalformedUpstream
from gateway.formats import chat_on_gemini, embeddings_on_gemini
from gateway.formats.gemini_schema import gemini_schema
from gateway.sse import SSEEvent, encode_event

# JSON as orjson parses it: integers fit 64 bits, no NaN or infinity.
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The strategy's values, or any JSON at all in their place."""
    return strategy | json_values


schemas = st.recursive(
    st.fixed_dictionaries({}, optional={"type": maybe(st.sampled_from(["string", "integer", "object", "null"])),
                                        "enum": json_values, "format": json_values, "$ref": maybe(st.just("#/$defs/A"))}),
    lambda children: st.fixed_dictionaries({}, optional={
        "type": maybe(st.lists(st.sampled_from(["string", "null", "array"]), max_size=3)),
        "properties": st.dictionaries(st.text(max_size=4), children, max_size=3),
        "items": maybe(children), "anyOf": st.lists(children, max_size=3), "allOf": st.lists(children, max_size=2),
        "required": json_values, "$defs": st.fixed_dictionaries({"A": children})}),
    max_leaves=12,
)
parts = st.fixed_dictionaries({"type": maybe(st.sampled_from(["text", "image_url", "input_audio", "file"]))}, optional={
    "text": json_values, "image_url": maybe(st.fixed_dictionaries({"url": maybe(st.sampled_from(
        ["data:image/png;base64,AAAA", "https://x.test/a.png", "data:,x"]))})),
    "input_audio": json_values, "file": maybe(st.fixed_dictionaries({"file_data": json_values}))})
tool_calls = st.fixed_dictionaries({"id": maybe(st.sampled_from(["c1", "c2__thought__c2ln"]))}, optional={
    "type": json_values, "function": maybe(st.fixed_dictionaries({"name": maybe(st.just("f")),
                                                                   "arguments": json_values}))})
messages = st.fixed_dictionaries(
    {"role": maybe(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))},
    optional={"content": maybe(st.lists(parts, max_size=3)), "tool_calls": maybe(st.lists(tool_calls, max_size=2)),
              "tool_call_id": maybe(st.sampled_from(["c1", "c2__thought__c2ln"])), "refusal": json_values})
tools = st.fixed_dictionaries({"type": maybe(st.just("function"))}, optional={
    "function": maybe(st.fixed_dictionaries({"name": maybe(st.just("f"))}, optional={"parameters": schemas}))})
chat_bodies = st.fixed_dictionaries(
    {"model": maybe(st.sampled_from(["gemini-2.5-flash", "gemini-3-pro-preview"])),
     "messages": maybe(st.lists(messages, max_size=4))},
    optional={"tools": maybe(st.lists(tools, max_size=2)), "tool_choice": json_values,
              "response_format": maybe(st.fixed_dictionaries({"type": maybe(st.sampled_from(
                  ["json_object", "json_schema"]))}, optional={"json_schema": json_values})),
              "reasoning_effort": json_values, "stop": json_values, "n": json_values, "temperature": json_values,
              "max_tokens": json_values, "seed": json_values})

gemini_parts = st.fixed_dictionaries({}, optional={
    "text": json_values, "thought": json_values, "thoughtSignature": json_values,
    "functionCall": maybe(st.fixed_dictionaries({"name": maybe(st.just("f"))}, optional={"args": json_values,
                                                                                          "id": json_values}))})
candidates = st.fixed_dictionaries({}, optional={
    "content": maybe(st.fixed_dictionaries({"parts": maybe(st.lists(gemini_parts, max_size=3))})),
    "finishReason": maybe(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"])), "index": json_values})
answers = st.fixed_dictionaries({}, optional={
    "candidates": maybe(st.lists(candidates, max_size=2)), "usageMetadata": json_values,
    "promptFeedback": json_values, "responseId": json_values, "modelVersion": json_values, "error": json_values})

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.one_of(chat_bodies, json_values))
def test_any_chat_body_translates_or_is_a_400(body: Any) -> None:
    if not isinstance(body, dict):
        return  # the route reads a JSON object before any translator runs
    try:
        out = chat_on_gemini.translate_request(body)
    except BadRequest:
        return
    orjson.dumps(out)  # what goes to Gemini always serialises


@SETTINGS
@given(schemas)
def test_any_schema_is_cleaned_or_is_a_400(schema: Any) -> None:
    with contextlib.suppress(BadRequest):
        orjson.dumps(gemini_schema(schema, "p"))


@SETTINGS
@given(st.one_of(answers, st.dictionaries(st.text(max_size=8), json_values, max_size=4)))
def test_any_gemini_answer_translates_or_is_malformed_upstream(answer: dict[str, Any]) -> None:
    try:
        out, _ = chat_on_gemini.translate_response(answer)
    except MalformedUpstream:
        return
    orjson.dumps(out)


@SETTINGS
@given(st.integers(min_value=400, max_value=599), st.one_of(json_values.map(orjson.dumps), st.binary(max_size=40)))
def test_any_error_body_becomes_an_openai_error(status: int, body: bytes) -> None:
    out_status, out = chat_on_gemini.translate_error(status, body)
    assert out_status == status
    assert set(orjson.loads(out)["error"]) == {"message", "type", "param", "code"}


@SETTINGS
@given(st.lists(st.one_of(answers.map(orjson.dumps), json_values.map(orjson.dumps), st.binary(max_size=20)),
                max_size=5), st.booleans())
def test_any_gemini_stream_ends_at_most_once(events: list[bytes], include_usage: bool) -> None:
    translator = chat_on_gemini.ChatOnGeminiStream("m", include_usage=include_usage)
    frames: list[bytes] = []
    for data in events:
        frames += translator.feed(SSEEvent("", data.replace(b"\n", b" ")))
    frames += translator.finish()
    endings = [f for f in frames if f == b"data: [DONE]\n\n" or f.startswith(b'data: {"error"')]
    assert len(endings) == 1 and frames[-1] == endings[0]
    assert translator.done != translator.failed
    assert translator.relay_block(encode_event(b"{}")) == b""  # nothing after the end


@SETTINGS
@given(st.fixed_dictionaries({"model": maybe(st.just("gemini-embedding-001")),
                              "input": maybe(st.lists(st.text(max_size=5), max_size=3))},
                             optional={"dimensions": json_values, "encoding_format": json_values}),
       st.dictionaries(st.just("embeddings"), json_values) | answers)
def test_any_embeddings_exchange_translates_or_raises_gateway_errors(body: dict[str, Any], answer: Any) -> None:
    try:
        embeddings_on_gemini.translate_request(body)
    except BadRequest:
        return
    with contextlib.suppress(MalformedUpstream):
        orjson.dumps(embeddings_on_gemini.translate_response(answer, body)[0])
