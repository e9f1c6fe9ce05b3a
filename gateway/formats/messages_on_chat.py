"""An Anthropic Messages client served by an OpenAI-compatible Chat provider (sans-IO).

`translate_request` turns the client's Messages body into a Chat body;
`translate_response`, `MessagesOnChatStream` and `translate_error` turn the provider's
answer, stream chunks and error bodies back into Messages. The rules mirror
wire-formats.md 6.1 (reverse), 6.2, 6.4, 6.5 and 7.3; the policy choices that lose
information are listed in each function's docstring.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest, anthropic_error_type
from ..sse import SSEEvent, encode_event, event_data
from ..usage import Usage
from . import anthropic, chat
from .json_values import (
    Json,
    WrongShape,
    client_body,
    describe,
    expect_dict,
    expect_list,
    expect_str,
    malformed_message,
    optional_dict,
    optional_list,
    optional_str,
    provider_answer,
)
from .stream import StreamTranslator

__all__ = ["MessagesOnChatStream", "translate_error", "translate_request", "translate_response"]

# Chat finish_reason → Anthropic stop_reason (wire-formats 6.2). content_filter becomes
# `refusal` so agents do not treat a blocked turn as a normal end.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
TOOL_ERROR_PREFIX = "Error: "


def _unsupported(message: str) -> BadRequest:
    return BadRequest(message, param="messages", code="unsupported_parameter")


# --- request: Messages → Chat ----------------------------------------------------------


@client_body
def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """Translate an Anthropic Messages request body into a Chat Completions body.

    Policy choices (lossy or opinionated):
    - `system` (string or text blocks, joined with "\\n") becomes a leading system message.
    - `tool_result` blocks become `tool` messages placed before the rest of their user
      turn; an `is_error` result is sent as "Error: <content>" (Chat has no error flag);
      images inside a tool result move to the user message that follows the tool messages.
    - `thinking`/`redacted_thinking` blocks, the `thinking` and `output_config.effort`
      settings, `top_k`, `cache_control`, `service_tier` and betas are dropped.
    - `output_config.format` becomes `response_format` json_schema named "output"
      (non-strict: OpenAI strict mode has extra schema rules).
    - Server tools (web search, code execution, …) and unknown block types raise
      BadRequest: an OpenAI-compatible provider cannot run them.
    - `stream: true` adds `stream_options.include_usage` so usage is never lost.
    - `default_max_tokens` is not used: Anthropic clients always send `max_tokens`.
    A value of the wrong JSON type raises BadRequest naming the field.
    """
    messages: list[Json] = []
    system = chat.joined_text(body.get("system"), "system")
    if system:
        messages.append({"role": "system", "content": system})
    for i, msg in enumerate(expect_list(body.get("messages"), "messages")):
        try:
            _convert_message(msg, i, messages)
        except WrongShape as exc:
            raise exc.within(f"messages[{i}]") from None
    out: Json = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user_id = optional_dict(body.get("metadata"), "metadata").get("user_id")
    if isinstance(user_id, str) and user_id:
        out["user"] = user_id
    _copy_tools(body, out)
    response_format = _response_format(body.get("output_config"))
    if response_format is not None:
        out["response_format"] = response_format
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


# Below, WrongShape paths are relative to the value read; the loops over arrays name the
# element (`exc.within`), so a path is formatted only when something is wrong.


def _convert_message(msg: Any, i: int, out: list[Json]) -> None:
    if not isinstance(msg, dict):
        raise WrongShape("", "an object")
    role = msg.get("role")
    content = msg.get("content")
    if role == "user":
        _user_messages(content, out)
    elif role == "assistant":
        assistant = _assistant_message(content)
        if assistant is not None:
            out.append(assistant)
    elif role == "system":
        text = chat.joined_text(content, "content")
        if text:
            out.append({"role": "system", "content": text})
    else:
        raise BadRequest(f"messages[{i}].role {describe(role)} is not supported", param=f"messages[{i}].role")


def _user_messages(content: Any, out: list[Json]) -> None:
    if isinstance(content, str):
        if content:
            out.append({"role": "user", "content": content})
        return
    parts: list[Json] = []
    for j, block in enumerate(expect_list(content, "content")):
        try:
            if not isinstance(block, dict):
                raise WrongShape("", "an object")
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if isinstance(text, str):
                    if text:
                        parts.append({"type": "text", "text": text})
                elif text is not None:
                    raise WrongShape("text", "a string")
            elif kind == "tool_result":
                out.append(_tool_message(block, parts))
            elif kind == "image" or kind == "document":
                parts.append(_media_part(block))
            elif kind not in ("thinking", "redacted_thinking"):
                raise _unsupported(f"content block {describe(kind)} cannot be sent to a Chat provider")
        except WrongShape as exc:
            raise exc.within(f"content[{j}]") from None
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})


def _media_part(block: Json) -> Json:
    source = optional_dict(block.get("source"), "source")
    kind = source.get("type")
    media_type = source.get("media_type")
    if block["type"] == "image":
        if kind == "base64":
            media_type = expect_str(media_type, "source.media_type")
            url = f"data:{media_type};base64,{expect_str(source.get('data'), 'source.data')}"
        elif kind == "url":
            url = expect_str(source.get("url"), "source.url")
        else:
            raise _unsupported(f"image source {describe(kind)} cannot be sent to a Chat provider")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "text":
        return {"type": "text", "text": optional_str(source.get("data"), "source.data") or ""}
    if kind == "base64" and media_type == "application/pdf":
        data_url = f"data:application/pdf;base64,{expect_str(source.get('data'), 'source.data')}"
        filename = optional_str(block.get("title"), "title") or "document.pdf"
        return {"type": "file", "file": {"file_data": data_url, "filename": filename}}
    raise _unsupported(f"document source {describe(kind)} cannot be sent to a Chat provider")


def _tool_message(block: Json, parts: list[Json]) -> Json:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise BadRequest("tool_result blocks need a tool_use_id", param="messages")
    content = block.get("content")
    if isinstance(content, list):
        texts: list[str] = []
        for k, item in enumerate(content):
            try:
                kind = expect_dict(item, "").get("type")
                if kind == "text":
                    texts.append(optional_str(item.get("text"), "text") or "")
                elif kind == "image" or kind == "document":
                    parts.append(_media_part(item))
                else:
                    raise _unsupported("tool_result content must be text, image or document blocks")
            except WrongShape as exc:
                raise exc.within(f"content[{k}]") from None
        text = "\n".join(texts)
    else:
        text = optional_str(content, "content") or ""
    if block.get("is_error"):
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}


def _assistant_message(content: Any) -> Json | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content} if content else None
    texts: list[str] = []
    calls: list[Json] = []
    for j, block in enumerate(expect_list(content, "content")):
        try:
            if not isinstance(block, dict):
                raise WrongShape("", "an object")
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    text = optional_str(text, "text") or ""
                texts.append(text)
            elif kind == "tool_use":
                calls.append(chat.tool_call(block))
            elif kind not in ("thinking", "redacted_thinking"):
                raise _unsupported(f"content block {describe(kind)} cannot be sent to a Chat provider")
        except WrongShape as exc:
            raise exc.within(f"content[{j}]") from None
    text = "".join(texts)
    if not text and not calls:
        return None
    message: Json = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _copy_tools(body: Json, out: Json) -> None:
    tools = optional_list(body.get("tools"), "tools")
    if not tools:
        return
    out["tools"] = converted = []
    for i, tool in enumerate(tools):
        try:
            converted.append(_function_tool(tool))
        except WrongShape as exc:
            raise exc.within(f"tools[{i}]") from None
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        name = expect_str(choice.get("name"), "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise BadRequest(f"tool_choice type {describe(kind)} is not supported", param="tool_choice")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _function_tool(tool: Any) -> Json:
    kind = expect_dict(tool, "").get("type")
    if kind not in (None, "custom"):
        raise BadRequest(
            f"server tool {describe(kind)} cannot be sent to an OpenAI-compatible provider",
            param="tools",
            code="unsupported_parameter",
        )
    function: Json = {
        "name": expect_str(tool.get("name"), "name"),
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _response_format(output_config: Any) -> Json | None:
    output_format = output_config.get("format") if isinstance(output_config, dict) else None
    if not isinstance(output_format, dict) or output_format.get("type") != "json_schema":
        return None
    json_schema = {"name": "output", "schema": output_format.get("schema") or {}}
    return {"type": "json_schema", "json_schema": json_schema}


# --- response: Chat → Messages ---------------------------------------------------------


@provider_answer
def translate_response(resp: Json) -> tuple[Json, Usage]:
    """Translate a `chat.completion` into an Anthropic `message` and its usage.

    `reasoning_content` (or `reasoning`) becomes a leading thinking block with an empty
    signature; `refusal` text becomes a text block with stop_reason `refusal`. A turn
    that carries tool calls reports `tool_use` whatever finish_reason said, and
    `tool_calls` without any call reports `end_turn`. A field of the wrong JSON type
    raises MalformedUpstream.
    """
    choices = optional_list(resp.get("choices"), "choices") or [{}]
    choice = expect_dict(choices[0], "choices[0]")
    message = optional_dict(choice.get("message"), "choices[0].message")
    content: list[Json] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = chat.joined_text(message.get("content"), "choices[0].message.content", "")
    if text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = list(optional_list(message.get("tool_calls"), "choices[0].message.tool_calls"))
    if isinstance(message.get("function_call"), dict):
        calls.append({"function": message["function_call"]})
    for i, call in enumerate(calls):
        try:
            content.append(anthropic.tool_use(expect_dict(call, ""), default_id=f"toolu_gw_{i}"))
        except WrongShape as exc:
            raise exc.within(f"choices[0].message.tool_calls[{i}]") from None
    finish = "content_filter" if refusal else optional_str(choice.get("finish_reason"), "choices[0].finish_reason")
    usage = Usage.from_chat(resp.get("usage"))
    out = {
        "id": _message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": expect_str(resp.get("model"), "model"),
        "content": content,
        "stop_reason": _stop_reason(finish, bool(calls)),
        "stop_sequence": None,
        "usage": usage.to_anthropic(),
    }
    return out, usage


def _reasoning_text(message: Json) -> str:
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def _message_id(upstream_id: Any) -> str:
    if not isinstance(upstream_id, str) or not upstream_id:
        return "msg_gateway"
    return upstream_id if upstream_id.startswith("msg_") else "msg_" + upstream_id


def _stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"  # some providers say "stop" for tool turns (maximhq/bifrost#6123)
    stop = STOP_REASONS.get(finish_reason or "stop", "end_turn")
    return "end_turn" if stop == "tool_use" else stop


# --- errors ----------------------------------------------------------------------------

# OpenAI error `type`/`code` strings → Anthropic error types, for in-stream errors that
# carry no HTTP status.
_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "overloaded_error": "overloaded_error",
    "server_error": "api_error",
    "api_error": "api_error",
    "timeout": "timeout_error",
}


def translate_error(status: int, body: bytes) -> tuple[int, bytes]:
    """OpenAI-style error response → (status, Anthropic error body), per wire-formats 7.3.

    The type follows the status (anthropic_error_type); 503 becomes 529
    `overloaded_error` so Claude clients apply their overload back-off. Message text is
    taken from `error.message`, a string `error`, `message` or `detail` (vLLM/FastAPI),
    else from the raw body.
    """
    if status == 503:
        status = 529
    message = chat.read_error(body)[1] or f"upstream returned HTTP {status}"
    return status, anthropic.error_body(message, anthropic_error_type(status))


def _in_stream_error_type(error: Json) -> str:
    for key in ("status", "code"):
        status = error.get(key)
        if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
            return anthropic_error_type(529 if status == 503 else status)
    for key in ("type", "code"):
        value = error.get(key)
        mapped = _ERROR_TYPES.get(value) if isinstance(value, str) else None
        if mapped:
            return mapped
    return "api_error"


# --- stream: Chat chunks → Anthropic events --------------------------------------------

_DELTA_EVENT = b"event: content_block_delta\ndata: "
_TEXT_DELTA = b',"delta":{"type":"text_delta","text":'
_THINKING_DELTA = b',"delta":{"type":"thinking_delta","thinking":'
_JSON_DELTA = b',"delta":{"type":"input_json_delta","partial_json":'
_EMPTY_BLOCKS: dict[str, Json] = {
    "text": {"type": "text", "text": ""},
    "thinking": {"type": "thinking", "thinking": "", "signature": ""},
}


class _ToolCall:
    """One streamed Chat tool call while it becomes an Anthropic tool_use block."""

    __slots__ = ("block", "id", "name", "pending")

    def __init__(self, call_id: str | None, name: str | None) -> None:
        self.id = call_id
        self.name = name
        self.block: int | None = None  # Anthropic block index once opened
        self.pending: list[str] = []  # argument fragments seen before the name


class MessagesOnChatStream(StreamTranslator):
    """State machine: Chat Completions chunks in, Anthropic Messages frames out.

    `message_start` goes out with the first chunk that has choices; text, reasoning and
    each tool call become their own content blocks. A finish_reason is remembered until
    `[DONE]`, since the usage chunk follows it; `[DONE]` closes the open block and sends
    `message_delta` (stop reason and usage) and `message_stop`. A `data: {"error":…}`
    chunk, a chunk of the wrong shape, `fail()`, or `finish()` before `[DONE]` produce one
    `event: error` frame and nothing after it.
    """

    __slots__ = (
        "_block_prefix",
        "_finish_reason",
        "_model",
        "_next_block",
        "_open_kind",
        "_open_tool",
        "_refused",
        "_started",
        "_tools",
    )
    cut_message = "upstream stream ended before [DONE]"

    def __init__(self, model: str) -> None:
        super().__init__()
        self._model = model
        self._started = False
        self._finish_reason: str | None = None
        self._refused = False
        self._next_block = 0
        self._open_kind: str | None = None  # "text", "thinking" or "tool"
        self._open_tool: int | None = None  # Chat tool index of the open tool block
        self._block_prefix = b""  # '{"type":"content_block_delta","index":N'
        self._tools: dict[int, _ToolCall] = {}

    @classmethod
    def for_request(cls, model: str, body: Json, injected_usage: bool) -> MessagesOnChatStream:
        return cls(model)

    # --- public API -----------------------------------------------------------------
    def relay_block(self, block: bytes) -> bytes:
        """Every chunk of the block translated (Chat chunks carry no event names)."""
        frames: list[bytes] = []
        for data in event_data(block):
            frames += self._translate(data)
        return b"".join(frames)

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Translate one upstream chunk (or `[DONE]`); returns zero or more frames."""
        return self._translate(event.data)

    def error_frame(self, message: str, status: int) -> bytes:
        return anthropic.error_frame(message, status)

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
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage.from_chat(usage)
        choices = chunk.get("choices")
        if not choices:  # usage-only chunk, or Azure's prompt_filter_results preamble
            return out
        # Per-chunk type checks compare classes exactly: parsed JSON has no subclasses, and
        # `x.__class__ is T` costs next to nothing where isinstance() shows in profiles.
        if choices.__class__ is not list:
            return self.fail(malformed_message("chunk: choices must be an array"))
        if not self._started:
            self._message_start(chunk.get("id"), out)
        try:
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        except WrongShape as exc:
            return self.fail(malformed_message(f"chunk: {exc}"))
        return out

    # --- chunk handling ---------------------------------------------------------------

    def _choice(self, choice: Json, out: list[bytes]) -> None:
        delta = choice.get("delta")
        if delta.__class__ is not dict:
            delta = optional_dict(delta, "choices[0].delta")
        if "reasoning_content" in delta or "reasoning" in delta:
            reasoning = _reasoning_text(delta)
            if reasoning:
                self._open("thinking", out)
                out.append(self._delta_frame(_THINKING_DELTA, reasoning))
        text = delta.get("content")
        if text and isinstance(text, str):  # the hot path: one text fragment
            if self._open_kind != "text":
                self._open("text", out)
            out.append(self._delta_frame(_TEXT_DELTA, text))
        if "refusal" in delta:
            text = delta["refusal"]
            if text and isinstance(text, str):
                self._refused = True
                self._open("text", out)
                out.append(self._delta_frame(_TEXT_DELTA, text))
        if "tool_calls" in delta:
            calls = optional_list(delta["tool_calls"], "choices[0].delta.tool_calls")
            for position, call in enumerate(calls):
                if isinstance(call, dict) and not self.failed:
                    self._tool_fragment(call, position, out)
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            self._finish_reason = expect_str(finish_reason, "choices[0].finish_reason")

    def _tool_fragment(self, call: Json, position: int, out: list[bytes]) -> None:
        index, call_id, name, arguments = chat.tool_call_fragment(call, position)
        tool = self._tools.get(index)
        if tool is None:
            tool = self._tools[index] = _ToolCall(call_id, name)
        else:
            tool.id = tool.id or call_id
            tool.name = tool.name or name
        if tool.block is None:
            if arguments:
                tool.pending.append(arguments)
            if tool.name:
                self._open_tool_block(index, tool, out)
        elif arguments:
            if self._open_tool != index:
                out.extend(self.fail("upstream interleaved the arguments of parallel tool calls"))
                return
            out.append(self._delta_frame(_JSON_DELTA, arguments))

    # --- blocks -----------------------------------------------------------------------
    def _open(self, kind: str, out: list[bytes]) -> None:
        """Make sure a text or thinking block is the open one."""
        if self._open_kind == kind:
            return
        self._start_block(kind, _EMPTY_BLOCKS[kind], out)

    def _open_tool_block(self, index: int, tool: _ToolCall, out: list[bytes]) -> None:
        block: Json = {
            "type": "tool_use",
            "id": tool.id or f"toolu_gw_{index}",
            "name": tool.name,
            "input": {},
        }
        self._start_block("tool", block, out)
        tool.block = self._next_block - 1
        self._open_tool = index
        for fragment in tool.pending:
            out.append(self._delta_frame(_JSON_DELTA, fragment))
        tool.pending.clear()

    def _start_block(self, kind: str, block: Json, out: list[bytes]) -> None:
        self._close_block(out)
        index = self._next_block
        self._next_block += 1
        self._open_kind = kind
        self._block_prefix = b'{"type":"content_block_delta","index":%d' % index
        start = {"type": "content_block_start", "index": index, "content_block": block}
        out.append(encode_event(orjson.dumps(start), "content_block_start"))

    def _close_block(self, out: list[bytes]) -> None:
        if self._open_kind is None:
            return
        stop = {"type": "content_block_stop", "index": self._next_block - 1}
        out.append(encode_event(orjson.dumps(stop), "content_block_stop"))
        self._open_kind = None
        self._open_tool = None

    def _delta_frame(self, kind_prefix: bytes, value: str) -> bytes:
        # Hot path: the same bytes encode_event() would make, from precomputed fragments.
        return _DELTA_EVENT + self._block_prefix + kind_prefix + orjson.dumps(value) + b"}}\n\n"

    # --- message envelope -------------------------------------------------------------
    def _message_start(self, upstream_id: Any, out: list[bytes]) -> None:
        self._started = True
        message: Json = {
            "id": _message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self.usage.to_anthropic(),
        }
        start = {"type": "message_start", "message": message}
        out.append(encode_event(orjson.dumps(start), "message_start"))

    def _complete(self) -> list[bytes]:
        out: list[bytes] = []
        if not self._started:
            self._message_start(None, out)
        self._close_block(out)
        has_tools = any(t.block is not None for t in self._tools.values())
        finish = "content_filter" if self._refused else self._finish_reason
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(finish, has_tools), "stop_sequence": None},
            "usage": self.usage.to_anthropic(),
        }
        out.append(encode_event(orjson.dumps(delta), "message_delta"))
        out.append(encode_event(b'{"type":"message_stop"}', "message_stop"))
        self.done = True
        return out

    def _upstream_error(self, error: Any) -> list[bytes]:
        # The stream ends here whatever the chunk holds: fields of the wrong type get defaults.
        self.failed = True
        if isinstance(error, str):
            error = {"message": error}
        elif not isinstance(error, dict):
            error = {}
        message = error.get("message")
        if not isinstance(message, str) or not message:
            message = "upstream error"
        return [encode_event(anthropic.error_body(message, _in_stream_error_type(error)), "error")]
