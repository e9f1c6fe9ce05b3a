"""Property tests: whatever JSON a client or provider sends, the Chat↔Messages translators,
the same-format relays, the usage readers and the token estimate return a well-typed answer
or raise the gateway's own error (a 400 for a client body, a 502 for a provider answer);
a stream always ends with exactly one terminator, fed whole or one byte at a time.

Inputs are arbitrary JSON and, so that shapes are nearly right, the golden fixtures with a
few values replaced by arbitrary JSON or removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import orjson
import pydantic
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.errors import BadRequest, MalformedUpstream
from gateway.formats import chat_on_messages, messages_on_chat, native
from gateway.formats.codecs import select_codec
from gateway.formats.stream import StreamTranslator
from gateway.formats.stream_pipe import StreamPipe
from gateway.formats.token_estimate import estimate_messages_tokens
from gateway.routes import CHAT, MESSAGES, RESPONSES
from gateway.sse import DONE_FRAME, SSEParser, encode_event, parse_events
from gateway.usage import Usage
from tests.formats.helpers import FIXTURES

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STREAM_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON as orjson parses it: integers fit 64 bits, no NaN or infinity.
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


# --- near-right inputs: fixtures with a few values changed ---------------------------------


def _fixture_values(folder: str, key: str) -> list[Any]:
    values = []
    for path in sorted((FIXTURES / folder).glob("*.json")):
        data = orjson.loads(path.read_bytes())
        values += [case[key] for case in data.get("cases", [data])]
    assert values, folder
    return values


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 6) -> list[tuple[Any, ...]]:
    """The path of every value inside `value` (the root included) down to `depth` levels: the
    fields translators read, rather than the inside of a JSON schema or a tool input."""
    paths = [prefix]
    if depth and isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key), depth - 1)
    elif depth and isinstance(value, list):
        for i, item in enumerate(value):
            paths += _paths(item, (*prefix, i), depth - 1)
    return paths


def _changed(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    """A copy of `value` with the value at `path` replaced by `new` (or removed)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _changed(value[head], rest, new, delete)
    return copy


@st.composite
def mutated(draw: st.DrawFn, originals: list[Any]) -> Any:
    """One of `originals` with one to three values replaced by any JSON, or removed."""
    value = draw(st.sampled_from(originals))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(value)))
        value = _changed(value, path, draw(json_values), delete=bool(path) and draw(st.booleans()))
    return value


def near(folder: str, key: str) -> st.SearchStrategy[Any]:
    return mutated(_fixture_values(folder, key))


def objects_near(folder: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies near the folder's fixture inputs, or any object (a body is always an object:
    the gateway reads a JSON object before any translator runs; an answer that is not one is
    refused before translation too)."""
    return near(folder, "in").filter(lambda body: isinstance(body, dict)) | json_objects


# --- shapes field by field: each value the right kind, or any JSON in its place ---------------


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the strategy's values, sometimes any JSON at all in their place (rarely enough
    that a wrong value deep inside is reached before a wrong value early on stops the walk)."""
    return st.integers(min_value=0, max_value=5).flatmap(lambda n: json_values if n == 0 else strategy)


def shape(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """An object with these fields (each value `maybe` right), or any JSON in its place."""
    return maybe(st.fixed_dictionaries({k: maybe(v) for k, v in required.items()},
                                       optional={k: maybe(v) for k, v in optional.items()}))


def one_of_values(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


texts = st.text(max_size=6)
ids = one_of_values("call_1", "toolu_1", "")
schema = st.just({"type": "object", "properties": {"a": {"type": "string"}}})
deep_input = st.integers(min_value=250, max_value=300).map(lambda n: _nested(n))

chat_parts = shape({"type": one_of_values("text", "image_url", "file", "input_audio", "refusal")}, {
    "text": texts, "refusal": texts,
    "image_url": shape({"url": one_of_values("https://x.test/a.png", "data:image/png;base64,AAAA", "data:,x")}, {}),
    "file": shape({}, {"file_data": one_of_values("JVBERi0=", "data:application/pdf;base64,JVBERi0="),
                       "file_id": texts})})
chat_tool_calls = shape({"id": ids, "type": one_of_values("function", "custom")}, {
    "function": shape({"name": one_of_values("f", "g")}, {"arguments": one_of_values("{}", '{"a":1}', "{") | texts})})
chat_messages = shape({"role": one_of_values("system", "developer", "user", "assistant", "tool")}, {
    "content": texts | st.lists(chat_parts, max_size=3), "tool_calls": st.lists(chat_tool_calls, max_size=2),
    "tool_call_id": ids, "refusal": texts})
chat_tools = shape({"type": one_of_values("function", "custom")}, {
    "function": shape({"name": one_of_values("f", "g")}, {"parameters": schema, "description": texts,
                                                          "strict": st.booleans()})})
structured_chat_bodies = st.fixed_dictionaries({"model": one_of_values("claude-x"), "messages": maybe(
    st.lists(chat_messages, max_size=4))}, optional={
    "tools": maybe(st.lists(chat_tools, max_size=2)),
    "tool_choice": maybe(one_of_values("auto", "required", "none", {"type": "function", "function": {"name": "f"}})
                         | shape({"type": one_of_values("allowed_tools", "function")}, {
                             "allowed_tools": shape({"mode": one_of_values("auto", "required")},
                                                    {"tools": st.lists(chat_tools, max_size=2)}),
                             "function": shape({"name": one_of_values("f")}, {})})),
    "response_format": shape({"type": one_of_values("json_object", "json_schema", "text")},
                             {"json_schema": shape({}, {"schema": schema})}),
    "reasoning_effort": maybe(one_of_values("low", "high", "none")), "stop": maybe(texts),
    "n": maybe(st.just(1)), "temperature": maybe(st.floats(0, 2)), "top_p": json_values,
    "max_tokens": maybe(st.integers(1, 5000)), "max_completion_tokens": maybe(st.integers(1, 5000)),
    "parallel_tool_calls": maybe(st.booleans()), "user": json_values, "stream": maybe(st.booleans()),
    "stream_options": json_values})

anthropic_sources = shape({"type": one_of_values("base64", "url", "text", "file")}, {
    "media_type": one_of_values("image/png", "application/pdf", "text/plain"), "data": texts,
    "url": one_of_values("https://x.test/a.png")})


def blocks(tool_input: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Anthropic content blocks; tool inputs from `tool_input`."""
    return st.deferred(lambda: shape(
        {"type": one_of_values("text", "image", "document", "tool_use", "tool_result", "thinking", "search_result")}, {
            "text": texts, "source": anthropic_sources, "title": texts, "id": ids, "name": one_of_values("f"),
            "input": tool_input, "tool_use_id": ids, "content": texts | st.lists(blocks(tool_input), max_size=2),
            "is_error": st.booleans(), "thinking": texts}))


# Client bodies may hold tool inputs too deep to write out again (the tests never write them).
anthropic_blocks = blocks(st.just({"a": 1}) | deep_input)
anthropic_messages = shape({"role": one_of_values("user", "assistant", "system")}, {
    "content": texts | st.lists(anthropic_blocks, max_size=3)})
anthropic_tools = shape({"name": one_of_values("f", "g")}, {
    "type": one_of_values("custom", "web_search_20250305"), "input_schema": schema, "description": texts,
    "strict": st.booleans()})
structured_messages_bodies = st.fixed_dictionaries({"model": one_of_values("gpt-x"), "messages": maybe(
    st.lists(anthropic_messages, max_size=4))}, optional={
    "max_tokens": maybe(st.integers(1, 5000)), "system": maybe(texts | st.lists(anthropic_blocks, max_size=2)),
    "tools": maybe(st.lists(anthropic_tools, max_size=2)),
    "tool_choice": shape({"type": one_of_values("auto", "any", "none", "tool")},
                         {"name": one_of_values("f"), "disable_parallel_tool_use": st.booleans()}),
    "metadata": shape({}, {"user_id": texts}), "stop_sequences": json_values, "temperature": json_values,
    "output_config": shape({}, {"format": shape({"type": one_of_values("json_schema")}, {"schema": schema})}),
    "stream": maybe(st.booleans())})

structured_anthropic_answers = st.fixed_dictionaries({}, optional={
    "id": maybe(one_of_values("msg_1")), "type": maybe(one_of_values("message")), "model": maybe(one_of_values("c")),
    "role": maybe(one_of_values("assistant")), "content": maybe(st.lists(blocks(st.just({"a": 1})), max_size=3)),
    "stop_reason": maybe(one_of_values("end_turn", "tool_use", "max_tokens", "refusal")),
    "usage": shape({}, {k: st.integers(0, 100) for k in ("input_tokens", "output_tokens",
                                                         "cache_read_input_tokens", "cache_creation_input_tokens")})})
chat_usage = shape({}, {"prompt_tokens": st.integers(0, 100), "completion_tokens": st.integers(0, 100),
                        "prompt_tokens_details": shape({}, {"cached_tokens": st.integers(0, 100)}),
                        "completion_tokens_details": shape({}, {"reasoning_tokens": st.integers(0, 100)})})
chat_choice_messages = shape({"role": one_of_values("assistant")}, {
    "content": texts | st.lists(chat_parts, max_size=2), "tool_calls": st.lists(chat_tool_calls, max_size=2),
    "refusal": texts, "reasoning_content": texts, "function_call": shape({"name": one_of_values("f")}, {})})
structured_chat_answers = st.fixed_dictionaries({}, optional={
    "id": maybe(one_of_values("chatcmpl-1", "msg_1")), "object": maybe(one_of_values("chat.completion")),
    "model": maybe(one_of_values("gpt-x")), "usage": chat_usage,
    "choices": maybe(st.lists(shape({"index": st.just(0)}, {
        "message": chat_choice_messages,
        "finish_reason": one_of_values("stop", "length", "tool_calls", "content_filter")}), max_size=2))})


chat_bodies = objects_near("chat_on_messages/requests") | structured_chat_bodies
messages_bodies = objects_near("messages_on_chat/requests") | structured_messages_bodies
anthropic_answers = objects_near("chat_on_messages/responses") | structured_anthropic_answers
chat_answers = objects_near("messages_on_chat/responses") | structured_chat_answers


def _nested(depth: int) -> Any:
    """An object nested `depth` levels deep (built without recursion)."""
    value: Any = {}
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return {"a": value}


def _json_or_bytes(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data


def _stream_events(folder: str) -> list[list[tuple[str, Any]]]:
    """Each fixture stream as (event name, data: parsed JSON or the raw bytes) pairs."""
    streams = []
    for raw in _fixture_values(folder, "in"):
        events = parse_events(SSEParser().feed_block(raw.encode() + b"\n\n"))
        streams.append([(e.event, _json_or_bytes(e.data)) for e in events])
    return streams


@st.composite
def mutated_streams(draw: st.DrawFn, folder: str) -> bytes:
    """A fixture stream whose events have values changed, some events dropped or added (any
    JSON or any bytes), and maybe a cut at any point: the wire as the provider sends it."""
    events = list(draw(st.sampled_from(_stream_events(folder))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(events)))
        action = draw(st.sampled_from(["change", "change", "drop", "add"]))
        if action == "add" or i == len(events):
            extra = draw(json_values.map(orjson.dumps) | st.binary(max_size=16))
            events.insert(i, (draw(st.sampled_from(["", "message_delta", "error"])), extra))
        elif action == "drop":
            del events[i]
        elif isinstance(events[i][1], (dict, list)):
            events[i] = (events[i][0], draw(mutated([events[i][1]])))
    wire = b"".join(encode_event(data if isinstance(data, bytes) else orjson.dumps(data), name)
                    for name, data in events)
    return wire[: draw(st.integers(min_value=0, max_value=len(wire)))] if draw(st.booleans()) else wire


def _frames(translator: StreamTranslator, wire: bytes, *, byte_at_a_time: bool) -> bytes:
    pipe = StreamPipe(translator)
    if byte_at_a_time:
        out = b"".join(pipe.feed(wire[i:i + 1]) for i in range(len(wire)))
    else:
        out = pipe.feed(wire)
    return out + pipe.finish()


def _both_ways(make: Callable[[], StreamTranslator], wire: bytes) -> tuple[StreamTranslator, bytes]:
    """The stream fed whole and one byte at a time: the same bytes out either way."""
    translator = make()
    whole = _frames(translator, wire, byte_at_a_time=False)
    assert _frames(make(), wire, byte_at_a_time=True) == whole
    return translator, whole


# --- requests: a translation or a 400 -------------------------------------------------------


@SETTINGS
@given(chat_bodies)
def test_any_chat_body_becomes_a_messages_body_or_a_400(body: dict[str, Any]) -> None:
    try:
        out = chat_on_messages.translate_request(body, 4096)
    except BadRequest as exc:
        assert exc.status == 400 and exc.param
        return
    orjson.dumps(out)
    assert all(m["role"] in ("user", "assistant") and isinstance(m["content"], list) for m in out["messages"])


@SETTINGS
@given(messages_bodies)
def test_any_messages_body_becomes_a_chat_body_or_a_400(body: dict[str, Any]) -> None:
    try:
        out = messages_on_chat.translate_request(body, 4096)
    except BadRequest as exc:
        assert exc.status == 400 and exc.param
        return
    orjson.dumps(out)
    assert all(isinstance(m, dict) and isinstance(m["role"], str) for m in out["messages"])


@SETTINGS
@given(messages_bodies)
def test_any_count_tokens_body_is_estimated_or_a_400(body: dict[str, Any]) -> None:
    try:
        tokens = estimate_messages_tokens(body)
    except BadRequest as exc:
        assert exc.param
        return
    assert isinstance(tokens, int) and tokens >= 3


# --- answers: a typed translation or a 502 ------------------------------------------------------


@SETTINGS
@given(anthropic_answers)
def test_any_anthropic_answer_becomes_a_typed_chat_completion_or_a_502(answer: dict[str, Any]) -> None:
    codec = select_codec(CHAT, "anthropic")
    try:
        body, usage = codec.response(orjson.dumps(answer), {})
    except MalformedUpstream as exc:
        assert exc.status == 502 and "malformed" in exc.message
        return
    ChatCompletion.model_validate(orjson.loads(body), strict=True)
    assert usage == Usage.from_anthropic(answer.get("usage"))


@SETTINGS
@given(chat_answers)
def test_any_chat_answer_becomes_a_typed_message_or_a_502(answer: dict[str, Any]) -> None:
    codec = select_codec(MESSAGES, "openai")
    try:
        body, usage = codec.response(orjson.dumps(answer), {})
    except MalformedUpstream as exc:
        assert exc.status == 502 and "malformed" in exc.message
        return
    Message.model_validate(orjson.loads(body), strict=True)
    assert usage == Usage.from_chat(answer.get("usage"))


@SETTINGS
@given(st.sampled_from([(CHAT, "openai"), (RESPONSES, "openai"), (MESSAGES, "anthropic")]),
       json_values.map(orjson.dumps) | st.binary(max_size=24) | chat_answers.map(orjson.dumps))
def test_a_same_format_answer_is_relayed_untouched_only_when_it_is_a_json_object(
        pair: tuple[str, str], body: bytes) -> None:
    try:
        out, _ = select_codec(*pair).response(body, {})
    except MalformedUpstream:
        with contextlib.suppress(orjson.JSONDecodeError):
            assert not isinstance(orjson.loads(body), dict)
        return
    assert out is body and isinstance(orjson.loads(body), dict)


@SETTINGS
@given(json_values | near("chat_on_messages/responses", "in").map(lambda a: a.get("usage") if isinstance(a, dict)
                                                                    else a))
def test_usage_readers_take_anything_and_count_only_whole_numbers(usage: Any) -> None:
    for read in (Usage.from_chat, Usage.from_anthropic, Usage.from_responses):
        counts = read(usage)
        fields = (counts.input_tokens, counts.output_tokens, counts.cached_tokens, counts.cache_write_tokens,
                  counts.reasoning_tokens)
        assert all(type(n) is int and 0 <= n < 2**55 for n in fields)
        orjson.dumps([counts.to_chat(), counts.to_anthropic(), counts.to_responses()])


# --- errors: always the client's shape -----------------------------------------------------------

def _error_body_values(folder: str) -> list[Any]:
    return [_json_or_bytes(body.encode()) for body in _fixture_values(folder, "body")]


error_bodies = (json_values.map(orjson.dumps) | st.binary(max_size=40)
                | mutated(_error_body_values("chat_on_messages/errors") + _error_body_values("messages_on_chat/errors"))
                .map(lambda body: body if isinstance(body, bytes) else orjson.dumps(body)))


@SETTINGS
@given(st.integers(min_value=400, max_value=599), error_bodies)
def test_any_error_body_reaches_the_client_in_its_own_shape(status: int, body: bytes) -> None:
    for route, family, shape in ((CHAT, "anthropic", "openai"), (CHAT, "openai", "openai"),
                                 (MESSAGES, "openai", "anthropic"), (MESSAGES, "anthropic", "anthropic")):
        out_status, out = select_codec(route, family).error(status, body)
        assert 400 <= out_status <= 599
        error = orjson.loads(out)
        if shape == "openai":
            assert isinstance(error["error"], dict)
        else:
            assert error["type"] == "error" and isinstance(error["error"], dict)


# --- streams: one terminator, typed events, the same bytes however split ---------------------------


def _chat_events(out: bytes) -> list[Any]:
    """The Chat chunks of a client stream, each valid for the openai SDK, and the ending."""
    events = parse_events(out)
    assert out == b"".join(encode_event(e.data, e.event) for e in events)  # whole events only
    endings = [e for e in events if e.data == b"[DONE]" or b'"error"' in e.data[:10]]
    assert len(endings) == 1 and events[-1] is endings[0]
    for event in events[:-1]:
        ChatCompletionChunk.model_validate(orjson.loads(event.data), strict=True)
    return events


@STREAM_SETTINGS
@given(mutated_streams("chat_on_messages/streams"), st.booleans())
def test_any_anthropic_stream_becomes_chat_chunks_with_one_ending(wire: bytes, include_usage: bool) -> None:
    translator, out = _both_ways(
        lambda: chat_on_messages.ChatOnMessagesStream("m", include_usage=include_usage, created=1), wire)
    _chat_events(out)
    assert translator.done != translator.failed


@STREAM_SETTINGS
@given(mutated_streams("messages_on_chat/streams"))
def test_any_chat_stream_becomes_anthropic_events_with_one_ending(wire: bytes) -> None:
    translator, out = _both_ways(lambda: messages_on_chat.MessagesOnChatStream("m"), wire)
    events = parse_events(out)
    assert out == b"".join(encode_event(e.data, e.event) for e in events)
    endings = [e for e in events if e.event in ("message_stop", "error")]
    assert len(endings) == 1 and events[-1] is endings[0]
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
    for event in events[:-1]:
        data = orjson.loads(event.data)
        assert data["type"] == event.event
        adapter.validate_python(data, strict=True)
    assert translator.done != translator.failed


def _complete_events(wire: bytes) -> bytes:
    parser = SSEParser()
    return parser.feed_block(wire)


@STREAM_SETTINGS
@given(st.sampled_from([("messages_on_chat/streams", native.ChatStreamRelay),
                        ("chat_on_messages/streams", native.MessagesStreamRelay),
                        ("chat_on_messages/streams", native.ResponsesStreamRelay)]).flatmap(
    lambda pair: st.tuples(mutated_streams(pair[0]), st.just(pair[1]))))
def test_a_same_format_stream_passes_untouched_whatever_its_events_hold(case: tuple[bytes, Any]) -> None:
    wire, relay = case
    translator, out = _both_ways(lambda: relay.for_request("m", {}, False), wire)
    complete = _complete_events(wire)
    assert out.startswith(complete)
    assert len(parse_events(out[len(complete):])) <= 2  # a final unterminated event, an error frame
    assert translator.done or translator.failed


@STREAM_SETTINGS
@given(mutated_streams("messages_on_chat/streams"))
def test_the_injected_usage_chunk_is_dropped_whatever_the_chunks_hold(wire: bytes) -> None:
    _, out = _both_ways(lambda: native.ChatStreamRelay.for_request("m", {}, True), wire)
    for event in parse_events(out):
        with contextlib.suppress(orjson.JSONDecodeError):
            chunk = orjson.loads(event.data)
            assert not (isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict))


@STREAM_SETTINGS
@given(st.lists(json_values.map(orjson.dumps) | st.binary(max_size=20), max_size=6),
       st.sampled_from(["", "message_start", "content_block_start", "content_block_delta", "content_block_stop",
                        "message_delta", "error", "response.completed"]))
def test_any_events_at_all_end_every_stream_once(datas: list[bytes], name: str) -> None:
    wire = b"".join(encode_event(d.replace(b"\r", b""), name) for d in datas)
    for make in (lambda: chat_on_messages.ChatOnMessagesStream("m", include_usage=True, created=1),
                 lambda: messages_on_chat.MessagesOnChatStream("m"),
                 lambda: native.ChatStreamRelay(strip_usage=True), native.MessagesStreamRelay,
                 native.ResponsesStreamRelay):
        translator, out = _both_ways(make, wire)
        assert translator.done or translator.failed
        assert translator.finish() == [] and translator.fail("again") == []
        if not translator.raw:
            assert out.endswith((DONE_FRAME, b"\n\n")) and parse_events(out)
