"""A Responses API client served by an OpenAI-compatible Chat Completions provider (sans-IO).

`translate_request` turns the client's Responses body into a Chat body;
`translate_response`, `ResponsesOnChatStream` and `translate_error` turn the provider's
answer, stream chunks and error bodies back into Responses. The rules are those of
wire-formats.md 2 and 6.6; the policy choices that lose information are listed in each
function's docstring. State (`store`, `previous_response_id`) is not handled here: the
caller rebuilds `input` from the responses store before translating (see
gateway/responses_store.py). Through `chat_on_messages` the same translation serves
Anthropic providers (Responses → Chat → Messages).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..errors import BadRequest, openai_error_type
from ..sse import SSEEvent, encode_event, event_data
from ..usage import Usage
from . import chat
from .json_values import (
    Json,
    WrongShape,
    client_body,
    describe,
    dumps,
    expect_dict,
    expect_list,
    expect_str,
    malformed_message,
    optional_dict,
    optional_list,
    optional_str,
    provider_answer,
)
from .responses import (
    IdSource,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    refusal_part,
    response_object,
    text_part,
    usage_object,
)
from .stream import StreamTranslator

__all__ = ["ResponsesOnChatStream", "translate_error", "translate_request", "translate_response"]

# Chat finish_reason → the Response's incomplete_details.reason; any other finish completes it.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _unsupported(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="unsupported_parameter")


# --- request: Responses → Chat ---------------------------------------------------------


@client_body
def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """Translate a Responses request body into a Chat Completions body.

    Policy choices (lossy or opinionated):
    - `instructions` and `developer` messages become `system` messages: many Chat servers
      (vLLM chat templates, local servers) know no `developer` role, and OpenAI treats
      system as developer for the models that have one. Text parts are joined "\\n".
    - `max_output_tokens` becomes `max_completion_tokens` (`max_tokens` is deprecated and
      refused by reasoning models); without it the provider's default applies, so
      `default_max_tokens` is not used here (chat_on_messages applies it for Anthropic).
    - `function_call` items join the assistant message before them as `tool_calls`;
      `function_call_output` items become `tool` messages (their text parts joined "\\n";
      images and files in them follow as a user message, as Chat tool messages hold
      text only). `reasoning` items are dropped: Chat history cannot carry them.
    - Function tools go nested under `function`; `strict` is sent only when given
      (Responses defaults it to true, Chat to false). `tool_choice` and
      `parallel_tool_calls` are sent only with tools, as Chat requires.
    - `text.format` becomes `response_format`; `reasoning.effort` `reasoning_effort`;
      `metadata`, `user`, `safety_identifier` and `prompt_cache_key` are copied.
    - `stream: true` adds `stream_options.include_usage`: usage belongs in the terminal
      event. `store`, `previous_response_id`, `include`, `truncation`, `max_tool_calls`,
      `service_tier`, `text.verbosity`, `reasoning.summary` and `stream_options` are not
      sent.
    - Built-in tools (web_search, file_search, computer use, code_interpreter, mcp,
      image_generation, custom…), `background: true`, `conversation`, `prompt`,
      `top_logprobs`, `item_reference` items and file ids raise BadRequest naming the
      field: a Chat provider cannot honour them.
    A value of the wrong JSON type raises BadRequest naming the field.
    """
    _reject_unsupported(body)
    messages: list[Json] = []
    instructions = optional_str(body.get("instructions"), "instructions")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    builder = _ChatMessages(messages)
    _convert_input(body.get("input"), builder)
    out: Json = {"model": body.get("model"), "messages": builder.finish()}
    max_output = body.get("max_output_tokens")
    if max_output is not None:
        if not isinstance(max_output, int) or isinstance(max_output, bool) or max_output < 1:
            raise BadRequest("max_output_tokens must be a positive integer", param="max_output_tokens")
        out["max_completion_tokens"] = max_output
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise WrongShape(key, "a number")
            out[key] = value
    _copy_tools(body, out)
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    effort = optional_str(optional_dict(body.get("reasoning"), "reasoning").get("effort"), "reasoning.effort")
    if effort:
        out["reasoning_effort"] = effort
    metadata = body.get("metadata")
    if metadata:
        out["metadata"] = expect_dict(metadata, "metadata")
    for key in ("user", "safety_identifier", "prompt_cache_key"):
        value = optional_str(body.get(key), key)
        if value:
            out[key] = value
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _reject_unsupported(body: Json) -> None:
    if body.get("background"):
        raise _unsupported("background responses are not available on this provider", "background")
    if body.get("conversation") is not None:
        raise _unsupported("conversations are not available on this provider; use previous_response_id",
                           "conversation")
    if body.get("prompt") is not None:
        raise _unsupported("prompt templates are not available on this provider", "prompt")
    if body.get("top_logprobs"):
        raise _unsupported("logprobs are not available on this provider", "top_logprobs")
    for key in ("store", "parallel_tool_calls"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise WrongShape(key, "true or false")
    optional_str(body.get("previous_response_id"), "previous_response_id")


class _ChatMessages:
    """Collects Chat messages: tool calls join the assistant message before them; images
    and files from tool outputs follow the tool messages as one user message."""

    __slots__ = ("_media", "messages")

    def __init__(self, messages: list[Json]) -> None:
        self.messages = messages
        self._media: list[Json] = []

    def add(self, message: Json) -> None:
        self._flush_media()
        self.messages.append(message)

    def tool_call(self, call: Json) -> None:
        last = self.messages[-1] if self.messages and not self._media else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            self.add({"role": "assistant", "content": None, "tool_calls": [call]})

    def tool_output(self, message: Json, media: list[Json]) -> None:
        # Tool messages must follow their tool calls directly: media waits behind them.
        self.messages.append(message)
        self._media.extend(media)

    def finish(self) -> list[Json]:
        self._flush_media()
        return self.messages

    def _flush_media(self) -> None:
        if self._media:
            self.messages.append({"role": "user", "content": self._media})
            self._media = []


def _convert_input(value: Any, out: _ChatMessages) -> None:
    if value is None:
        return
    if isinstance(value, str):
        out.add({"role": "user", "content": value})
        return
    for i, item in enumerate(expect_list(value, "input")):
        path = f"input[{i}]"
        kind = expect_dict(item, path).get("type")
        if kind == "message" or (kind is None and "role" in item):
            _message(item, path, out)
        elif kind == "function_call":
            out.tool_call(_tool_call(item, path))
        elif kind == "function_call_output":
            _tool_output(item, path, out)
        elif kind == "reasoning":
            continue
        elif kind == "item_reference":
            raise _unsupported("item_reference items cannot be resolved on this provider; send the item itself",
                               f"{path}.type")
        else:
            raise _unsupported(f"input item type {describe(kind)} cannot be sent to this provider", f"{path}.type")


def _message(item: Json, path: str, out: _ChatMessages) -> None:
    role = item.get("role")
    content = item.get("content")
    if role == "user":
        out.add({"role": "user", "content": _user_content(content, f"{path}.content")})
    elif role == "system" or role == "developer":
        out.add({"role": "system", "content": _plain_text(content, f"{path}.content")})
    elif role == "assistant":
        message = _assistant_message(content, f"{path}.content")
        if message is not None:
            out.add(message)
    else:
        raise _unsupported(f"{path}.role {describe(role)} is not supported", f"{path}.role")


_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def _user_content(content: Any, path: str) -> str | list[Json]:
    if isinstance(content, str):
        return content
    parts: list[Json] = []
    for j, part in enumerate(expect_list(content, path)):
        where = f"{path}[{j}]"
        kind = expect_dict(part, where).get("type")
        if kind in _TEXT_PARTS:
            parts.append({"type": "text", "text": expect_str(part.get("text"), f"{where}.text")})
        else:
            parts.append(_media_part(part, kind, where))
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _media_part(part: Json, kind: Any, path: str) -> Json:
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise _unsupported("input_image file_id cannot be sent to this provider; send image_url "
                               "(an http(s) or data URL)", f"{path}.file_id")
        image: Json = {"url": expect_str(part.get("image_url"), f"{path}.image_url")}
        detail = optional_str(part.get("detail"), f"{path}.detail")
        if detail:
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        for key in ("file_id", "file_url"):
            if part.get(key) is not None:
                raise _unsupported(f"input_file {key} cannot be sent to this provider; send file_data",
                                   f"{path}.{key}")
        file: Json = {"file_data": expect_str(part.get("file_data"), f"{path}.file_data")}
        filename = optional_str(part.get("filename"), f"{path}.filename")
        if filename:
            file["filename"] = filename
        return {"type": "file", "file": file}
    raise _unsupported(f"content part {describe(kind)} cannot be sent to this provider", f"{path}.type")


def _plain_text(content: Any, path: str) -> str:
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for j, part in enumerate(expect_list(content, path)):
        kind = expect_dict(part, f"{path}[{j}]").get("type")
        if kind not in _TEXT_PARTS:
            raise _unsupported(f"content part {describe(kind)} is not allowed here; send text", f"{path}[{j}].type")
        texts.append(expect_str(part.get("text"), f"{path}[{j}].text"))
    return "\n".join(texts)


def _assistant_message(content: Any, path: str) -> Json | None:
    refusals: list[str] = []
    if isinstance(content, str) or content is None:
        text = content or ""
    else:
        texts: list[str] = []
        for j, part in enumerate(expect_list(content, path)):
            kind = expect_dict(part, f"{path}[{j}]").get("type")
            if kind in _TEXT_PARTS:
                texts.append(expect_str(part.get("text"), f"{path}[{j}].text"))
            elif kind == "refusal":
                refusals.append(expect_str(part.get("refusal"), f"{path}[{j}].refusal"))
            else:
                raise _unsupported(f"content part {describe(kind)} is not allowed in an assistant message",
                                   f"{path}[{j}].type")
        text = "".join(texts)
    if not text and not refusals:
        return None
    message: Json = {"role": "assistant", "content": text or None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _tool_call(item: Json, path: str) -> Json:
    arguments = item.get("arguments")
    if isinstance(arguments, dict):  # a few clients send an object, not a JSON string
        arguments = dumps(arguments, f"{path}.arguments").decode()
    return {
        "id": expect_str(item.get("call_id"), f"{path}.call_id"),
        "type": "function",
        "function": {
            "name": expect_str(item.get("name"), f"{path}.name"),
            "arguments": optional_str(arguments, f"{path}.arguments") or "{}",
        },
    }


def _tool_output(item: Json, path: str, out: _ChatMessages) -> None:
    call_id = expect_str(item.get("call_id"), f"{path}.call_id")
    output = item.get("output")
    media: list[Json] = []
    if isinstance(output, list):
        texts: list[str] = []
        for j, part in enumerate(output):
            where = f"{path}.output[{j}]"
            kind = expect_dict(part, where).get("type")
            if kind in _TEXT_PARTS:
                texts.append(expect_str(part.get("text"), f"{where}.text"))
            else:
                media.append(_media_part(part, kind, where))
        text = "\n".join(texts)
    else:
        text = optional_str(output, f"{path}.output") or ""
    out.tool_output({"role": "tool", "tool_call_id": call_id, "content": text}, media)


# --- tools and formats -----------------------------------------------------------------


def _copy_tools(body: Json, out: Json) -> None:
    tools = [_function_tool(t, f"tools[{i}]") for i, t in enumerate(optional_list(body.get("tools"), "tools"))]
    choice = _tool_choice(body.get("tool_choice"))
    if not tools:
        return
    out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    if body.get("parallel_tool_calls") is not None:
        out["parallel_tool_calls"] = body["parallel_tool_calls"]


def _function_tool(tool: Any, path: str) -> Json:
    kind = expect_dict(tool, path).get("type")
    if kind != "function":
        raise _unsupported(
            f"tool {describe(kind)} is not available on this provider: only function tools can be served "
            "through Chat Completions",
            f"{path}.type",
        )
    function: Json = {"name": expect_str(tool.get("name"), f"{path}.name")}
    description = optional_str(tool.get("description"), f"{path}.description")
    if description:
        function["description"] = description
    parameters = tool.get("parameters")
    if parameters is not None:
        function["parameters"] = expect_dict(parameters, f"{path}.parameters")
    strict = tool.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise WrongShape(f"{path}.strict", "true or false")
        function["strict"] = strict
    return {"type": "function", "function": function}


def _named_function(choice: Json, path: str) -> Json:
    return {"type": "function", "function": {"name": expect_str(choice.get("name"), f"{path}.name")}}


def _tool_choice(choice: Any) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        return _named_function(choice, "tool_choice")
    if kind == "allowed_tools":
        assert isinstance(choice, dict)
        allowed: list[Json] = []
        for i, tool in enumerate(optional_list(choice.get("tools"), "tool_choice.tools")):
            path = f"tool_choice.tools[{i}]"
            if expect_dict(tool, path).get("type") != "function":
                raise _unsupported(f"tool {describe(tool.get('type'))} is not available on this provider", path)
            allowed.append(_named_function(tool, path))
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise WrongShape("tool_choice.mode", '"auto" or "required"')
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}
    what = describe(kind if kind is not None else choice)
    raise _unsupported(f"tool_choice {what} is not available on this provider", "tool_choice")


def _response_format(text: Any) -> Json | None:
    fmt = optional_dict(optional_dict(text, "text").get("format"), "text.format")
    kind = fmt.get("type")
    if kind is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: Json = {
            "name": expect_str(fmt.get("name"), "text.format.name"),
            "schema": expect_dict(fmt.get("schema"), "text.format.schema"),
        }
        description = optional_str(fmt.get("description"), "text.format.description")
        if description:
            schema["description"] = description
        strict = fmt.get("strict")
        if strict is not None:
            if not isinstance(strict, bool):
                raise WrongShape("text.format.strict", "true or false")
            schema["strict"] = strict
        return {"type": "json_schema", "json_schema": schema}
    raise _unsupported(f"text.format {describe(kind)} is not supported", "text.format.type")


# --- response: Chat → Responses --------------------------------------------------------


def _reasoning_text(message: Json) -> str:
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def _model(request: Json, upstream: Any) -> str:
    """The client's model name when it gave one (as the stream reports it), else the provider's."""
    model = request.get("model")
    return model if isinstance(model, str) and model else expect_str(upstream, "model")


def _status(finish_reason: str | None) -> tuple[str, Json | None]:
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


@provider_answer
def translate_response(
    resp: Json,
    request: Json | None = None,
    *,
    make_id: IdSource = new_id,
    created_at: int | None = None,
) -> tuple[Json, Usage]:
    """Translate a `chat.completion` into a Response object and its usage.

    `request` is the client's Responses body: its settings are echoed, and its model
    names the response (the provider's model when it has none). `reasoning_content`
    (or `reasoning`) becomes a leading reasoning item with the raw text; text and
    refusal become one message; each tool call (and a legacy `function_call`) a
    function_call item. finish_reason `length` gives status incomplete with reason
    max_output_tokens, `content_filter` reason content_filter; then the last item is
    the incomplete one. `created_at` defaults to now. A field of the wrong JSON type
    raises MalformedUpstream.
    """
    request = request or {}
    choices = optional_list(resp.get("choices"), "choices") or [{}]
    choice = expect_dict(choices[0], "choices[0]")
    message = optional_dict(choice.get("message"), "choices[0].message")
    response = response_object(request, make_id("resp"), _model(request, resp.get("model")),
                               int(time.time()) if created_at is None else created_at)
    output: list[Json] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        output.append(reasoning_item(make_id("rs"), reasoning))
    parts: list[Json] = []
    text = chat.joined_text(message.get("content"), "choices[0].message.content", "")
    if text:
        parts.append(text_part(text))
    refusal = optional_str(message.get("refusal"), "choices[0].message.refusal")
    if refusal:
        parts.append(refusal_part(refusal))
    if parts:
        output.append(message_item(make_id("msg"), parts, "completed"))
    calls = list(optional_list(message.get("tool_calls"), "choices[0].message.tool_calls"))
    if isinstance(message.get("function_call"), dict):
        calls.append({"function": message["function_call"]})
    for i, call in enumerate(calls):
        output.append(_function_call(expect_dict(call, f"choices[0].message.tool_calls[{i}]"),
                                     f"choices[0].message.tool_calls[{i}]", make_id))
    status, incomplete = _status(optional_str(choice.get("finish_reason"), "choices[0].finish_reason"))
    if incomplete is not None and output and "status" in output[-1]:
        output[-1]["status"] = "incomplete"
    usage = Usage.from_chat(resp.get("usage"))
    response.update(status=status, incomplete_details=incomplete, output=output, usage=usage_object(usage))
    return response, usage


def _function_call(call: Json, path: str, make_id: IdSource) -> Json:
    function = optional_dict(call.get("function"), f"{path}.function")
    arguments = function.get("arguments")
    if isinstance(arguments, dict):
        arguments = dumps(arguments, f"{path}.function.arguments").decode()
    call_id = optional_str(call.get("id"), f"{path}.id") or make_id("call")
    return function_call_item(
        make_id("fc"),
        call_id,
        expect_str(function.get("name"), f"{path}.function.name"),
        optional_str(arguments, f"{path}.function.arguments") or "",
        "completed",
    )


# --- errors ----------------------------------------------------------------------------


def translate_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Chat provider error → (status, OpenAI error body): the same family, so an
    OpenAI-shaped body passes unchanged; anything else is wrapped with its message
    (`message`/`detail`/the body's text, as chat.read_error finds it)."""
    shaped, message = chat.read_error(body)
    if shaped:
        return status, body
    return status, chat.error_body(message or f"upstream returned HTTP {status}", openai_error_type(status),
                                   "upstream_error")


# Upstream error type/code strings that the Responses error codes can name.
_RATE_LIMITED = frozenset({"rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "requests", "tokens"})


def _failure_code(error: Json) -> str:
    """A ResponseError `code` (a closed list in the SDK) for an upstream error object."""
    for key in ("code", "type"):
        if error.get(key) in _RATE_LIMITED:
            return "rate_limit_exceeded"
    status = error.get("status", error.get("code"))
    return "rate_limit_exceeded" if status == 429 else "server_error"


# --- stream: Chat chunks → Responses events --------------------------------------------

# What each open content part streams: its delta and done event types, the field its
# done event carries the whole text in, and the tail closing a delta event.
_PART_KINDS: dict[str, tuple[str, str, str, bytes]] = {
    "output_text": ("response.output_text.delta", "response.output_text.done", "text", b',"logprobs":[]}\n\n'),
    "refusal": ("response.refusal.delta", "response.refusal.done", "refusal", b"}\n\n"),
    "reasoning_text": ("response.reasoning_text.delta", "response.reasoning_text.done", "text", b"}\n\n"),
}
_EMPTY_PARTS: dict[str, Json] = {
    "output_text": text_part(""),
    "refusal": refusal_part(""),
    "reasoning_text": {"type": "reasoning_text", "text": ""},
}
_ARGUMENTS_DELTA = "response.function_call_arguments.delta"


class _Call:
    """One streamed Chat tool call while it becomes a function_call item."""

    __slots__ = ("id", "name", "pending", "slot")

    def __init__(self, call_id: str | None, name: str | None) -> None:
        self.id = call_id
        self.name = name
        self.pending: list[str] = []  # argument fragments seen before the name
        self.slot: _Slot | None = None  # its output item once opened


class _Slot:
    """The open output item: its index, the item, and its open content part (if any)."""

    __slots__ = ("delta_head", "delta_mid", "delta_tail", "fragments", "index", "item", "part")

    def __init__(self, index: int, item: Json) -> None:
        self.index = index
        self.item = item
        self.part: str | None = None  # kind of the open content part
        self.fragments: list[str] = []  # text of the open part, or the call's arguments
        self.delta_head = b""
        self.delta_mid = b""
        self.delta_tail = b""

    def stream(self, delta_type: str, fields: bytes, tail: bytes) -> None:
        """Precompute the bytes around the deltas of what is open now (hot path)."""
        self.delta_head = (b"event: " + delta_type.encode() + b'\ndata: {"type":"' + delta_type.encode()
                           + b'","sequence_number":')
        self.delta_mid = fields + b',"delta":'
        self.delta_tail = tail


class ResponsesOnChatStream(StreamTranslator):
    """State machine: Chat Completions chunks in, Responses API events out.

    The first chunk brings `response.created` and `response.in_progress`. Reasoning text,
    message text, refusal text and each tool call become output items with the full
    added/delta/done envelope (wire-formats 2.4), one item open at a time; the finish
    chunk closes the open one. `[DONE]` (after the usage chunk) sends the terminal event
    with the whole output and usage: `response.completed`, or `response.incomplete` when
    the answer was cut by length or a content filter (as OpenAI does). A `data: {"error":
    …}` chunk, a chunk of the wrong shape, `fail()`, or `finish()` before `[DONE]` send one
    `response.failed` (status failed, with `error`) and nothing after it. Every event has
    an `event:` line and an increasing `sequence_number` from 0.

    `response` is the Response object: complete once `done`, failed once `failed`; the
    caller stores it for previous_response_id.
    """

    __slots__ = ("_calls", "_finish_reason", "_make_id", "_open", "_seq", "_started", "response")
    cut_message = "upstream stream ended before [DONE]"

    def __init__(self, model: str, request: Json | None = None, *, make_id: IdSource = new_id,
                 created_at: int | None = None) -> None:
        super().__init__()
        self._make_id = make_id
        self.response = response_object(request or {}, make_id("resp"), model,
                                        int(time.time()) if created_at is None else created_at)
        self._seq = 0
        self._started = False
        self._open: _Slot | None = None
        self._calls: dict[int, _Call] = {}
        self._finish_reason: str | None = None

    @classmethod
    def for_request(cls, model: str, body: Json, injected_usage: bool) -> ResponsesOnChatStream:
        return cls(model, body)

    # --- public API -----------------------------------------------------------------
    def relay_block(self, block: bytes) -> bytes:
        """Every chunk of the block translated (Chat chunks carry no event names)."""
        frames: list[bytes] = []
        for data in event_data(block):
            if not self._text_delta(data, frames):
                frames += self._translate(data)
        return b"".join(frames)

    def _text_delta(self, data: bytes, out: list[bytes]) -> bool:
        """The hot path: a chunk of one choice whose delta is only more text for the open
        text part. False (nothing sent) for any other chunk: `_translate` takes it."""
        slot = self._open
        if slot is None or slot.part != "output_text" or data[:1] != b"{" or self.failed or self.done:
            return False
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if type(chunk) is not dict or chunk.get("error") or chunk.get("usage") is not None:
            return False
        choices = chunk.get("choices")
        if type(choices) is not list or len(choices) != 1:
            return False
        choice = choices[0]
        if type(choice) is not dict or choice.get("index", 0) != 0 or choice.get("finish_reason"):
            return False
        delta = choice.get("delta")
        if type(delta) is not dict or len(delta) != 1:
            return False
        text = delta.get("content")
        if type(text) is not str or not text:
            return False
        self._delta(slot, text, out)
        return True

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Translate one upstream chunk (or `[DONE]`); returns zero or more frames."""
        return self._translate(event.data)

    def error_frame(self, message: str, status: int) -> bytes:
        return b"".join(self._failed(message, "rate_limit_exceeded" if status == 429 else "server_error"))

    def _translate(self, data: bytes) -> list[bytes]:
        if self.failed or self.done:
            return []
        chunk = chat.read_stream_chunk(data)
        if chunk is None:
            return self._complete()
        if isinstance(chunk, str):
            return self.fail(chunk)
        error = chunk.get("error")
        if error:
            return self._upstream_error(error)
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage.from_chat(usage)
        choices = chunk.get("choices")
        if not choices:  # usage-only chunk, or Azure's prompt_filter_results preamble
            return out
        if not isinstance(choices, list):
            return out + self.fail(malformed_message("chunk: choices must be an array"))
        try:
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        except WrongShape as exc:
            return out + self.fail(malformed_message(f"chunk: {exc}"))
        return out

    # --- chunk handling ---------------------------------------------------------------
    def _choice(self, choice: Json, out: list[bytes]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = optional_dict(delta, "choices[0].delta")
        if "reasoning_content" in delta or "reasoning" in delta:
            reasoning = _reasoning_text(delta)
            if reasoning:
                self._delta(self._part("reasoning_text", out), reasoning, out)
        text = delta.get("content")
        if text and isinstance(text, str):  # the hot path: one text fragment
            slot = self._open
            if slot is None or slot.part != "output_text":
                slot = self._part("output_text", out)
            self._delta(slot, text, out)
        if "refusal" in delta:
            refusal = delta["refusal"]
            if refusal and isinstance(refusal, str):
                self._delta(self._part("refusal", out), refusal, out)
        if "tool_calls" in delta:
            calls = optional_list(delta["tool_calls"], "choices[0].delta.tool_calls")
            for position, call in enumerate(calls):
                if isinstance(call, dict) and not self.failed:
                    self._tool_fragment(call, position, out)
            if self.failed:
                return
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            self._finish_reason = expect_str(finish_reason, "choices[0].finish_reason")
            self._close(out, INCOMPLETE_REASONS.get(self._finish_reason) is not None)

    def _tool_fragment(self, call: Json, position: int, out: list[bytes]) -> None:
        index, call_id, name, arguments = chat.tool_call_fragment(call, position)
        state = self._calls.get(index)
        if state is None:
            state = self._calls[index] = _Call(call_id, name)
        else:
            state.id = state.id or call_id
            state.name = state.name or name
        if state.slot is None:
            if arguments:
                state.pending.append(arguments)
            if state.name:
                self._open_call(state, out)
        elif arguments:
            if self._open is not state.slot:
                out.extend(self.fail("upstream interleaved the arguments of parallel tool calls"))
                return
            self._delta(state.slot, arguments, out)

    # --- events -----------------------------------------------------------------------
    def _event(self, kind: str, fields: Json) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return encode_event(orjson.dumps(data), kind)

    def _delta(self, slot: _Slot, text: str, out: list[bytes]) -> None:
        # Hot path: the same bytes _event() would make, from precomputed fragments.
        slot.fragments.append(text)
        out.append(slot.delta_head + b"%d" % self._seq + slot.delta_mid + orjson.dumps(text) + slot.delta_tail)
        self._seq += 1

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        out.append(self._event("response.created", {"response": self.response}))
        out.append(self._event("response.in_progress", {"response": self.response}))

    def _open_item(self, item: Json, out: list[bytes]) -> _Slot:
        self._close(out, False)
        output: list[Json] = self.response["output"]
        slot = self._open = _Slot(len(output), item)
        output.append(item)
        # The added event shows the item as it starts: empty, in progress.
        out.append(self._event("response.output_item.added", {"output_index": slot.index, "item": item}))
        return slot

    def _part(self, kind: str, out: list[bytes]) -> _Slot:
        """The open slot with an open part of `kind`, opening the item and part as needed."""
        slot = self._open
        item_type = "reasoning" if kind == "reasoning_text" else "message"
        if slot is None or slot.item["type"] != item_type:
            if item_type == "reasoning":
                item = reasoning_item(self._make_id("rs"), None)
            else:
                item = message_item(self._make_id("msg"), [], "in_progress")
            slot = self._open_item(item, out)
        elif slot.part == kind:
            return slot
        self._close_part(slot, out)
        slot.part = kind
        content_index = len(slot.item["content"])
        fields = {"item_id": slot.item["id"], "output_index": slot.index, "content_index": content_index}
        out.append(self._event("response.content_part.added", {**fields, "part": _EMPTY_PARTS[kind]}))
        delta_type, _, _, tail = _PART_KINDS[kind]
        slot.stream(delta_type, b"," + orjson.dumps(fields)[1:-1], tail)
        return slot

    def _open_call(self, state: _Call, out: list[bytes]) -> None:
        call_id = state.id or self._make_id("call")
        item = function_call_item(self._make_id("fc"), call_id, state.name or "", "", "in_progress")
        slot = state.slot = self._open_item(item, out)
        fields = {"item_id": item["id"], "output_index": slot.index}
        slot.stream(_ARGUMENTS_DELTA, b"," + orjson.dumps(fields)[1:-1], b"}\n\n")
        for fragment in state.pending:
            self._delta(slot, fragment, out)
        state.pending.clear()

    def _close_part(self, slot: _Slot, out: list[bytes]) -> None:
        kind = slot.part
        if kind is None:
            return
        _, done_type, field, _ = _PART_KINDS[kind]
        whole = "".join(slot.fragments)
        part = {**_EMPTY_PARTS[kind], field: whole}
        fields = {"item_id": slot.item["id"], "output_index": slot.index, "content_index": len(slot.item["content"])}
        done = {**fields, field: whole, "logprobs": []} if kind == "output_text" else {**fields, field: whole}
        out.append(self._event(done_type, done))
        out.append(self._event("response.content_part.done", {**fields, "part": part}))
        slot.item["content"].append(part)
        slot.part = None
        slot.fragments = []

    def _close(self, out: list[bytes], incomplete: bool) -> None:
        """Close the open item (if any): its done events, its final status."""
        slot = self._open
        if slot is None:
            return
        self._open = None
        item = slot.item
        if item["type"] == "function_call":
            item["arguments"] = "".join(slot.fragments)
            fields = {"item_id": item["id"], "output_index": slot.index}
            out.append(self._event("response.function_call_arguments.done",
                                   {**fields, "arguments": item["arguments"], "name": item["name"]}))
        else:
            self._close_part(slot, out)
        if "status" in item:
            item["status"] = "incomplete" if incomplete else "completed"
        out.append(self._event("response.output_item.done", {"output_index": slot.index, "item": item}))

    # --- endings ----------------------------------------------------------------------
    def _complete(self) -> list[bytes]:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        status, incomplete = _status(self._finish_reason)
        self._close(out, incomplete is not None)
        self.response.update(status=status, incomplete_details=incomplete, usage=usage_object(self.usage))
        out.append(self._event(f"response.{status}", {"response": self.response}))
        self.done = True
        return out

    def _failed(self, message: str, code: str) -> list[bytes]:
        """The `response.failed` ending (after the start events if none went out yet)."""
        self.failed = True
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        slot = self._open
        if slot is not None:  # the open item as far as it came
            item = slot.item
            if item["type"] == "function_call":
                item["arguments"] = "".join(slot.fragments)
            elif slot.part is not None:
                field = _PART_KINDS[slot.part][2]
                item["content"].append({**_EMPTY_PARTS[slot.part], field: "".join(slot.fragments)})
            if "status" in item:
                item["status"] = "incomplete"
        self.response.update(status="failed", error={"code": code, "message": message},
                             usage=usage_object(self.usage))
        out.append(self._event("response.failed", {"response": self.response}))
        return out

    def _upstream_error(self, error: Any) -> list[bytes]:
        # The stream ends here whatever the chunk holds: fields of the wrong type get defaults.
        if isinstance(error, str):
            error = {"message": error}
        elif not isinstance(error, dict):
            error = {}
        message = error.get("message")
        if not isinstance(message, str) or not message:
            message = "upstream error"
        return self._failed(message, _failure_code(error))
