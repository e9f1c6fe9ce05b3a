"""Responses API client → OpenAI-compatible Chat provider: requests, responses, streams, errors,
checked against golden fixtures and the official openai SDK's types and stream accumulator;
then the same through the Chat hub to an Anthropic provider (Responses → Chat → Messages)."""

from __future__ import annotations

import collections
import copy
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.errors import BadRequest, MalformedUpstream
from gateway.formats import chat_on_messages
from gateway.formats.responses import IdSource, output_text, read_error, usage_object
from gateway.formats.responses_on_chat import (
    ResponsesOnChatStream,
    translate_error,
    translate_request,
    translate_response,
)
from gateway.formats.stream_pipe import StreamPipe
from tests.formats.helpers import FIXTURES, decode_frames, fixture_cases, run_stream

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def counter_ids() -> IdSource:
    """Deterministic ids: `<prefix>_1`, `<prefix>_2`, … per prefix."""
    counts: collections.Counter[str] = collections.Counter()

    def make(prefix: str) -> str:
        counts[prefix] += 1
        return f"{prefix}_{counts[prefix]}"

    return make


def _stream(options: dict[str, Any]) -> ResponsesOnChatStream:
    return ResponsesOnChatStream(options["model"], options["request"], make_id=counter_ids(),
                                 created_at=options["created_at"])


def _data(events: list[Any]) -> list[dict[str, Any]]:
    return [event["data"] for event in events]


def _plain(value: Any) -> Any:
    """An SDK object's dict without the fields its parsing helpers add."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def sdk_final(events: list[dict[str, Any]]) -> Any:
    """What the SDK's `responses.stream()` gives as the final response for these events."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for data in events:
        state.handle_event(EVENTS.validate_python(data))
    return state._completed_response


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    """Sequence numbers run 0, 1, …; created and in_progress come first; exactly one
    terminal event, last; every event parses as the SDK's event type it names."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert [e["type"] in TERMINAL for e in events].count(True) == 1
    assert events[-1]["type"] in TERMINAL
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1
    for data in events:
        assert EVENTS.validate_python(data).type == data["type"]


# --- golden fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/requests"))
def test_request_fixture_translates_to_expected_chat_body(case: dict[str, Any]) -> None:
    before = copy.deepcopy(case["in"])
    assert translate_request(case["in"]) == case["out"]
    assert case["in"] == before  # the client's body is never mutated


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/requests"))
def test_translated_request_is_accepted_by_the_anthropic_translator(case: dict[str, Any]) -> None:
    messages = chat_on_messages.translate_request(translate_request(case["in"]))
    assert messages["messages"] and messages["max_tokens"] >= 1


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/responses"))
def test_response_fixture_translates_to_expected_response(case: dict[str, Any]) -> None:
    out, usage = translate_response(case["in"], case["request"], make_id=counter_ids(), created_at=1741569952)
    assert out == case["out"]
    assert usage_object(usage) == out["usage"]
    sdk = Response.model_validate(out)
    assert sdk.output_text == output_text(out["output"])


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/streams"))
def test_stream_fixture_fed_whole_gives_expected_events_and_state(case: dict[str, Any]) -> None:
    translator = _stream(case["options"])
    events = decode_frames(run_stream(translator, case["in"].encode(), byte_at_a_time=False))
    assert events == case["out"]
    assert translator.done == case["state"]["done"]
    assert translator.failed == case["state"]["failed"]
    assert usage_object(translator.usage) == case["state"]["usage"]
    assert translator.response == events[-1]["data"]["response"]


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/streams"))
def test_stream_fixture_fed_one_byte_at_a_time_gives_identical_frames(case: dict[str, Any]) -> None:
    raw = case["in"].encode()
    whole = run_stream(_stream(case["options"]), raw, byte_at_a_time=False)
    split = run_stream(_stream(case["options"]), raw, byte_at_a_time=True)
    assert split == whole
    assert decode_frames(split) == case["out"]


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/streams"))
def test_stream_fixture_is_well_formed_for_the_sdk(case: dict[str, Any]) -> None:
    events = _data(case["out"])
    assert_well_formed(events)
    Response.model_validate(events[-1]["response"])
    if events[-1]["type"] == "response.completed":
        final = sdk_final(events)
        assert _plain(final.to_dict()) == Response.model_validate(events[-1]["response"]).to_dict()


@pytest.mark.parametrize("case", fixture_cases("responses_on_chat/errors"))
def test_error_fixture_translates_status_and_body(case: dict[str, Any]) -> None:
    status, body = translate_error(case["status"], case["body"].encode())
    assert status == case["out_status"]
    assert orjson.loads(body) == case["out_body"]


def _fixture(path: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((FIXTURES / path).read_bytes())
    return data


def test_sdk_stream_result_equals_the_non_streamed_translation() -> None:
    case = _fixture("responses_on_chat/streams/reasoning_text_and_tools.json")
    final = sdk_final(_data(case["out"]))
    calls = [
        {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_t", "type": "function", "function": {"name": "get_time", "arguments": '{"city":"Tokyo"}'}},
    ]
    completion = {
        "id": "chatcmpl-s",
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking both.", "reasoning_content": "Two lookups.", "tool_calls": calls}}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 60, "total_tokens": 360,
                  "completion_tokens_details": {"reasoning_tokens": 4}},
    }
    options = case["options"]
    expected, _ = translate_response(completion, options["request"], make_id=counter_ids(),
                                     created_at=options["created_at"])
    assert _plain(final.to_dict()) == Response.model_validate(expected).to_dict()
    assert final.output_text == "Checking both."


# --- request behaviour -------------------------------------------------------------------


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search"},
        {"type": "web_search_preview"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "image_generation"},
        {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.example/sse"},
        {"type": "custom", "name": "grammar_tool"},
    ],
)
def test_built_in_tools_are_a_400_naming_the_tool(tool: dict[str, Any]) -> None:
    body = {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f"}, tool]}
    with pytest.raises(BadRequest, match=repr(tool["type"])) as caught:
        translate_request(body)
    assert caught.value.status == 400
    assert caught.value.param == "tools[1].type"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"background": True}, "background"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"conversation": {"id": "conv_123"}}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"tool_choice": {"type": "web_search"}, "tools": [{"type": "function", "name": "f"}]}, "tool_choice"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": "10"}, "max_output_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"input": 42}, "input"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
         "input[0].content[0].file_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
         "input[0].content[0].file_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ],
)
def test_untranslatable_or_malformed_requests_are_a_400_naming_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        translate_request({"model": "m", "input": "hi", **extra})
    assert caught.value.param == param


def test_reasoning_items_are_dropped_and_tool_calls_join_the_assistant_turn() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": {"a": 1}},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "done"}]},
        ],
    }
    assert translate_request(body)["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]


def test_stream_request_asks_for_the_usage_chunk_and_nothing_else_of_stream_options() -> None:
    out = translate_request({"model": "m", "input": "hi", "stream": True,
                             "stream_options": {"include_obfuscation": False}})
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}


# --- response behaviour ------------------------------------------------------------------


def test_response_ids_look_like_openais_and_are_fresh() -> None:
    answer = {"model": "m", "choices": [{"message": {"content": "hi", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}
    first, _ = translate_response(answer, {"model": "m"})
    second, _ = translate_response(answer, {"model": "m"})
    assert first["id"].startswith("resp_") and len(first["id"]) == 5 + 48
    assert first["output"][0]["id"].startswith("msg_") and first["output"][1]["id"].startswith("fc_")
    assert first["id"] != second["id"]
    assert first["output"][1]["call_id"] == "call_1"


def test_malformed_provider_answer_is_a_502() -> None:
    with pytest.raises(MalformedUpstream):
        translate_response({"model": "m", "choices": [{"message": {"tool_calls": [{"function": {"name": 7}}]}}]})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"error": {"message": "bad", "type": "invalid_request_error", "code": "x"}}, ("bad", "x")),
        ({"type": "error", "code": "server_error", "message": "boom", "sequence_number": 3}, ("boom", "server_error")),
        ({"type": "response.failed", "response": {"error": {"code": "rate_limit_exceeded", "message": "slow"}}},
         ("slow", "rate_limit_exceeded")),
        ({"type": "response.completed", "response": {"error": None}}, ("", None)),
        ("not an object", ("", None)),
    ],
)
def test_read_error_finds_message_and_code_in_every_responses_error_shape(data: Any, expected: Any) -> None:
    assert read_error(data) == expected


# --- stream behaviour --------------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + orjson.dumps({"id": "c", "model": "m", "choices": [choice]}) + b"\n\n"


def test_interleaved_parallel_tool_arguments_fail_the_stream() -> None:
    raw = (
        _chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]})
        + _chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]})
        + _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})
        + _chunk({}, "tool_calls")
        + b"data: [DONE]\n\n"
    )
    translator = ResponsesOnChatStream("m", {"model": "m"})
    events = _data(decode_frames(run_stream(translator, raw, byte_at_a_time=False)))
    assert events[-1]["type"] == "response.failed"
    assert "interleaved" in events[-1]["response"]["error"]["message"]
    assert translator.failed and not translator.done


def test_gateway_failure_after_the_end_sends_nothing() -> None:
    translator = ResponsesOnChatStream("m", {"model": "m"})
    pipe = StreamPipe(translator)
    assert b"response.completed" in pipe.feed(_chunk({"content": "x"}, "stop") + b"data: [DONE]\n\n")
    assert pipe.fail("client went away", 502) == b""
    assert pipe.finish() == b""


def test_gateway_failure_midway_is_one_response_failed_with_the_status_code() -> None:
    translator = ResponsesOnChatStream("m", {"model": "m"})
    pipe = StreamPipe(translator)
    pipe.feed(_chunk({"content": "partial"}))
    events = _data(decode_frames([f + b"\n\n" for f in pipe.fail("rate limited", 429).split(b"\n\n") if f]))
    assert [e["type"] for e in events] == ["response.failed"]
    assert events[0]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "rate limited"}
    assert events[0]["response"]["output"][0]["content"][0]["text"] == "partial"
    assert pipe.fail("again", 502) == b"" and pipe.finish() == b""


# --- through the Chat hub: Responses → Chat → Messages -----------------------------------


def run_composed(raw: bytes, request: dict[str, Any], *, byte_at_a_time: bool) -> tuple[ResponsesOnChatStream, bytes]:
    """An Anthropic stream through ChatOnMessagesStream, its Chat frames through ours: each
    block of the first stage's output is a block of complete events for the second."""
    chat_body = translate_request(request)
    first = StreamPipe(chat_on_messages.ChatOnMessagesStream.for_request(request["model"], chat_body, False))
    second = ResponsesOnChatStream(request["model"], request, make_id=counter_ids(), created_at=1767225600)
    chunks: Iterator[bytes] = (raw[i:i + 1] for i in range(len(raw))) if byte_at_a_time else iter([raw])
    out = [second.relay_block(first.feed(chunk)) for chunk in chunks]
    out.append(second.relay_block(first.finish()))
    out.extend(second.finish())
    return second, b"".join(out)


ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "instructions": "Use the tools.",
    "input": "Weather in Paris and time in Tokyo?",
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
              {"type": "function", "name": "get_time", "parameters": {"type": "object"}}],
    "stream": True,
}


def test_composed_request_reaches_anthropic_shape() -> None:
    messages = chat_on_messages.translate_request(translate_request(ANTHROPIC_REQUEST), 1024)
    assert messages["system"] == "Use the tools."
    assert messages["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Weather in Paris and time in Tokyo?"}]}]
    assert [t["name"] for t in messages["tools"]] == ["get_weather", "get_time"]
    assert messages["max_tokens"] == 1024 and messages["stream"] is True


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_composed_stream_from_anthropic_gives_the_final_response(byte_at_a_time: bool) -> None:
    case = _fixture("chat_on_messages/streams/parallel_tools.json")
    translator, out = run_composed(case["in"].encode(), ANTHROPIC_REQUEST, byte_at_a_time=byte_at_a_time)
    events = _data(decode_frames([f + b"\n\n" for f in out.split(b"\n\n") if f]))
    assert_well_formed(events)
    final = sdk_final(events)
    assert final.status == "completed" and final.output_text == "Checking both."
    calls = [(o.call_id, o.name, orjson.loads(o.arguments)) for o in final.output if o.type == "function_call"]
    assert calls == [("toolu_01Weather", "get_weather", {"city": "Paris"}), ("toolu_02Time", "get_time", {})]
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (412, 96)
    assert translator.done and not translator.failed

    # The same answer, not streamed, through both translators.
    message = {
        "id": "msg_01Tools", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "toolu_01Weather", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_02Time", "name": "get_time", "input": {}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 412, "output_tokens": 96},
    }
    completion, _ = chat_on_messages.translate_response(message)
    expected, _ = translate_response(completion, ANTHROPIC_REQUEST, make_id=counter_ids(), created_at=1767225600)
    for item in expected["output"]:  # Anthropic streams the arguments with its own spacing
        if item["type"] == "function_call":
            item["arguments"] = next(o.arguments for o in final.output if getattr(o, "call_id", None) == item["call_id"])
    assert _plain(final.to_dict()) == Response.model_validate(expected).to_dict()


def test_composed_stream_cut_upstream_ends_with_response_failed() -> None:
    case = _fixture("chat_on_messages/streams/cut_before_message_stop.json")
    translator, out = run_composed(case["in"].encode(), ANTHROPIC_REQUEST, byte_at_a_time=False)
    events = _data(decode_frames([f + b"\n\n" for f in out.split(b"\n\n") if f]))
    assert_well_formed(events)
    assert events[-1]["type"] == "response.failed"
    assert b"response.completed" not in out
    assert translator.failed


# --- property: any Chat answer, streamed in any pieces, ends as the non-streamed translation ---

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)


@st.composite
def chat_answers(draw: st.DrawFn) -> dict[str, Any]:
    calls = [
        {"id": f"call_{i}", "name": draw(st.sampled_from(["get_weather", "get_time"])),
         "arguments": draw(st.lists(_TEXT, max_size=3))}
        for i in range(draw(st.integers(0, 3)))
    ]
    usage = draw(st.none() | st.fixed_dictionaries({
        "prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**4),
        "prompt_tokens_details": st.fixed_dictionaries({"cached_tokens": st.integers(0, 1000)}),
    }))
    return {
        "reasoning": draw(st.lists(_TEXT, max_size=3)),
        "text": draw(st.lists(_TEXT, max_size=4)),
        "refusal": draw(st.lists(_TEXT, max_size=2)),
        "calls": calls,
        "finish": draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"])),
        "usage": usage,
    }


def _as_stream(answer: dict[str, Any]) -> bytes:
    frames = [_chunk({"role": "assistant", "content": ""})]
    frames += [_chunk({"reasoning_content": r}) for r in answer["reasoning"]]
    frames += [_chunk({"content": t}) for t in answer["text"]]
    frames += [_chunk({"refusal": r}) for r in answer["refusal"]]
    for i, call in enumerate(answer["calls"]):
        first = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
        frames.append(_chunk({"tool_calls": [first]}))
        frames += [_chunk({"tool_calls": [{"index": i, "function": {"arguments": a}}]}) for a in call["arguments"]]
    frames.append(_chunk({}, answer["finish"]))
    if answer["usage"] is not None:
        frames.append(b"data: " + orjson.dumps({"choices": [], "usage": answer["usage"]}) + b"\n\n")
    return b"".join(frames) + b"data: [DONE]\n\n"


def _as_completion(answer: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(answer["text"]) or None,
                               "refusal": "".join(answer["refusal"]) or None}
    if answer["reasoning"]:
        message["reasoning_content"] = "".join(answer["reasoning"])
    if answer["calls"]:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": "".join(c["arguments"])}}
            for c in answer["calls"]
        ]
    return {"model": "m", "choices": [{"message": message, "finish_reason": answer["finish"]}], "usage": answer["usage"]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=chat_answers(), cuts=st.lists(st.integers(0, 10**5), max_size=8))
def test_any_streamed_answer_ends_as_its_non_streamed_translation(answer: dict[str, Any], cuts: list[int]) -> None:
    request = {"model": "m", "input": "hi", "store": False}
    raw = _as_stream(answer)
    bounds = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    translator = ResponsesOnChatStream("m", request, make_id=counter_ids(), created_at=7)
    pipe = StreamPipe(translator)
    out = b"".join(pipe.feed(raw[a:b]) for a, b in itertools.pairwise(bounds)) + pipe.finish()
    events = _data(decode_frames([f + b"\n\n" for f in out.split(b"\n\n") if f]))
    assert_well_formed(events)
    expected, usage = translate_response(_as_completion(answer), request, make_id=counter_ids(), created_at=7)
    assert events[-1]["response"] == expected == translator.response
    assert translator.usage == usage
    if events[-1]["type"] == "response.completed":
        assert _plain(sdk_final(events).to_dict()) == Response.model_validate(expected).to_dict()
    else:
        assert events[-1]["type"] == "response.incomplete"
        assert expected["incomplete_details"]["reason"] in ("max_output_tokens", "content_filter")
