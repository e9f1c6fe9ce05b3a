"""One case per kind of wrong JSON the translators used to crash on (or copy through untyped):
a client's body is a 400 naming the field, a provider's answer a 502 saying it was
malformed, a wrong-shaped stream event ends the client's stream with its error event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest, GatewayError, MalformedUpstream
from gateway.formats import chat_on_messages, messages_on_chat, native
from gateway.formats.codecs import select_codec
from gateway.formats.token_estimate import estimate_messages_tokens
from gateway.routes import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, TOKEN_COUNT
from gateway.sse import SSEParser, encode_event, parse_events
from gateway.usage import Usage


def nested(depth: int, leaf: Any = None) -> Any:
    """A value nested `depth` levels deep, built without recursion."""
    value: Any = {} if leaf is None else leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def deep_json(depth: int) -> bytes:
    """JSON nested `depth` levels deep: parsed fine (orjson reads 1024), too deep to write again."""
    return b"[" * depth + b"]" * depth


def with_deep(value: Any) -> bytes:
    """`value` as JSON, its "DEEP" strings replaced by 300 levels of nesting."""
    return orjson.dumps(value).replace(b'"DEEP"', deep_json(300))


USER = {"role": "user", "content": "hi"}
TOOL_USE_DEEP = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": nested(300)}}

# --- client bodies: a 400 naming the field --------------------------------------------------------


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [USER], "tools": "get_weather"}, "tools"),
    ({"messages": [USER], "tools": ["get_weather"]}, "tools[0]"),
    ({"messages": [USER], "tools": [{"type": "function", "function": "f"}]}, "tools[0].function"),
    ({"messages": [{"role": 7, "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": "report.pdf"}]}]},
     "messages[0].content[0].file"),
    ({"messages": [{"role": "user", "content": [7]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]}, "messages[0].content[0].text"),
    ({"messages": [{"role": "assistant", "tool_calls": "f()"}]}, "messages[0].tool_calls"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": 7, "function": {"name": "f"}}]}]},
     "messages[0].tool_calls[0].id"),
    ({"messages": [{"role": "system", "content": 7}]}, "messages[0].content"),
    ({"messages": [USER], "reasoning_effort": ["high"]}, "reasoning_effort"),
    ({"messages": [USER], "response_format": {"type": "json_schema", "json_schema": "s"}},
     "response_format.json_schema"),
    ({"messages": [USER], "tools": [{"function": {"name": "f"}}], "tool_choice": {"type": "function", "function": 1}},
     "tool_choice.function"),
    ({"messages": [USER], "tools": [{"function": {"name": "f"}}],
      "tool_choice": {"type": "allowed_tools", "allowed_tools": {"tools": "f"}}}, "tool_choice.allowed_tools.tools"),
])
def test_a_chat_body_of_the_wrong_shape_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        chat_on_messages.translate_request({"model": "claude-x", **body}, 4096)
    assert (info.value.status, info.value.param) == (400, param)


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [USER], "tools": "get_weather"}, "tools"),
    ({"messages": [USER], "tools": [7]}, "tools[0]"),
    ({"messages": [USER], "metadata": "user-1"}, "metadata"),
    ({"messages": [{"role": 7, "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": 7}]}]}, "messages[0].content[0].source"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": ["x"],
                                                                                "media_type": "image/png"}}]}]},
     "messages[0].content[0].source.data"),
    ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [1]}]}]},
     "messages[0].content[0].content[0]"),
    ({"messages": [{"role": "assistant", "content": [TOOL_USE_DEEP]}]}, "messages[0].content[0].input"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": None, "name": "f"}]}]},
     "messages[0].content[0].id"),
    ({"messages": [USER], "system": 7}, "system"),
    ({"messages": [USER], "system": [{"type": "text", "text": ["x"]}]}, "system[0].text"),
    ({"messages": [USER], "tools": [{"name": "f"}], "tool_choice": {"type": "tool", "name": 7}}, "tool_choice.name"),
])
def test_a_messages_body_of_the_wrong_shape_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        messages_on_chat.translate_request({"model": "gpt-x", "max_tokens": 10, **body}, 4096)
    assert (info.value.status, info.value.param) == (400, param)


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": "hi"}, "messages"),
    ({"messages": [USER], "tools": [{"name": "f"}], "tool_choice": "any"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": 7}]}]}, "messages[0].content[0].source"),
    ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
    ({"messages": [{"role": "assistant", "content": [TOOL_USE_DEEP]}]}, "messages[0].content[0].input"),
    ({"messages": [USER], "tools": [nested(300)]}, "tools[0]"),
])
def test_a_count_tokens_body_of_the_wrong_shape_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        estimate_messages_tokens(body)
    assert info.value.param == param


def test_content_nested_ten_thousand_levels_deep_is_counted_without_recursion() -> None:
    content: Any = "x" * 40
    for _ in range(10_000):
        content = [{"type": "tool_result", "tool_use_id": "t", "content": content}]
    assert estimate_messages_tokens({"messages": [{"role": "user", "content": content}]}) == 3 + 3 + 10


def test_tool_arguments_too_deep_to_write_again_are_a_400_naming_them() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":' + "[" * 300 + "]" * 300 + "}"}}
    body = {"model": "m", "messages": [USER, {"role": "assistant", "tool_calls": [call]}]}
    with pytest.raises(BadRequest) as info:
        chat_on_messages.translate_request(body, 4096)
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


# --- provider answers: a 502 saying so, never a crash or a value of the wrong type ---------------

ANTHROPIC_ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                    "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": 3, "output_tokens": 1}}
CHAT_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


@pytest.mark.parametrize("change", [
    {"stop_reason": ["end_turn"]},
    {"id": None},
    {"id": 7},
    {"model": 7},
    {"content": {"type": "text", "text": "hi"}},
    {"content": ["hi"]},
    {"content": [{"type": "text", "text": 7}]},
    {"content": [{"type": "tool_use", "id": 7, "name": "f", "input": {}}]},
    {"content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": [1]}]},
    {"content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": "DEEP"}}]},
])
def test_a_wrong_shaped_anthropic_answer_is_a_502_for_a_chat_client(change: dict[str, Any]) -> None:
    with pytest.raises(MalformedUpstream, match="the provider's answer was malformed") as info:
        select_codec(CHAT, "anthropic").response(with_deep({**ANTHROPIC_ANSWER, **change}), {})
    assert (info.value.status, info.value.code) == (502, "upstream_malformed")


@pytest.mark.parametrize("change", [
    {"choices": {"0": CHAT_ANSWER["choices"][0]}},  # type: ignore[index]
    {"choices": ["hi"]},
    {"choices": [{"message": "hi"}]},
    {"choices": [{"message": {"content": 7}}]},
    {"choices": [{"message": {"content": "hi"}, "finish_reason": ["stop"]}]},
    {"choices": [{"message": {"tool_calls": {"id": "c1"}}}]},
    {"choices": [{"message": {"tool_calls": [{"id": "c1", "function": {"name": 7}}]}}]},
    {"choices": [{"message": {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": '{"a":' + "["
                                                                       * 300 + "]" * 300 + "}"}}]}}]},
    {"model": None},
])
def test_a_wrong_shaped_chat_answer_is_a_502_for_a_messages_client(change: dict[str, Any]) -> None:
    with pytest.raises(MalformedUpstream, match="the provider's answer was malformed"):
        select_codec(MESSAGES, "openai").response(orjson.dumps({**CHAT_ANSWER, **change}), {})


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": "3", "completion_tokens": 1, "prompt_tokens_details": [1], "completion_tokens_details": 2},
    [3, 1],
    "3",
])
def test_usage_fields_of_the_wrong_type_are_counted_as_zero(usage: Any) -> None:
    body, counted = select_codec(MESSAGES, "openai").response(orjson.dumps({**CHAT_ANSWER, "usage": usage}), {})
    assert orjson.loads(body)["usage"]["output_tokens"] == counted.output_tokens == (1 if isinstance(usage, dict)
                                                                                    else 0)
    assert counted.input_tokens == 0
    assert Usage.from_anthropic({"input_tokens": 2, "cache_read_input_tokens": [1],
                                 "output_tokens_details": "x"}).input_tokens == 2
    assert Usage.from_responses({"input_tokens": 2, "input_tokens_details": 5}).cached_tokens == 0


@pytest.mark.parametrize("pair", [(CHAT, "openai"), (RESPONSES, "openai"), (EMBEDDINGS, "openai"),
                                  (MESSAGES, "anthropic"), (TOKEN_COUNT, "anthropic")])
@pytest.mark.parametrize("body", [b"", b"  \n", b"<html>502 Bad Gateway</html>", b"[1, 2]", b"null", b'"ok"'])
def test_a_same_format_answer_that_is_no_json_object_is_a_502(pair: tuple[str, str], body: bytes) -> None:
    with pytest.raises(MalformedUpstream, match=r"malformed: the body is (empty|not a JSON object)"):
        select_codec(*pair).response(body, {})


# --- streams: the client's error event, never an exception -----------------------------------------


def _anthropic_wire(*events: dict[str, Any]) -> bytes:
    return b"".join(encode_event(with_deep(e), e["type"] if isinstance(e["type"], str) else "message_stop")
                    for e in events)


START = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}


@pytest.mark.parametrize("bad", [
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 7}},
    {"type": "content_block_delta", "index": 0, "delta": "hi"},
    {"type": "content_block_start", "index": ["0"], "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": None, "name": "f"}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "f",
                                                                  "input": {"a": "DEEP"}}},
    {"type": "content_block_stop", "index": {"i": 0}},
    {"type": "message_delta", "delta": {"stop_reason": ["end_turn"]}},
    {"type": ["message_stop"]},
])
def test_a_wrong_shaped_anthropic_event_ends_the_chat_stream_with_an_error_chunk(bad: dict[str, Any]) -> None:
    stream = chat_on_messages.ChatOnMessagesStream("m", include_usage=False, created=1)
    wire = _anthropic_wire(START, bad) + _anthropic_wire({"type": "message_stop"})
    events = parse_events(stream.relay_block(wire) + b"".join(stream.finish()))
    error = orjson.loads(events[-1].data)["error"]
    assert "malformed" in error["message"] and error["code"] == "upstream_error"
    assert stream.failed and not stream.done


@pytest.mark.parametrize("bad", [
    {"id": "c1", "choices": {"0": {"delta": {"content": "hi"}}}},
    {"id": "c1", "choices": 7},
    {"id": "c1", "choices": [{"index": 0, "delta": "hi"}]},
    {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": 7}}]},
    {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"id": 7, "function": {"name": "f"}}]}}]},
    {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"arguments": ["{"]}}]}}]},
    {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": ["stop"]}]},
    {"error": ["overloaded"]},
    {"error": {"message": ["x"], "type": ["server_error"], "code": {"c": 1}}},
])
def test_a_wrong_shaped_chat_chunk_ends_the_messages_stream_with_an_error_event(bad: dict[str, Any]) -> None:
    stream = messages_on_chat.MessagesOnChatStream("m")
    wire = encode_event(orjson.dumps(bad)) + b"data: [DONE]\n\n"
    events = parse_events(stream.relay_block(wire) + b"".join(stream.finish()))
    assert events[-1].event == "error" and orjson.loads(events[-1].data)["type"] == "error"
    assert stream.failed and not stream.done


@pytest.mark.parametrize(("relay", "event"), [
    (native.ResponsesStreamRelay, b'data: {"type":"response.completed","response":{"usage":[1]}}\n\n'),
    (native.ResponsesStreamRelay, b'data: {"type":["response.completed"],"item":{"type":"response.x"}}\n\n'),
    (native.ResponsesStreamRelay, b'event: response.completed\ndata: {"response":{"usage":{"input_tokens":"3",'
                                  b'"input_tokens_details":[1]}}}\n\n'),
    (native.MessagesStreamRelay, b'event: message_start\ndata: {"message":{"usage":{"input_tokens":[3],'
                                 b'"output_tokens_details":7}}}\n\n'),
    (native.MessagesStreamRelay, b'event: message_delta\ndata: {"usage":"7"}\n\n'),
    (native.ChatStreamRelay, b'data: {"choices":[],"usage":{"prompt_tokens_details":"x"}}\n\n'),
])
def test_a_same_format_stream_event_of_the_wrong_shape_passes_untouched(relay: Any, event: bytes) -> None:
    stream = relay.for_request("m", {}, False)
    assert stream.relay_block(event) == event
    assert stream.usage.input_tokens == 0


def test_an_oversized_event_is_a_malformed_answer_the_relay_can_render() -> None:
    with pytest.raises(MalformedUpstream) as info:
        SSEParser(max_event_bytes=64).feed(b"data: " + b"x" * 100)
    assert isinstance(info.value, GatewayError) and info.value.status == 502
