"""A Chat Completions client served by an Anthropic Messages provider (sans-IO).

`translate_request` turns the client's Chat body into a Messages body;
`translate_response`, `ChatOnMessagesStream` and `translate_error` turn the provider's
answer, stream and error bodies back into Chat. The rules are those of wire-formats.md
6.1, 6.2, 6.4, 6.5 and 7.3; the policy choices that lose information are listed in each
function's docstring.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..errors import BadRequest, openai_error_type
from ..sse import DONE_FRAME, SSEEvent, encode_event, translate_block
from ..usage import Usage, asks_for_stream_usage
from . import chat
from .anthropic import read_error, tool_use
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
from .stream import StreamTranslator
from .turns import TurnBuilder

__all__ = ["ChatOnMessagesStream", "translate_error", "translate_request", "translate_response"]

# reasoning_effort → thinking budget (AGW table); budgets must be >= 1024 and < max_tokens.
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}
_MIN_THINKING_BUDGET = 1024
_IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_FORCED_TOOL_CHOICES = frozenset({"any", "tool"})

# Anthropic stop_reason → Chat finish_reason (wire-formats 6.2).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}


def _unsupported(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="unsupported_parameter")


# --- request: Chat → Messages ----------------------------------------------------------


@client_body
def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """Translate a Chat Completions request body into an Anthropic Messages body.

    Policy choices (lossy or opinionated):
    - `system`/`developer` messages anywhere are hoisted into `system`, joined with "\\n".
    - `max_tokens` = `max_completion_tokens` ?? `max_tokens` ?? `default_max_tokens`.
    - `temperature` is clamped to 1.0 (OpenAI allows 0-2, Anthropic 0-1).
    - `reasoning_effort` becomes `thinking.budget_tokens` (THINKING_BUDGETS, capped at
      max_tokens-1); it is skipped when max_tokens <= 1024, when tool_choice forces a
      tool, and when the request answers tool calls (Anthropic would demand the signed
      thinking block of that turn, which Chat history cannot carry); `temperature`/`top_p`
      are omitted while thinking is on. Anthropic rejects all of those combinations.
    - `json_object` becomes a permissive object schema; `stream_options`, penalties,
      `seed`, `metadata`, `store`, `service_tier` and other OpenAI-only knobs are dropped.
    - `n`>1, `logprobs`, `logit_bias`, legacy `functions`, custom tools, audio input and
      file ids raise BadRequest: silently ignoring them would change the answer.
    A value of the wrong JSON type raises BadRequest naming the field.
    """
    _reject_unsupported(body)
    max_tokens = _max_tokens(body, default_max_tokens)
    system, messages = _convert_messages(body.get("messages"))
    out: Json = {"model": body.get("model"), "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = system
    tools, tool_choice = _tools_and_choice(body)
    if tools:
        out["tools"] = tools
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    thinking = _thinking(body.get("reasoning_effort"), max_tokens, tool_choice, messages)
    if thinking is not None:
        out["thinking"] = thinking
    else:
        _copy_sampling(body, out)
    stop = _stop_sequences(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        out["output_config"] = {"format": output_format}
    if body.get("stream"):
        out["stream"] = True
    return out


def _reject_unsupported(body: Json) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise _unsupported("n > 1 is not supported by Anthropic models; send n=1", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise _unsupported("logprobs are not available from Anthropic models", "logprobs")
    if body.get("logit_bias"):
        raise _unsupported("logit_bias is not supported by Anthropic models", "logit_bias")
    if body.get("functions") or body.get("function_call"):
        raise _unsupported(
            "legacy functions/function_call are not supported; use tools/tool_choice",
            "functions",
        )


def _max_tokens(body: Json, default: int) -> int:
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("max_completion_tokens must be a positive integer", param="max_tokens")
    return value


def _copy_sampling(body: Json, out: Json) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
            raise BadRequest("temperature must be a number", param="temperature")
        out["temperature"] = min(temperature, 1.0)
    top_p = body.get("top_p")
    if top_p is not None:
        out["top_p"] = top_p


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def _output_format(response_format: Any) -> Json | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "json_schema", "schema": {"type": "object", "additionalProperties": True}}
    if kind == "json_schema":
        json_schema = optional_dict(response_format.get("json_schema"), "response_format.json_schema")
        schema = json_schema.get("schema")
        if not isinstance(schema, dict):
            schema = {"type": "object", "additionalProperties": True}
        return {"type": "json_schema", "schema": schema}
    return None


def _thinking(effort: Any, max_tokens: int, tool_choice: Json | None, messages: list[Json]) -> Json | None:
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise BadRequest(f"unsupported reasoning_effort {describe(effort)}", param="reasoning_effort")
    if max_tokens <= _MIN_THINKING_BUDGET:
        return None
    if tool_choice is not None and tool_choice["type"] in _FORCED_TOOL_CHOICES:
        return None
    if _continues_tool_use(messages):
        return None
    return {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}


def _continues_tool_use(messages: list[Json]) -> bool:
    """True when the request answers tool calls. With thinking on, Anthropic then requires the
    assistant turn to start with its signed thinking block, which Chat history cannot carry."""
    if len(messages) < 2 or messages[-1]["role"] != "user":
        return False
    return any(block["type"] == "tool_use" for block in messages[-2]["content"])


# --- messages --------------------------------------------------------------------------


def _convert_messages(messages: Any) -> tuple[str, list[Json]]:
    system: list[str] = []
    turns = TurnBuilder("content")
    for i, msg in enumerate(expect_list(messages, "messages")):
        try:
            if not isinstance(msg, dict):
                raise WrongShape("", "an object")
            role = msg.get("role")
            if role == "system" or role == "developer":
                text = chat.joined_text(msg.get("content"), "content")
                if text.strip():
                    system.append(text)
            elif role == "user":
                turns.add("user", _user_blocks(msg.get("content")))
            elif role == "assistant":
                turns.add("assistant", _assistant_blocks(msg))
            elif role == "tool":
                turns.add("user", [], _tool_result(msg, i))
            else:
                raise _unsupported(f"messages[{i}].role {describe(role)} is not supported", f"messages[{i}].role")
        except WrongShape as exc:
            raise exc.within(f"messages[{i}]") from None
    return "\n".join(system), turns.finish()


# Below, WrongShape paths are relative to the value read; the loops over arrays name the
# element (`exc.within`), so a path is formatted only when something is wrong.


def _text_block(text: Any) -> Json | None:
    if isinstance(text, str) and text.strip():
        return {"type": "text", "text": text}
    return None


def _user_blocks(content: Any) -> list[Json]:
    if isinstance(content, str) or content is None:
        block = _text_block(content)
        return [block] if block else []
    blocks: list[Json] = []
    if not isinstance(content, list):
        raise WrongShape("content", "a string or an array")
    for j, part in enumerate(content):
        try:
            if not isinstance(part, dict):
                raise WrongShape("", "an object")
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    if text.strip():
                        blocks.append({"type": "text", "text": text})
                elif text is not None:
                    raise WrongShape("text", "a string")
            elif kind == "image_url":
                image = part.get("image_url")
                blocks.append(_image_block(image.get("url") if isinstance(image, dict) else image))
            elif kind == "file":
                blocks.append(_document_block(optional_dict(part.get("file"), "file")))
            else:
                raise _unsupported(f"content part {describe(kind)} is not supported by Anthropic", "messages")
        except WrongShape as exc:
            raise exc.within(f"content[{j}]") from None
    return blocks


def _parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<mime>[;…];base64,<data>` → (mime, data); None when not base64."""
    header, sep, data = url[5:].partition(",")
    params = header.split(";")
    if not sep or "base64" not in params[1:]:
        return None
    return params[0].strip().lower(), data


def _image_block(url: Any) -> Json:
    if not isinstance(url, str):
        raise WrongShape("image_url.url", "a string")
    if url.startswith("data:"):
        parsed = _parse_data_url(url)
        if parsed is None:
            raise BadRequest("image data URLs must be base64-encoded", param="messages")
        media_type, data = parsed
        if media_type not in _IMAGE_MEDIA_TYPES:
            raise BadRequest(
                f"image type {describe(media_type)} is not supported; use jpeg, png, gif or webp",
                param="messages",
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest("image_url must be an http(s) URL or a base64 data URL", param="messages")


def _document_block(file: Json) -> Json:
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise _unsupported("file parts need inline file_data (file_id is not supported)", "messages")
    media_type = "application/pdf"
    if data.startswith("data:"):
        parsed = _parse_data_url(data)
        if parsed is None:
            raise BadRequest("file_data data URLs must be base64-encoded", param="messages")
        media_type, data = parsed
    if media_type != "application/pdf":
        raise _unsupported(f"file type {describe(media_type)} is not supported; send a PDF", "messages")
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "document", "source": source}


def _assistant_blocks(msg: Json) -> list[Json]:
    blocks: list[Json] = []
    content = msg.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                raise WrongShape(f"content[{j}]", "an object")
            block = _text_block(part.get("text") or part.get("refusal"))
            if block:
                blocks.append(block)
    elif content is None or isinstance(content, str):
        block = _text_block(content)
        if block:
            blocks.append(block)
    else:
        raise WrongShape("content", "a string or an array")
    if not blocks:
        block = _text_block(msg.get("refusal"))
        if block:
            blocks.append(block)
    calls = msg.get("tool_calls")
    if not calls:
        return blocks
    if not isinstance(calls, list):
        raise WrongShape("tool_calls", "an array")
    for j, call in enumerate(calls):
        try:
            if not isinstance(call, dict):
                raise WrongShape("", "an object")
            if call.get("type", "function") != "function":
                raise _unsupported("only function tool calls can be sent to Anthropic", "messages")
            blocks.append(tool_use(call))
        except WrongShape as exc:
            raise exc.within(f"tool_calls[{j}]") from None
    return blocks


def _tool_result(msg: Json, i: int) -> Json:
    tool_call_id = msg.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise BadRequest(f"messages[{i}] (role tool) needs a tool_call_id", param="messages")
    result: Json = {"type": "tool_result", "tool_use_id": tool_call_id}
    text = chat.joined_text(msg.get("content"), "content")
    if text:
        result["content"] = text
    return result


# --- tools -----------------------------------------------------------------------------


def _function_of(tool: Any) -> Json:
    """The `function` object of a Chat tool (or tool choice); {} when absent."""
    return optional_dict(expect_dict(tool, "").get("function"), "function")


def _function_names(tools: list[Any], path: str) -> list[str | None]:
    """The function name of each Chat tool; None where it has none (or not a string)."""
    names: list[str | None] = []
    for i, tool in enumerate(tools):
        try:
            name = _function_of(tool).get("name")
        except WrongShape as exc:
            raise exc.within(f"{path}[{i}]") from None
        names.append(name if isinstance(name, str) else None)
    return names


def _tools_and_choice(body: Json) -> tuple[list[Json], Json | None]:
    tools = optional_list(body.get("tools"), "tools")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = optional_dict(choice.get("allowed_tools"), "tool_choice.allowed_tools")
        allowed_tools = optional_list(allowed.get("tools"), "tool_choice.allowed_tools.tools")
        names = set(_function_names(allowed_tools, "tool_choice.allowed_tools.tools"))
        names.discard(None)
        tools = [t for t, name in zip(tools, _function_names(tools, "tools"), strict=True) if name in names]
        choice = allowed.get("mode", "auto")
    if not tools:
        return [], None
    converted = []
    for i, tool in enumerate(tools):
        try:
            converted.append(_tool(tool))
        except WrongShape as exc:
            raise exc.within(f"tools[{i}]") from None
    tool_choice = _tool_choice(choice)
    if body.get("parallel_tool_calls") is False:
        tool_choice = tool_choice or {"type": "auto"}
        if tool_choice["type"] != "none":
            tool_choice["disable_parallel_tool_use"] = True
    return converted, tool_choice


def _tool(tool: Any) -> Json:
    function = _function_of(tool)
    if tool.get("type", "function") != "function":
        raise _unsupported("only function tools can be sent to Anthropic", "tools")
    out: Json = {
        "name": expect_str(function.get("name"), "function.name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("strict") is True:
        out["strict"] = True
    return out


def _tool_choice(choice: Any) -> Json | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        try:
            return {"type": "tool", "name": expect_str(_function_of(choice).get("name"), "function.name")}
        except WrongShape as exc:
            raise exc.within("tool_choice") from None
    what = describe(choice.get("type") if isinstance(choice, dict) else choice)
    raise _unsupported(f"tool_choice {what} is not supported by Anthropic", "tool_choice")


# --- response: Messages → Chat ---------------------------------------------------------


@provider_answer
def translate_response(resp: Json, *, created: int | None = None) -> tuple[Json, Usage]:
    """Translate an Anthropic Messages response into a `chat.completion` object and its usage.

    Thinking text goes to `message.reasoning_content` (a non-standard field used by
    DeepSeek and vLLM; OpenAI SDKs keep unknown fields); thinking signatures and
    redacted thinking are dropped. `created` defaults to now. A field of the wrong JSON
    type raises MalformedUpstream.
    """
    text: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[Json] = []
    for i, block in enumerate(optional_list(resp.get("content"), "content")):
        try:
            kind = expect_dict(block, "").get("type")
            if kind == "text":
                text.append(optional_str(block.get("text"), "text") or "")
            elif kind == "tool_use":
                tool_calls.append(chat.tool_call(block))
            elif kind == "thinking":
                reasoning.append(optional_str(block.get("thinking"), "thinking") or "")
        except WrongShape as exc:
            raise exc.within(f"content[{i}]") from None
    content = "".join(text)
    message: Json = {
        "role": "assistant",
        "content": content if content or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    stop_reason = optional_str(resp.get("stop_reason"), "stop_reason")
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": FINISH_REASONS.get(stop_reason or "", "stop"),
    }
    usage = Usage.from_anthropic(resp.get("usage"))
    out = {
        "id": expect_str(resp.get("id"), "id"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": expect_str(resp.get("model"), "model"),
        "choices": [choice],
        "usage": usage.to_chat(),
    }
    return out, usage


# --- errors ----------------------------------------------------------------------------

_CODE_TYPES = frozenset({"overloaded_error", "rate_limit_error"})


def translate_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Anthropic error response → (status, OpenAI error body), per wire-formats 7.3.

    The Anthropic `error.type` is kept as the OpenAI `type` (and as `code` for
    overload/rate limits). 529 becomes 503, which OpenAI clients know and retry;
    every other status is kept. An unparsable body becomes the message text.
    """
    _, error_type, message = read_error(body)
    if not message:
        message = f"upstream returned HTTP {status}"
    if status == 529:
        status, error_type = 503, error_type or "overloaded_error"
    error_type = error_type or openai_error_type(status)
    code = error_type if error_type in _CODE_TYPES else None
    return status, chat.error_body(message, error_type, code)


# --- stream: Anthropic events → Chat chunks --------------------------------------------

_ROLE_DELTA = b'{"role":"assistant","content":""}'


class ChatOnMessagesStream(StreamTranslator):
    """State machine: Anthropic stream events in, Chat Completions chunk frames out.

    `feed()` returns complete `data: …\\n\\n` frames. Exactly one terminator is ever
    produced: `data: [DONE]` from `feed()` when `message_stop` arrives, or one
    `data: {"error":…}` frame (upstream `error` event, an event of the wrong shape,
    `fail()`, or `finish()` at EOF before `message_stop`). After that every call
    returns [].
    """

    __slots__ = (
        "_created",
        "_end",
        "_head",
        "_include_usage",
        "_model",
        "_next_tool",
        "_raw_usage",
        "_started",
        "_tail",
        "_tools",
        "_usage_head",
    )
    cut_message = "upstream stream ended before the message was complete"

    def __init__(self, model: str, *, include_usage: bool, created: int | None = None) -> None:
        super().__init__()
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._raw_usage: Json = {}
        # Anthropic block index → [chat tool index, whether arguments were emitted]
        self._tools: dict[int, list[Any]] = {}
        self._next_tool = 0
        self._started = False
        self._set_id("chatcmpl-gateway")

    @classmethod
    def for_request(cls, model: str, body: Json, injected_usage: bool) -> ChatOnMessagesStream:
        return cls(model, include_usage=asks_for_stream_usage(body))

    def _set_id(self, chunk_id: str) -> None:
        # Chunks are built from precomputed fragments: the same bytes encode_event() makes.
        header = orjson.dumps(
            {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
            }
        )[:-1]
        self._head = b"data: " + header + b',"choices":[{"index":0,"delta":'
        self._end = b',"usage":null}\n\n' if self._include_usage else b"}\n\n"
        self._tail = b',"logprobs":null,"finish_reason":null}]' + self._end
        self._usage_head = b"data: " + header + b',"choices":[],"usage":'

    # --- public API -----------------------------------------------------------------
    def relay_block(self, block: bytes) -> bytes:
        """Every event of the block translated."""
        return translate_block(self.feed, block)

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Translate one upstream event; returns zero or more frames."""
        if self.failed or self.done:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self.fail("upstream sent an event that is not JSON")
        if not isinstance(data, dict):
            return self.fail("upstream sent an event that is not a JSON object")
        kind = data.get("type") or event.event
        # Per-event type checks compare classes exactly: parsed JSON has no subclasses, and
        # `x.__class__ is T` costs next to nothing where isinstance() shows in profiles.
        if kind.__class__ is not str:
            return self.fail(malformed_message("an event's type must be a string"))
        handler = _HANDLERS.get(kind)
        if handler is None:
            return []
        try:
            return handler(self, data)
        except WrongShape as exc:
            return self.fail(malformed_message(f"{kind} event: {exc}"))

    def error_frame(self, message: str, status: int) -> bytes:
        return chat.error_frame(message, status)

    # --- frames ---------------------------------------------------------------------
    def _emit(self, frame: bytes) -> list[bytes]:
        """`frame`, preceded by the role chunk if nothing was sent yet."""
        if self._started:
            return [frame]
        self._started = True
        return [self._head + _ROLE_DELTA + self._tail, frame]

    def _delta(self, delta: bytes) -> list[bytes]:
        return self._emit(self._head + delta + self._tail)

    def _tool_delta(self, call: Json) -> list[bytes]:
        return self._delta(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")

    # --- handlers -------------------------------------------------------------------
    def _on_message_start(self, data: Json) -> list[bytes]:
        message = optional_dict(data.get("message"), "message")
        if isinstance(message.get("id"), str):
            self._set_id(message["id"])
        self._update_usage(message.get("usage"))
        if self._started:
            return []
        self._started = True
        return [self._head + _ROLE_DELTA + self._tail]

    def _on_block_start(self, data: Json) -> list[bytes]:
        block = optional_dict(data.get("content_block"), "content_block")
        if block.get("type") != "tool_use":
            return []
        tool_index = self._next_tool
        self._next_tool += 1
        given = optional_dict(block.get("input"), "content_block.input")
        arguments = dumps(given, "content_block.input").decode() if given else ""
        self._tools[_block_index(data)] = [tool_index, bool(arguments)]
        return self._tool_delta(
            {
                "index": tool_index,
                "id": expect_str(block.get("id"), "content_block.id"),
                "type": "function",
                "function": {"name": expect_str(block.get("name"), "content_block.name"), "arguments": arguments},
            }
        )

    def _on_block_delta(self, data: Json) -> list[bytes]:
        delta = data.get("delta")
        if delta.__class__ is not dict:
            delta = optional_dict(delta, "delta")
        kind = delta.get("type")
        if kind == "text_delta":  # the hot path
            text = delta.get("text")
            if not text:
                return []
            if text.__class__ is not str:
                raise WrongShape("delta.text", "a string")
            return self._delta(b'{"content":' + orjson.dumps(text) + b"}")
        if kind == "input_json_delta":
            tool = self._tools.get(_block_index(data))
            fragment = optional_str(delta.get("partial_json"), "delta.partial_json")
            if tool is None or not fragment:
                return []
            tool[1] = True
            return self._tool_delta({"index": tool[0], "function": {"arguments": fragment}})
        if kind == "thinking_delta":
            thinking = optional_str(delta.get("thinking"), "delta.thinking")
            if thinking:
                return self._delta(b'{"reasoning_content":' + orjson.dumps(thinking) + b"}")
        return []  # signature_delta, citations_delta and future delta types

    def _on_block_stop(self, data: Json) -> list[bytes]:
        tool = self._tools.pop(_block_index(data), None)
        if tool is None or tool[1]:
            return []
        # A tool called with no streamed input still needs valid JSON arguments (AGW).
        return self._tool_delta({"index": tool[0], "function": {"arguments": "{}"}})

    def _on_message_delta(self, data: Json) -> list[bytes]:
        self._update_usage(data.get("usage"))
        stop_reason = optional_str(optional_dict(data.get("delta"), "delta").get("stop_reason"), "delta.stop_reason")
        finish = FINISH_REASONS.get(stop_reason or "", "stop").encode()
        frames = self._emit(self._head + b'{},"logprobs":null,"finish_reason":"' + finish + b'"}]' + self._end)
        if self._include_usage:
            frames.append(self._usage_head + orjson.dumps(self.usage.to_chat()) + b"}\n\n")
        return frames

    def _on_message_stop(self, data: Json) -> list[bytes]:
        self.done = True
        return [DONE_FRAME]

    def _on_error(self, data: Json) -> list[bytes]:
        # The stream ends here whatever the event holds: fields of the wrong type get defaults.
        error = data.get("error")
        error = error if isinstance(error, dict) else {}
        error_type = error.get("type")
        error_type = error_type if isinstance(error_type, str) and error_type else "api_error"
        message = error.get("message")
        message = message if isinstance(message, str) and message else "upstream error"
        self.failed = True
        code = error_type if error_type in _CODE_TYPES else None
        return [encode_event(chat.error_body(message, error_type, code))]

    def _update_usage(self, usage: Any) -> None:
        # Anthropic usage counts are cumulative: replace the fields that are present.
        if isinstance(usage, dict):
            self._raw_usage.update((k, v) for k, v in usage.items() if v is not None)
            self.usage = Usage.from_anthropic(self._raw_usage)


def _block_index(data: Json) -> int:
    index = data.get("index", -1)
    if not isinstance(index, int):
        raise WrongShape("index", "an integer")
    return index


_HANDLERS = {
    "message_start": ChatOnMessagesStream._on_message_start,
    "content_block_start": ChatOnMessagesStream._on_block_start,
    "content_block_delta": ChatOnMessagesStream._on_block_delta,
    "content_block_stop": ChatOnMessagesStream._on_block_stop,
    "message_delta": ChatOnMessagesStream._on_message_delta,
    "message_stop": ChatOnMessagesStream._on_message_stop,
    "error": ChatOnMessagesStream._on_error,
}
