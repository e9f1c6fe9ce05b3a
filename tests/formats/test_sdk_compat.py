"""Translated streams, accumulated by the official SDKs, equal the translated responses.

Each stream fixture that completes is folded by the SDK's own accumulator
(openai ChatCompletionStreamState, anthropic accumulate_event) into a final object,
which must match what the non-streaming translator says for the same content.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from gateway.formats.chat_on_messages import ChatOnMessagesStream
from gateway.formats.messages_on_chat import MessagesOnChatStream
from tests.formats.helpers import FIXTURES, decode_frames, run_stream


def _case(path: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((FIXTURES / path).read_bytes())
    return data


def _openai_final(case: dict[str, Any]) -> Any:
    opts = case["options"]
    translator = ChatOnMessagesStream(opts["model"], include_usage=opts["include_usage"], created=opts["created"])
    chunks = decode_frames(run_stream(translator, case["in"].encode(), byte_at_a_time=False))
    assert chunks[-1] == "[DONE]"
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks[:-1]:
        list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    return state.get_final_completion()


def _anthropic_final(case: dict[str, Any]) -> Any:
    translator = MessagesOnChatStream(case["options"]["model"])
    events = decode_frames(run_stream(translator, case["in"].encode(), byte_at_a_time=False))
    assert events[-1]["event"] == "message_stop"
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for item in events:
        snapshot = accumulate_event(event=item["data"], current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


def test_openai_sdk_accumulates_parallel_tool_calls_from_translated_stream() -> None:
    final = _openai_final(_case("chat_on_messages/streams/parallel_tools.json"))
    message = final.choices[0].message
    assert message.content == "Checking both."
    calls = [(c.id, c.function.name, orjson.loads(c.function.arguments)) for c in message.tool_calls]
    assert calls == [
        ("toolu_01Weather", "get_weather", {"city": "Paris"}),
        ("toolu_02Time", "get_time", {}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_openai_sdk_reads_usage_chunk_with_cache_details() -> None:
    final = _openai_final(_case("chat_on_messages/streams/text_with_cache_usage.json"))
    assert final.choices[0].message.content == "Hello, wörld! 👋"
    assert final.usage is not None
    assert final.usage.prompt_tokens == 2125
    assert final.usage.prompt_tokens_details.cached_tokens == 2000
    assert final.usage.total_tokens == 2140


@pytest.mark.parametrize(
    "stream",
    [
        "content_filter_and_empty_stream",
        "parallel_tool_calls",
        "reasoning_then_text_length",
        "text_with_usage_chunk",
        "tool_name_after_arguments",
    ],
)
def test_anthropic_sdk_accumulates_every_completed_translated_stream(stream: str) -> None:
    case = _case(f"messages_on_chat/streams/{stream}.json")
    final = _anthropic_final(case)
    message_delta = case["out"][-2]["data"]
    assert final.stop_reason == message_delta["delta"]["stop_reason"]
    assert final.usage.output_tokens == message_delta["usage"]["output_tokens"]
    for block in final.content:
        if block.type == "tool_use":
            assert isinstance(block.input, dict) and block.input


def test_anthropic_sdk_stream_result_matches_non_stream_translation() -> None:
    final = _anthropic_final(_case("messages_on_chat/streams/parallel_tool_calls.json"))
    content = [block.to_dict() for block in final.content]
    assert content == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_t", "name": "get_time", "input": {"city": "Tokyo"}},
    ]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (300, 60)


def test_anthropic_sdk_sees_thinking_then_text() -> None:
    final = _anthropic_final(_case("messages_on_chat/streams/reasoning_then_text_length.json"))
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in final.content] == [
        ("thinking", "Let me think step by step."),
        ("text", "Answer: 42"),
    ]
    assert final.stop_reason == "max_tokens"
