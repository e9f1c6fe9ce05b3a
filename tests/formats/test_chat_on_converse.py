"""Chat Completions ↔ Bedrock Converse (the pure translator)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest
from gateway.formats import chat_on_converse as cc
from gateway.formats.json_values import WrongShape
from tests.formats.helpers import decode_frames, run_stream

PNG = "iVBORw0KGgo="


def test_request_maps_system_images_tools_and_inference_config() -> None:
    body = {"model": "m", "max_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": "END",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "get.weather", "arguments": '{"city":"Oslo"}'}},
                    {"id": "t2", "type": "function", "function": {"name": "clock", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "rain"},
                {"role": "tool", "tool_call_id": "t2", "content": "noon"},
                {"role": "user", "content": "thanks"}],
            "tools": [{"type": "function", "function": {"name": "get.weather", "description": "Weather",
                                                        "parameters": {"type": "object", "properties": {}}}},
                      {"type": "function", "function": {"name": "clock"}}],
            "tool_choice": "required"}
    out = cc.translate_request(body)
    weather = cc.bedrock_tool_name("get.weather")
    assert weather != "get.weather" and cc.bedrock_tool_name(weather) == weather
    assert out["system"] == [{"text": "Be brief."}]
    assert out["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "What is this?"},
                                     {"image": {"format": "png", "source": {"bytes": PNG}}}]},
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t1", "name": weather, "input": {"city": "Oslo"}}},
            {"toolUse": {"toolUseId": "t2", "name": "clock", "input": {}}}]},
        {"role": "user", "content": [  # both results in one user turn, before the text
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "rain"}], "status": "success"}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "noon"}], "status": "success"}},
            {"text": "thanks"}]}]
    assert out["toolConfig"] == {"toolChoice": {"any": {}}, "tools": [
        {"toolSpec": {"name": weather, "description": "Weather",
                      "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        {"toolSpec": {"name": "clock", "inputSchema": {"json": {"type": "object"}}}}]}


def test_tool_history_without_tools_still_sends_tool_config() -> None:
    body = {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "ok"}], "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": "none"}
    out = cc.translate_request(body, default_max_tokens=77)
    assert out["toolConfig"] == {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]}
    assert out["inferenceConfig"] == {"maxTokens": 77}


def test_tool_names_fit_bedrocks_charset_and_stay_apart() -> None:
    long = "x" * 80
    for name in ("a.b", "a b", "ü", long, "a/b"):
        sent = cc.bedrock_tool_name(name)
        assert 1 <= len(sent) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in sent)
    assert cc.bedrock_tool_name("a.b") != cc.bedrock_tool_name("a b")
    assert cc.bedrock_tool_name("ok_name-1") == "ok_name-1"


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"n": 2, "messages": [{"role": "user", "content": "hi"}]}, "n"),
    ({"response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "hi"}]},
     "response_format"),
    ({"logprobs": True, "messages": [{"role": "user", "content": "hi"}]}, "logprobs"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0]"),
])
def test_what_converse_cannot_take_is_a_clear_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        cc.translate_request(body)
    assert caught.value.param == param


def test_wrong_shapes_name_the_field() -> None:
    with pytest.raises(WrongShape) as caught:
        cc.translate_request({"messages": [{"role": "tool", "content": "x"}]})
    assert caught.value.path == "messages[0].tool_call_id"


def test_response_maps_text_tool_use_stop_reason_and_usage() -> None:
    request = {"model": "claude", "tools": [{"type": "function", "function": {"name": "get.weather"}}],
               "messages": [{"role": "user", "content": "hi"}]}
    resp = {"output": {"message": {"role": "assistant", "content": [
        {"text": "Let me check."}, {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
        {"toolUse": {"toolUseId": "tu1", "name": cc.bedrock_tool_name("get.weather"), "input": {"city": "Oslo"}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14, "cacheReadInputTokens": 100,
                  "cacheWriteInputTokens": 5}}
    out, usage = cc.translate_response(resp, request, created=1)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [{"id": "tu1", "type": "function", "function": {
        "name": "get.weather", "arguments": '{"city":"Oslo"}'}}]
    assert out["usage"]["prompt_tokens"] == 115 and out["usage"]["prompt_tokens_details"]["cached_tokens"] == 100
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cache_write_tokens) == (115, 4, 100, 5)


@pytest.mark.parametrize(("reason", "finish"), [("end_turn", "stop"), ("stop_sequence", "stop"),
                                                 ("max_tokens", "length"), ("guardrail_intervened", "content_filter"),
                                                 ("content_filtered", "content_filter"),
                                                 ("model_context_window_exceeded", "length")])
def test_stop_reasons(reason: str, finish: str) -> None:
    resp = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": reason}
    assert cc.translate_response(resp, {"messages": []})[0]["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("error_type", "status", "openai_type"), [
    ("ThrottlingException", 429, "rate_limit_error"), ("ValidationException", 400, "invalid_request_error"),
    ("ModelNotReadyException", 503, "server_error"), ("ServiceUnavailableException", 503, "server_error"),
    ("AccessDeniedException:http://internal.amazon.com/coral/", 403, "permission_error"),
])
def test_errors_take_their_status_from_the_exception(error_type: str, status: int, openai_type: str) -> None:
    out_status, body = cc.translate_error(400, b'{"message":"nope"}', error_type)
    error = orjson.loads(body)["error"]
    assert out_status == status and error["message"] == "nope" and error["code"] == error_type.partition(":")[0]
    assert error["type"] == openai_type


def test_error_with_capital_message_and_no_type_keeps_the_status() -> None:
    status, body = cc.translate_error(500, b'{"Message":"boom"}')
    assert status == 500 and orjson.loads(body)["error"]["message"] == "boom"


def _events(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(f"event: {k}\n".encode() + b"data: " + orjson.dumps(p) + b"\n\n" for k, p in events)


STREAM = _events(
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1",
                                                                          "name": cc.bedrock_tool_name("a.b")}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"x":'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10}, "metrics": {"latencyMs": 5}}),
)


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_stream_text_tool_call_finish_and_usage(byte_at_a_time: bool) -> None:
    request = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
               "tools": [{"type": "function", "function": {"name": "a.b"}}], "messages": []}
    translator = cc.ChatOnConverseStream.for_request("client-model", request, False)
    chunks = decode_frames(run_stream(translator, STREAM, byte_at_a_time=byte_at_a_time))
    assert chunks[-1] == "[DONE]"
    body = chunks[:-1]
    assert all(c["model"] == "client-model" for c in body)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in body if c["choices"]) == "Hello"
    calls = [tc for c in body if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "tu1" and calls[0]["function"]["name"] == "a.b"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"x":1}'
    assert body[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert body[-1]["choices"] == [] and body[-1]["usage"]["total_tokens"] == 10
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (7, 3) and translator.done


def test_stream_without_include_usage_hides_the_usage_chunk() -> None:
    translator = cc.ChatOnConverseStream.for_request("m", {"messages": []}, False)
    chunks = decode_frames(run_stream(translator, STREAM, byte_at_a_time=False))
    assert all(c == "[DONE]" or c["choices"] for c in chunks) and translator.usage.total_tokens == 10


def test_stream_exception_ends_in_one_error_frame() -> None:
    raw = _events(("messageStart", {"role": "assistant"}),
                  ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
                  ("error", {"exception": "throttlingException", "message": "slow down"}),
                  ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ignored"}}))
    translator = cc.ChatOnConverseStream.for_request("m", {"messages": []}, False)
    chunks = decode_frames(run_stream(translator, raw, byte_at_a_time=False))
    assert chunks[-1]["error"]["message"] == "slow down" and chunks[-1]["error"]["type"] == "rate_limit_error"
    assert "[DONE]" not in chunks and translator.failed


def test_stream_cut_before_the_end_is_an_error() -> None:
    raw = _events(("messageStart", {"role": "assistant"}),
                  ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}))
    chunks = decode_frames(run_stream(cc.ChatOnConverseStream.for_request("m", {"messages": []}, False), raw,
                                      byte_at_a_time=False))
    assert "error" in chunks[-1] and "[DONE]" not in chunks


def test_error_type_copied_into_the_body_counts() -> None:
    status, body = cc.translate_error(400, b'{"message":"slow","__type":"ThrottlingException"}')
    assert status == 429 and orjson.loads(body)["error"]["code"] == "ThrottlingException"


def test_stream_survives_odd_block_indexes() -> None:
    raw = _events(("messageStart", {"role": "assistant"}),
                  ("contentBlockStart", {"contentBlockIndex": "x", "start": {"toolUse": {"toolUseId": "t", "name": "f"}}}),
                  ("contentBlockDelta", {"contentBlockIndex": None, "delta": {"toolUse": {"input": "{}"}}}),
                  ("messageStop", {"stopReason": "tool_use"}), ("metadata", {"usage": "nonsense"}))
    chunks = decode_frames(run_stream(cc.ChatOnConverseStream.for_request("m", {"messages": []}, False), raw,
                                      byte_at_a_time=False))
    assert chunks[-1] == "[DONE]" and chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_names_map_back_for_messages_and_responses_requests() -> None:
    sent = cc.bedrock_tool_name("a.b")
    resp = {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t", "name": sent, "input": {}}}]}}, "stopReason": "tool_use"}
    for request in ({"tools": [{"name": "a.b", "input_schema": {}}]},  # Messages
                    {"tools": [{"type": "function", "name": "a.b"}]},  # Responses
                    {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "a.b"}]}]},
                    {"input": [{"type": "function_call", "name": "a.b", "call_id": "c", "arguments": "{}"}]}):
        out, _ = cc.translate_response(resp, request)
        assert out["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "a.b", request
