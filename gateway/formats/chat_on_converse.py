"""A Chat Completions client served by Amazon Bedrock's Converse API (sans-IO).

`translate_request` turns a Chat body into a Converse body (the model and streaming are in
Bedrock's URL); `translate_response`, `ChatOnConverseStream` and `translate_error` turn
Converse answers, ConverseStream events and Bedrock errors back into Chat. Rules from
wire-formats.md 6.2, 6.3, 6.8 and 7.1.

Tool names: Bedrock takes `[a-zA-Z0-9_-]{1,64}`; other names are sent sanitised
(`bedrock_tool_name`) and mapped back through the client's own tool names. Converse
refuses `toolUse`/`toolResult` blocks without a `toolConfig`, so one is sent whenever the
history holds tool blocks (declaring the history's tools with an open schema when the
client sent no tools, or `tool_choice` was "none").

The stream translator takes decoded eventstream messages as SSE-like blocks
(`event: <:event-type>` / `data: <payload>`; an exception frame as `event: error` with
`{"exception": <:exception-type>, "message"}`), which the bedrock provider makes of the
binary frames.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from typing import Any

import orjson

from ..errors import BadRequest, openai_error_type
from ..sse import DONE_FRAME, encode_event
from ..usage import Usage, asks_for_stream_usage
from . import chat
from .json_values import Json, WrongShape
from .stream import StreamTranslator

__all__ = ["ChatOnConverseStream", "bedrock_tool_name", "error_status", "translate_error", "translate_request",
           "translate_response"]

_NAME_OK = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NAME_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                 "model_context_window_exceeded": "length", "tool_use": "tool_calls",
                 "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}
# Bedrock exception (x-amzn-ErrorType / :exception-type) -> HTTP status for the client.
_EXCEPTION_STATUS = {"ThrottlingException": 429, "ValidationException": 400, "ServiceQuotaExceededException": 400,
                     "ModelNotReadyException": 503, "ServiceUnavailableException": 503,
                     "AccessDeniedException": 403, "UnrecognizedClientException": 403,
                     "InvalidSignatureException": 403, "ResourceNotFoundException": 404,
                     "ModelTimeoutException": 408, "InternalServerException": 500, "ModelErrorException": 424,
                     "ModelStreamErrorException": 424}


def bedrock_tool_name(name: str) -> str:
    """`name` within Bedrock's charset and length: as it is when it fits, else the invalid
    characters as "_", cut to 55 characters plus "_" and 8 hex digits of its hash (so two
    names that sanitise alike stay apart)."""
    if _NAME_OK.match(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{_NAME_BAD_CHARS.sub('_', name)[:55]}_{digest}"


def _unsupported(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="unsupported_parameter")


# --- request -------------------------------------------------------------------------------


def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """A Chat body → a Converse body. `n` > 1 and http image URLs are refused (Converse has
    no choices and takes image bytes only)."""
    if body.get("n") not in (None, 1):
        raise _unsupported("n > 1 is not available on Bedrock", "n")
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise _unsupported("response_format (JSON mode) is not available on Bedrock yet", "response_format")
    if body.get("logprobs") is True:
        raise _unsupported("logprobs are not available on Bedrock", "logprobs")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WrongShape("messages", "a non-empty array")
    system, turns, history_tools = _convert_messages(messages)
    out: Json = {"messages": turns}
    if system:
        out["system"] = [{"text": t} for t in system]
    config: Json = {"maxTokens": _max_tokens(body, default_max_tokens)}
    for src, dst in (("temperature", "temperature"), ("top_p", "topP")):
        if isinstance(body.get(src), (int, float)) and not isinstance(body.get(src), bool):
            config[dst] = body[src]
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [s for s in stop if isinstance(s, str)]
    out["inferenceConfig"] = config
    tool_config = _tool_config(body, history_tools)
    if tool_config is not None:
        out["toolConfig"] = tool_config
    return out


def _max_tokens(body: Json, default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def _convert_messages(messages: list[Any]) -> tuple[list[str], list[Json], set[str]]:
    """(system texts, Converse messages, Bedrock names of the tools the history uses). Tool
    results of one turn go in one user message; consecutive same-role turns are merged."""
    system: list[str] = []
    turns: list[Json] = []
    tools: set[str] = set()
    for i, msg in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise WrongShape(path, "an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            text = chat.joined_text(msg.get("content"), f"{path}.content")
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(msg.get("content"), f"{path}.content")
            _append(turns, "user", blocks)
        elif role == "assistant":
            blocks = _assistant_blocks(msg, path, tools)
            _append(turns, "assistant", blocks)
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise WrongShape(f"{path}.tool_call_id", "a non-empty string")
            text = chat.joined_text(msg.get("content"), f"{path}.content")
            result = {"toolResult": {"toolUseId": call_id, "content": [{"text": text}], "status": "success"}}
            _append(turns, "user", [result])
        else:
            raise WrongShape(f"{path}.role", 'one of "system", "developer", "user", "assistant", "tool"')
    if not turns:
        raise BadRequest("messages must hold a user message", param="messages")
    return system, turns, tools


def _append(turns: list[Json], role: str, blocks: list[Json]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        previous = turns[-1]["content"]
        if role == "user" and "toolResult" in blocks[0]:
            # tool results first in their user turn, as Bedrock expects them
            results = [b for b in previous if "toolResult" in b]
            others = [b for b in previous if "toolResult" not in b]
            turns[-1]["content"] = results + blocks + others
        else:
            previous.extend(blocks)
        return
    turns.append({"role": role, "content": blocks})


def _user_blocks(content: Any, path: str) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise WrongShape(path, "a string or an array")
    blocks: list[Json] = []
    for i, part in enumerate(content):
        ppath = f"{path}[{i}]"
        if not isinstance(part, dict):
            raise WrongShape(ppath, "an object")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise WrongShape(f"{ppath}.text", "a string")
            if text.strip():
                blocks.append({"text": text})
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            blocks.append(_image_block(url, f"{ppath}.image_url.url"))
        else:
            raise _unsupported(f"content parts of type {str(kind)[:40]!r} are not available on Bedrock", ppath)
    return blocks


def _image_block(url: Any, path: str) -> Json:
    if not isinstance(url, str) or not url.startswith("data:"):
        raise _unsupported("Bedrock takes images as data: URLs only (base64 bytes), not links", path)
    head, sep, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    fmt = _IMAGE_FORMATS.get(media_type.lower())
    if not sep or encoding != "base64" or fmt is None:
        raise _unsupported("Bedrock takes base64 png, jpeg, gif or webp images", path)
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise WrongShape(path, "a data: URL with valid base64") from None
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _assistant_blocks(msg: Json, path: str, tools: set[str]) -> list[Json]:
    text = chat.joined_text(msg.get("content"), f"{path}.content")
    blocks: list[Json] = [{"text": text}] if text.strip() else []
    calls = msg.get("tool_calls")
    if calls is None:
        return blocks
    if not isinstance(calls, list):
        raise WrongShape(f"{path}.tool_calls", "an array")
    for j, call in enumerate(calls):
        cpath = f"{path}.tool_calls[{j}]"
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise WrongShape(cpath, "a function tool call")
        call_id, name = call.get("id"), call["function"].get("name")
        if not isinstance(call_id, str) or not call_id:
            raise WrongShape(f"{cpath}.id", "a non-empty string")
        if not isinstance(name, str) or not name:
            raise WrongShape(f"{cpath}.function.name", "a non-empty string")
        bedrock_name = bedrock_tool_name(name)
        tools.add(bedrock_name)
        tool_input = chat.checked_tool_input(call["function"].get("arguments"), f"{cpath}.function.arguments")
        blocks.append({"toolUse": {"toolUseId": call_id, "name": bedrock_name, "input": tool_input}})
    return blocks


def _tool_config(body: Json, history_tools: set[str]) -> Json | None:
    choice = body.get("tool_choice")
    declared: list[Json] = []
    tools = body.get("tools")
    if isinstance(tools, list) and choice != "none":
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise WrongShape(f"tools[{i}]", "a function tool")
            spec: Json = {"name": bedrock_tool_name(function["name"]),
                          "inputSchema": {"json": function.get("parameters") or {"type": "object"}}}
            if isinstance(function.get("description"), str) and function["description"]:
                spec["description"] = function["description"]
            declared.append({"toolSpec": spec})
    names = {t["toolSpec"]["name"] for t in declared}
    # Converse needs toolConfig whenever the history holds tool blocks.
    declared += [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}}
                 for n in sorted(history_tools - names)]
    if not declared:
        return None
    config: Json = {"tools": declared}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if not isinstance(name, str):
            raise WrongShape("tool_choice.function.name", "a string")
        config["toolChoice"] = {"tool": {"name": bedrock_tool_name(name)}}
    elif choice == "auto" and declared:
        config["toolChoice"] = {"auto": {}}
    return config


# --- response --------------------------------------------------------------------------------


def _client_names(request: Json) -> dict[str, str]:
    """Bedrock tool name -> the client's name, for every function the client may see called.
    The request is the client's own: Chat (`tools[].function.name`, `tool_calls`), or, through
    the Chat hub, Messages (`tools[].name`, `tool_use` blocks) or Responses (`tools[].name`,
    `function_call` items)."""
    names: list[Any] = []
    tools = request.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            function = tool.get("function")
            names.append(function.get("name") if isinstance(function, dict) else tool.get("name"))
    history = request.get("messages")
    if not isinstance(history, list):
        history = request.get("input")
    for item in history if isinstance(history, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            names.append(item.get("name"))
        calls = item.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            names.append(function.get("name") if isinstance(function, dict) else None)
        content = item.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                names.append(block.get("name"))
    return {bedrock_tool_name(n): n for n in reversed(names) if isinstance(n, str) and n}


def usage_of(raw: Any) -> Usage:
    """Converse `usage` → Usage: input counts cache reads and writes once each (Chat's
    prompt_tokens includes them)."""
    u = Usage.from_chat({})
    if not isinstance(raw, dict):
        return u
    read, write = _count(raw.get("cacheReadInputTokens")), _count(raw.get("cacheWriteInputTokens"))
    u.input_tokens = _count(raw.get("inputTokens")) + read + write
    u.output_tokens = _count(raw.get("outputTokens"))
    u.cached_tokens, u.cache_write_tokens = read, write
    return u


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53 else 0


def _chat_usage(u: Usage) -> Json:
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": u.cache_write_tokens}}


def translate_response(resp: Json, request: Json, *, created: int | None = None) -> tuple[Json, Usage]:
    """A Converse answer → a Chat completion (text joined; toolUse blocks as tool_calls with
    the client's names; reasoning is dropped)."""
    output = resp.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise WrongShape("output.message.content", "an array")
    names = _client_names(request)
    texts: list[str] = []
    calls: list[Json] = []
    for i, block in enumerate(message["content"]):
        if not isinstance(block, dict):
            raise WrongShape(f"output.message.content[{i}]", "an object")
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            name = use.get("name")
            if not isinstance(name, str) or not isinstance(use.get("toolUseId"), str):
                raise WrongShape(f"output.message.content[{i}].toolUse", "a tool use with toolUseId and name")
            calls.append({"id": use["toolUseId"], "type": "function", "function": {
                "name": names.get(name, name),
                "arguments": chat.input_to_arguments(use.get("input"), f"output.message.content[{i}].toolUse.input")}})
    usage = usage_of(resp.get("usage"))
    reply: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    finish = _STOP_REASONS.get(str(resp.get("stopReason")), "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    answer = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
              "created": created if created is not None else int(time.time()), "model": request.get("model", ""),
              "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}],
              "usage": _chat_usage(usage)}
    return answer, usage


# --- errors ----------------------------------------------------------------------------------


def error_status(status: int, error_type: str | None) -> int:
    """The status a client gets for a Bedrock exception (`x-amzn-ErrorType`, which may carry
    ":<uri>" after the name), else the upstream status."""
    name = (error_type or "").partition(":")[0].strip()
    name = name[:1].upper() + name[1:]  # the stream's :exception-type starts lower-case
    return _EXCEPTION_STATUS.get(name, status)


def translate_error(status: int, body: bytes, error_type: str | None = None) -> tuple[int, bytes]:
    """A Bedrock error (`{"message"}` or `{"Message"}`, the type in a header) → an OpenAI error."""
    data = _loads(body)
    if error_type is None and isinstance(data, dict) and isinstance(data.get("__type"), str):
        error_type = data["__type"]  # the provider copies x-amzn-ErrorType here
    message = None
    if isinstance(data, dict):
        message = data.get("message") if isinstance(data.get("message"), str) else data.get("Message")
    if not isinstance(message, str) or not message:
        message = body[:2000].decode("utf-8", "replace").strip() or f"Bedrock answered {status}"
    out = error_status(status, error_type)
    code = (error_type or "").partition(":")[0].strip() or None
    return out, chat.error_body(message, openai_error_type(out), code)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


# --- stream ----------------------------------------------------------------------------------


def _block_index(payload: Json) -> int:
    index = payload.get("contentBlockIndex")
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


class ChatOnConverseStream(StreamTranslator):
    """ConverseStream events → Chat chunks. The finish chunk waits for `metadata` (usage
    comes after `messageStop`); `[DONE]` follows it."""

    __slots__ = ("_base", "_calls", "_finish", "_include_usage", "_names", "_started")

    def __init__(self, model: str, request: Json, injected_usage: bool = False) -> None:
        super().__init__()
        self._base: Json = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
                            "created": int(time.time()), "model": model}
        self._names = _client_names(request)
        self._include_usage = asks_for_stream_usage(request)
        self._calls: dict[int, int] = {}  # contentBlockIndex -> tool_calls index
        self._finish: str | None = None
        self._started = False

    @classmethod
    def for_request(cls, model: str, body: dict[str, Any], injected_usage: bool) -> ChatOnConverseStream:
        return cls(model, body, injected_usage)

    def _chunk(self, delta: Json, finish: str | None = None) -> bytes:
        return encode_event(orjson.dumps({**self._base, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}))

    def _open(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def relay_block(self, block: bytes) -> bytes:
        """SSE-like blocks: `event: <kind>` and `data: <JSON payload>` lines per event."""
        out = bytearray()
        for raw in block.replace(b"\r\n", b"\n").split(b"\n\n"):
            kind, data = "", b""
            for line in raw.split(b"\n"):
                if line.startswith(b"event:"):
                    kind = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data += line[5:].strip()
            if kind:
                payload = _loads(data) if data else {}
                out += self.relay_event(kind, payload if isinstance(payload, dict) else {})
        return bytes(out)

    def relay_event(self, kind: str, payload: Json) -> bytes:
        """The Chat bytes for one decoded ConverseStream event."""
        if self.done or self.failed:
            return b""
        if kind == "error":  # an exception frame: {"exception": <:exception-type>, "message"}
            name = str(payload.get("exception") or "")
            message = payload.get("message") or payload.get("Message") or name or "Bedrock stream failed"
            return b"".join(self.fail(str(message), error_status(502, name)))
        if kind == "messageStart":
            return self._open()
        if kind == "contentBlockStart":
            start = payload.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if isinstance(use, dict):
                index = len(self._calls)
                self._calls[_block_index(payload)] = index
                name = str(use.get("name", ""))
                return self._open() + self._chunk({"tool_calls": [{
                    "index": index, "id": use.get("toolUseId"), "type": "function",
                    "function": {"name": self._names.get(name, name), "arguments": ""}}]})
            return self._open()
        if kind == "contentBlockDelta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                return b""
            if isinstance(delta.get("text"), str):
                return self._open() + self._chunk({"content": delta["text"]})
            use = delta.get("toolUse")
            call = self._calls.get(_block_index(payload))
            if isinstance(use, dict) and call is not None:
                fragment = {"index": call, "function": {"arguments": str(use.get("input", ""))}}
                return self._chunk({"tool_calls": [fragment]})
            return b""  # reasoning deltas: Chat has no place for them
        if kind == "messageStop":
            finish = _STOP_REASONS.get(str(payload.get("stopReason")), "stop")
            self._finish = "tool_calls" if self._calls and finish == "stop" else finish
            return b""
        if kind == "metadata":
            self.usage = usage_of(payload.get("usage"))
            return self._end()
        return b""

    def _end(self) -> bytes:
        if self._finish is None:
            return b""
        out = self._open() + self._chunk({}, self._finish)
        if self._include_usage:
            out += encode_event(orjson.dumps({**self._base, "choices": [], "usage": _chat_usage(self.usage)}))
        self.done = True
        return out + DONE_FRAME

    def finish(self) -> list[bytes]:
        if not self.done and not self.failed and self._finish is not None:
            return [self._end()]  # no metadata event: end without usage
        return super().finish()

    def error_frame(self, message: str, status: int) -> bytes:
        return chat.error_frame(message, status)
