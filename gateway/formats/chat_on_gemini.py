"""A Chat Completions client served by a Gemini `generateContent` provider (sans-IO).

`translate_request` turns the client's Chat body into a `GenerateContentRequest` (the
model and streaming are in Gemini's URL, not its body: the provider builds that from
the exchange); `translate_response`, `ChatOnGeminiStream` and `translate_error` turn the
provider's answer, `streamGenerateContent?alt=sse` stream and error bodies back into
Chat. The rules are those of wire-formats.md 6.2, 6.3, 6.4, 6.7 and 7; the policy
choices that lose information are listed in each function's docstring.

Thought signatures: Gemini signs function calls (`thoughtSignature` on the part) and
Gemini 3 rejects a later turn whose calls lost their signature. A signed call's Chat id
is `<id>__thought__<signature>` (gemini.call_id): the id is the one field every client,
the official openai SDK included, sends back unchanged, so the next request's
`tool_calls[].id` gives the signature back to its `functionCall` part.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..errors import BadRequest, openai_error_type
from ..sse import DONE_FRAME, SSEEvent, encode_event, event_data
from ..usage import Usage, asks_for_stream_usage
from . import chat, gemini
from .gemini_schema import gemini_schema
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

__all__ = ["ChatOnGeminiStream", "translate_error", "translate_request", "translate_response"]

# reasoning_effort → Gemini 2.5 thinkingBudget (0 turns thinking off where the model allows
# it) and → Gemini 3 thinkingLevel (which cannot turn thinking off: "none" is its minimum).
THINKING_BUDGETS = {
    "none": 0,
    "minimal": 128,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
THINKING_LEVELS = {
    "none": "minimal",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
# File extension → media type, for URLs and file names (Gemini needs `mimeType`). A fixed
# table of what Gemini reads, rather than `mimetypes`, whose answers vary with the host.
MEDIA_TYPES = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif",
    "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf", "txt": "text/plain",
    "md": "text/markdown", "csv": "text/csv", "html": "text/html", "xml": "text/xml", "json": "application/json",
    "wav": "audio/wav", "mp3": "audio/mp3", "aac": "audio/aac", "ogg": "audio/ogg", "flac": "audio/flac",
    "mp4": "video/mp4", "mpeg": "video/mpeg", "mov": "video/mov", "webm": "video/webm",
}
_FILE_URL_SCHEMES = ("https://", "http://", "gs://")


def _unsupported(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param, code="unsupported_parameter")


# --- request: Chat → Gemini ------------------------------------------------------------


@client_body
def translate_request(body: Json, default_max_tokens: int = 4096) -> Json:
    """Translate a Chat Completions request body into a Gemini `generateContent` body.

    Policy choices (lossy or opinionated):
    - `system`/`developer` messages anywhere become `systemInstruction` parts, in order.
    - `max_tokens` = `max_completion_tokens` ?? `max_tokens`, else unset: Gemini has its
      own default, so `default_max_tokens` (which Anthropic needs) is not applied.
    - `tool` messages become `functionResponse` parts `{"output": <text>}` (Google's
      documented key) named after the call whose id they answer; call ids are not sent
      (Vertex rejects `id` on function parts; Gemini pairs calls and responses by order).
    - A model turn whose function calls carry no signature (history from another model)
      gets Google's SKIP_SIGNATURE on its first call for Gemini 3 and later models.
    - Tool and response schemas are reduced to Gemini's OpenAPI subset (gemini_schema).
    - `reasoning_effort` becomes `thinkingConfig` (THINKING_LEVELS for Gemini 3+,
      THINKING_BUDGETS before) with `includeThoughts`, so thought summaries come back as
      `reasoning_content`; assistant `reasoning_content` in the history is not sent.
    - `user`, `metadata`, `store`, `service_tier`, `stream_options`, `parallel_tool_calls`,
      `prediction` and other OpenAI-only knobs are dropped.
    - `logprobs`, `logit_bias`, legacy `functions`, custom tools, web search, audio
      output and file ids raise BadRequest: silently ignoring them would change the answer.
    A value of the wrong JSON type raises BadRequest naming the field.
    """
    _reject_unsupported(body)
    model = body.get("model")
    levels = gemini.uses_thinking_levels(model) if isinstance(model, str) else False
    system, contents = _convert_messages(body.get("messages"), levels)
    if not contents:
        raise BadRequest("messages must hold at least one user or assistant message", param="messages")
    out: Json = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    declarations, calling = _tools_and_config(body)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        if calling is not None:
            out["toolConfig"] = {"functionCallingConfig": calling}
    config = _generation_config(body, levels)
    if config:
        out["generationConfig"] = config
    return out


def _reject_unsupported(body: Json) -> None:
    if body.get("logprobs") or body.get("top_logprobs"):
        raise _unsupported("logprobs are not available from Gemini models through this gateway", "logprobs")
    if body.get("logit_bias"):
        raise _unsupported("logit_bias is not supported by Gemini models", "logit_bias")
    if body.get("functions") or body.get("function_call"):
        raise _unsupported("legacy functions/function_call are not supported; use tools/tool_choice", "functions")
    if body.get("web_search_options") is not None:
        raise _unsupported("web_search_options is not supported by Gemini models", "web_search_options")
    modalities = body.get("modalities")
    if body.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise _unsupported("audio output is not supported by Gemini models through this gateway", "modalities")


# --- generationConfig ------------------------------------------------------------------


def _positive_int(body: Json, key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{key} must be a positive integer", param=key)
    return value


def _number(body: Json, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadRequest(f"{key} must be a number", param=key)
    return value


def _generation_config(body: Json, levels: bool) -> Json:
    config: Json = {}
    max_tokens = _positive_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _positive_int(body, "max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for key, name in (("temperature", "temperature"), ("top_p", "topP"),
                      ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        value = _number(body, key)
        if value is not None:
            config[name] = value
    top_k = _positive_int(body, "top_k")
    if top_k is not None:
        config["topK"] = top_k
    n = _positive_int(body, "n")
    if n is not None and n > 1:
        config["candidateCount"] = n
    seed = body.get("seed")
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise BadRequest("seed must be an integer", param="seed")
        config["seed"] = seed
    stop = _stop_sequences(body.get("stop"))
    if stop:
        config["stopSequences"] = stop
    _response_format(body.get("response_format"), config)
    thinking = _thinking(body.get("reasoning_effort"), levels)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    sequences = expect_list(stop, "stop")
    for i, item in enumerate(sequences):
        expect_str(item, f"stop[{i}]")
    return [s for s in sequences if s]


def _response_format(response_format: Any, config: Json) -> None:
    if response_format is None:
        return
    kind = expect_dict(response_format, "response_format").get("type")
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        json_schema = optional_dict(response_format.get("json_schema"), "response_format.json_schema")
        config["responseMimeType"] = "application/json"
        schema = json_schema.get("schema")
        if schema is not None:
            config["responseSchema"] = gemini_schema(schema, "response_format.json_schema.schema")
        return
    raise _unsupported(f"response_format type {describe(kind)} is not supported", "response_format")


def _thinking(effort: Any, levels: bool) -> Json | None:
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        raise BadRequest(f"unsupported reasoning_effort {describe(effort)}", param="reasoning_effort")
    include = effort != "none"
    if levels:
        return {"thinkingLevel": THINKING_LEVELS[effort], "includeThoughts": include}
    return {"thinkingBudget": THINKING_BUDGETS[effort], "includeThoughts": include}


# --- messages --------------------------------------------------------------------------


def _convert_messages(messages: Any, levels: bool) -> tuple[list[str], list[Json]]:
    system: list[str] = []
    turns = TurnBuilder("parts")
    call_names: dict[str, str] = {}  # Chat tool call id → function name, for functionResponse
    for i, msg in enumerate(expect_list(messages, "messages")):
        path = f"messages[{i}]"
        role = expect_dict(msg, path).get("role")
        if role == "system" or role == "developer":
            text = chat.joined_text(msg.get("content"), f"{path}.content")
            if text:
                system.append(text)
        elif role == "user":
            turns.add("user", _user_parts(msg.get("content"), f"{path}.content"))
        elif role == "assistant":
            turns.add("model", _model_parts(msg, path, call_names, levels))
        elif role == "tool":
            turns.add("user", [], _function_response(msg, path, call_names))
        else:
            raise _unsupported(f"{path}.role {describe(role)} is not supported", f"{path}.role")
    return system, turns.finish()


def _text_part(text: Any, path: str) -> list[Json]:
    text = optional_str(text, path)
    return [{"text": text}] if text else []


def _user_parts(content: Any, path: str) -> list[Json]:
    if isinstance(content, str) or content is None:
        return _text_part(content, path)
    parts: list[Json] = []
    for j, part in enumerate(expect_list(content, path)):
        part_path = f"{path}[{j}]"
        kind = expect_dict(part, part_path).get("type")
        if kind == "text":
            parts += _text_part(part.get("text"), f"{part_path}.text")
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_image_part(url, f"{part_path}.image_url"))
        elif kind == "input_audio":
            parts.append(_audio_part(optional_dict(part.get("input_audio"), f"{part_path}.input_audio"), part_path))
        elif kind == "file":
            parts.append(_file_part(optional_dict(part.get("file"), f"{part_path}.file"), f"{part_path}.file"))
        else:
            raise _unsupported(f"content part {describe(kind)} is not supported by Gemini", part_path)
    return parts


def _data_url(url: str, path: str) -> tuple[str, str]:
    """`data:<mime>[;…];base64,<data>` → (mime, data); BadRequest unless base64."""
    header, sep, data = url[5:].partition(",")
    params = header.split(";")
    if not sep or "base64" not in params[1:] or not params[0].strip():
        raise BadRequest("data URLs must be base64-encoded and name their media type", param=path)
    return params[0].strip().lower(), data


def _media_type(name: str) -> str | None:
    """The media type a file name's (or URL path's) extension stands for; None if unknown."""
    stem, dot, extension = name.rpartition(".")
    return MEDIA_TYPES.get(extension.lower()) if dot and stem and "/" not in extension else None


def _image_part(url: Any, path: str) -> Json:
    url = expect_str(url, f"{path}.url")
    if url.startswith("data:"):
        mime, data = _data_url(url, f"{path}.url")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(_FILE_URL_SCHEMES):
        # Gemini fetches http(s) and gs:// URIs itself; it needs their media type.
        mime = _media_type(urlsplit(url).path) or "image/jpeg"
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise BadRequest("image_url must be an http(s) or gs:// URL or a base64 data URL", param=f"{path}.url")


def _audio_part(audio: Json, path: str) -> Json:
    audio_format = audio.get("format")
    mime = _AUDIO_TYPES.get(audio_format) if isinstance(audio_format, str) else None
    if mime is None:
        raise _unsupported("input_audio.format must be wav or mp3", f"{path}.input_audio.format")
    data = expect_str(audio.get("data"), f"{path}.input_audio.data")
    return {"inlineData": {"mimeType": mime, "data": data}}


def _file_part(file: Json, path: str) -> Json:
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise _unsupported("file parts need inline file_data (file_id is not supported)", path)
    if data.startswith("data:"):
        mime, data = _data_url(data, f"{path}.file_data")
    else:
        filename = optional_str(file.get("filename"), f"{path}.filename")
        mime = _media_type(filename or "") or "application/pdf"
    return {"inlineData": {"mimeType": mime, "data": data}}


def _model_parts(msg: Json, path: str, call_names: dict[str, str], levels: bool) -> list[Json]:
    content = msg.get("content")
    parts: list[Json] = []
    if isinstance(content, list):
        for j, part in enumerate(content):
            part = expect_dict(part, f"{path}.content[{j}]")
            parts += _text_part(part.get("text") or part.get("refusal"), f"{path}.content[{j}].text")
    elif content is None or isinstance(content, str):
        parts += _text_part(content, f"{path}.content")
    else:
        raise WrongShape(f"{path}.content", "a string or an array")
    if not parts:
        parts += _text_part(msg.get("refusal"), f"{path}.refusal")
    calls = [_function_call(call, f"{path}.tool_calls[{j}]", call_names)
             for j, call in enumerate(optional_list(msg.get("tool_calls"), f"{path}.tool_calls"))]
    if levels and calls and not any("thoughtSignature" in part for part in calls):
        calls[0]["thoughtSignature"] = gemini.SKIP_SIGNATURE
    return parts + calls


def _function_call(call: Any, path: str, call_names: dict[str, str]) -> Json:
    call = expect_dict(call, path)
    if call.get("type", "function") != "function":
        raise _unsupported("only function tool calls can be sent to Gemini", f"{path}.type")
    function = optional_dict(call.get("function"), f"{path}.function")
    name = expect_str(function.get("name"), f"{path}.function.name")
    args = chat.tool_arguments_to_input(function.get("arguments"))
    dumps(args, f"{path}.function.arguments")  # the body must serialise: not nested too deeply
    part: Json = {"functionCall": {"name": name, "args": args}}
    chat_id = optional_str(call.get("id"), f"{path}.id")
    signature = None
    if chat_id:
        call_names[chat_id] = name
        signature = gemini.split_call_id(chat_id)[1]
    if signature is None:  # Google's own OpenAI-compatible surface puts it here
        extra = call.get("extra_content")
        google = extra.get("google") if isinstance(extra, dict) else None
        given = google.get("thought_signature") if isinstance(google, dict) else None
        signature = given if isinstance(given, str) and given else None
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(msg: Json, path: str, call_names: dict[str, str]) -> Json:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"{path} (role tool) needs a tool_call_id", param=f"{path}.tool_call_id")
    name = call_names.get(call_id)
    if name is None:
        raise BadRequest(f"{path}.tool_call_id matches no tool call of an earlier assistant message",
                         param=f"{path}.tool_call_id")
    text = chat.joined_text(msg.get("content"), f"{path}.content")
    return {"functionResponse": {"name": name, "response": {"output": text}}}


# --- tools -----------------------------------------------------------------------------


def _function_of(tool: Any, path: str) -> Json:
    """The `function` object of a Chat tool (or tool choice); {} when absent."""
    return optional_dict(expect_dict(tool, path).get("function"), f"{path}.function")


def _function_name(tool: Any, path: str) -> str | None:
    """The function name of a Chat tool; None when it has none (or not a string)."""
    name = _function_of(tool, path).get("name")
    return name if isinstance(name, str) else None


def _tools_and_config(body: Json) -> tuple[list[Json], Json | None]:
    tools = optional_list(body.get("tools"), "tools")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = optional_dict(choice.get("allowed_tools"), "tool_choice.allowed_tools")
        listed = optional_list(allowed.get("tools"), "tool_choice.allowed_tools.tools")
        names = {_function_name(t, f"tool_choice.allowed_tools.tools[{i}]") for i, t in enumerate(listed)}
        names.discard(None)
        tools = [t for i, t in enumerate(tools) if _function_name(t, f"tools[{i}]") in names]
        choice = allowed.get("mode", "auto")
    if not tools:
        return [], None
    declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    return declarations, _calling_config(choice)


def _declaration(tool: Any, path: str) -> Json:
    function = _function_of(tool, path)
    if tool.get("type", "function") != "function":
        raise _unsupported("only function tools can be sent to Gemini", f"{path}.type")
    out: Json = {"name": expect_str(function.get("name"), f"{path}.function.name")}
    description = optional_str(function.get("description"), f"{path}.function.description")
    if description:
        out["description"] = description
    parameters = function.get("parameters")
    if parameters is not None:
        schema = gemini_schema(parameters, f"{path}.function.parameters")
        if schema.get("properties"):  # Gemini rejects an OBJECT without properties: leave it out
            out["parameters"] = schema
    return out


def _calling_config(choice: Any) -> Json | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "required":
        return {"mode": "ANY"}
    if choice == "none":
        return {"mode": "NONE"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = expect_str(_function_of(choice, "tool_choice").get("name"), "tool_choice.function.name")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    what = describe(choice.get("type") if isinstance(choice, dict) else choice)
    raise _unsupported(f"tool_choice {what} is not supported by Gemini", "tool_choice")


# --- response: Gemini → Chat -----------------------------------------------------------


def _candidate_index(candidate: Json, position: int, path: str) -> int:
    index = candidate.get("index", position)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise WrongShape(f"{path}.index", "a non-negative integer")
    return index


def _parts(candidate: Json, path: str) -> list[Any]:
    content = optional_dict(candidate.get("content"), f"{path}.content")
    return optional_list(content.get("parts"), f"{path}.content.parts")


class _CallIds:
    """Numbers the function calls of one answer, for the ids Gemini does not give."""

    __slots__ = ("_count", "_key", "_response_id")

    def __init__(self, response_id: str | None) -> None:
        self._response_id = response_id
        self._key = ""  # made on the first call: most answers have none
        self._count = 0

    def next(self, given: str | None, signature: str | None) -> str:
        if not self._key:
            self._key = gemini.response_key(self._response_id)
        self._count += 1
        return gemini.call_id(given, signature, self._key, self._count)


def _tool_call(part: Json, path: str, ids: _CallIds) -> Json:
    """A `functionCall` part → a Chat `tool_calls` entry (signature kept in the id)."""
    call = expect_dict(part["functionCall"], f"{path}.functionCall")
    return {
        "id": ids.next(optional_str(call.get("id"), f"{path}.functionCall.id"),
                       optional_str(part.get("thoughtSignature"), f"{path}.thoughtSignature")),
        "type": "function",
        "function": {
            "name": expect_str(call.get("name"), f"{path}.functionCall.name"),
            "arguments": dumps(optional_dict(call.get("args"), f"{path}.functionCall.args"),
                               f"{path}.functionCall.args").decode(),
        },
    }


def _choice(candidate: Json, position: int, path: str, ids: _CallIds) -> Json:
    text: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[Json] = []
    for j, part in enumerate(_parts(candidate, path)):
        part_path = f"{path}.content.parts[{j}]"
        part = expect_dict(part, part_path)
        if "functionCall" in part:
            tool_calls.append(_tool_call(part, part_path, ids))
            continue
        value = optional_str(part.get("text"), f"{part_path}.text")
        if value:
            (reasoning if part.get("thought") is True else text).append(value)
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
    reason = optional_str(candidate.get("finishReason"), f"{path}.finishReason")
    return {
        "index": _candidate_index(candidate, position, path),
        "message": message,
        "logprobs": None,
        "finish_reason": gemini.finish_reason(reason, bool(tool_calls)),
    }


def _blocked_choice(resp: Json) -> Json:
    """The one choice of an answer without candidates: its prompt was blocked."""
    feedback = optional_dict(resp.get("promptFeedback"), "promptFeedback")
    if optional_str(feedback.get("blockReason"), "promptFeedback.blockReason") is None:
        raise WrongShape("candidates", "a non-empty array (or promptFeedback.blockReason set)")
    message = {"role": "assistant", "content": "", "refusal": None}
    return {"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}


@provider_answer
def translate_response(resp: Json, *, created: int | None = None) -> tuple[Json, Usage]:
    """Translate a Gemini `GenerateContentResponse` into a `chat.completion` and its usage.

    Each candidate becomes a choice; thought parts go to `message.reasoning_content` (the
    non-standard field DeepSeek and vLLM use); function calls get `call_<responseId>_<n>`
    ids when Gemini gives none, with their thought signature appended (see the module docstring); inline
    data, code execution and other non-text parts are dropped. A blocked prompt
    (`promptFeedback.blockReason`, no candidates) is an empty `content_filter` answer.
    `id` is Gemini's `responseId`, `model` its `modelVersion`; `created` defaults to now.
    A field of the wrong JSON type raises MalformedUpstream.
    """
    response_id = optional_str(resp.get("responseId"), "responseId")
    ids = _CallIds(response_id)
    candidates = optional_list(resp.get("candidates"), "candidates")
    choices = [_choice(expect_dict(candidate, f"candidates[{i}]"), i, f"candidates[{i}]", ids)
               for i, candidate in enumerate(candidates)]
    if not choices:
        choices = [_blocked_choice(resp)]
    usage = gemini.usage_from_gemini(resp.get("usageMetadata"))
    out = {
        "id": response_id or "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": optional_str(resp.get("modelVersion"), "modelVersion") or "gemini",
        "choices": choices,
        "usage": usage.to_chat(),
    }
    return out, usage


# --- errors ----------------------------------------------------------------------------

# Google RPC status → OpenAI error type; the others follow the HTTP status (wire-formats 7.3).
_OPENAI_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
}


def _openai_type(error: gemini.GeminiError, status: int) -> str:
    if error.reason == "API_KEY_INVALID":  # a 400 INVALID_ARGUMENT, but a credentials problem
        return "authentication_error"
    return _OPENAI_TYPES.get(error.status or "") or openai_error_type(status)


def translate_error(status: int, body: bytes) -> tuple[int, bytes]:
    """Gemini error response → (status, OpenAI error body), per wire-formats 7.3.

    The HTTP status is kept; the type follows Google's RPC status (else the HTTP status);
    `code` is the ErrorInfo reason (API_KEY_INVALID, …) or else the RPC status, so the
    client still sees Google's own name for the error. An unparsable body becomes the
    message text.
    """
    error = gemini.read_error(body)
    message = error.message or f"upstream returned HTTP {status}"
    return status, chat.error_body(message, _openai_type(error, status), error.reason or error.status)


# --- stream: Gemini SSE chunks → Chat chunks -------------------------------------------

_ROLE_DELTA = b'{"role":"assistant","content":""'  # then the tail closes it
_NOT_JSON = "upstream sent an event that is not JSON"


class _Choice:
    """Where one candidate's stream is: its chunk head, tools so far, whether it ended;
    `text` and `thought` are the frame starts of a text and a thought delta."""

    __slots__ = ("called", "finished", "head", "next_tool", "text", "thought")

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.text = head + b'{"content":'
        self.thought = head + b'{"reasoning_content":'
        self.next_tool = 0
        self.called = False
        self.finished = False


class ChatOnGeminiStream(StreamTranslator):
    """State machine: Gemini `streamGenerateContent?alt=sse` chunks in, Chat chunk frames out.

    Every Gemini event is a whole GenerateContentResponse holding the next text (a delta),
    whole function calls, and on its last chunk `finishReason` and the final cumulative
    `usageMetadata`. The stream has no end marker: upstream closes the connection. So
    `finish()` (EOF) sends the usage chunk (when the client asked for it) and `[DONE]`
    once every candidate has finished, and one error frame otherwise. An upstream
    `{"error": …}` event or an event of the wrong shape ends the stream with one error
    frame; nothing follows an ending.
    """

    __slots__ = ("_choices", "_created", "_end", "_header", "_ids", "_include_usage", "_meta", "_model", "_open",
                 "_tail")
    cut_message = "upstream stream ended before the answer was complete"

    def __init__(self, model: str, *, include_usage: bool, created: int | None = None) -> None:
        super().__init__()
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._header = b""  # set from the first chunk's responseId
        self._choices: dict[int, _Choice] = {}
        self._open: _Choice | None = None  # the first candidate's, while it has not finished
        self._ids = _CallIds(None)
        self._meta: Any = None  # the last usageMetadata read
        self._end = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._tail = b'},"logprobs":null,"finish_reason":null}]' + self._end  # after a delta's last field

    @classmethod
    def for_request(cls, model: str, body: Json, injected_usage: bool) -> ChatOnGeminiStream:
        return cls(model, include_usage=asks_for_stream_usage(body))

    # --- public API -----------------------------------------------------------------
    def relay_block(self, block: bytes) -> bytes:
        """Every event of the block translated (`feed` for each, the usual chunk inlined)."""
        frames: list[bytes] = []
        for data in event_data(block):
            if self.failed or self.done:
                break
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                frames += self.fail(_NOT_JSON)
                break
            frame = self._text_frame(chunk)
            if frame is None:
                frames += self._on_object(chunk)
            else:
                frames.append(frame)
        return b"".join(frames)

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Translate one upstream chunk; returns zero or more frames."""
        if self.failed or self.done:
            return []
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self.fail(_NOT_JSON)
        frame = self._text_frame(chunk)
        return self._on_object(chunk) if frame is None else [frame]

    def finish(self) -> list[bytes]:
        """Upstream closed: the usage chunk and [DONE] when every candidate finished."""
        if self.done or self.failed:
            return []
        if not self._choices or not all(choice.finished for choice in self._choices.values()):
            return self.fail(self.cut_message)
        self.done = True
        if not self._include_usage:
            return [DONE_FRAME]
        usage = b"data: " + self._header + b',"choices":[],"usage":' + orjson.dumps(self.usage.to_chat()) + b"}\n\n"
        return [usage, DONE_FRAME]

    def error_frame(self, message: str, status: int) -> bytes:
        return chat.error_frame(message, status)

    # --- chunks ---------------------------------------------------------------------
    def _text_frame(self, chunk: Any) -> bytes | None:
        """The frame of the usual chunk: the open first candidate's next text and nothing
        else. Checked only as far as that shape needs (a wrong type elsewhere is a
        KeyError or TypeError here); None sends the chunk the full way."""
        choice = self._open
        if choice is None or type(chunk) is not dict or "error" in chunk:
            return None
        try:
            (candidate,) = chunk["candidates"]
            (part,) = candidate["content"]["parts"]
            text = part["text"]
        except (KeyError, TypeError, ValueError):
            return None
        index = candidate.get("index", 0)
        if type(text) is not str or not text or type(index) is not int or index or "finishReason" in candidate:
            return None
        meta = chunk.get("usageMetadata")
        if meta is not None and meta != self._meta:  # cumulative: the latest replaces the earlier
            self._meta = meta
            self.usage = gemini.usage_from_gemini(meta)
        start = choice.text if len(part) == 1 or part.get("thought") is not True else choice.thought
        return start + orjson.dumps(text) + self._tail

    def _on_object(self, chunk: Any) -> list[bytes]:
        if not isinstance(chunk, dict):
            return self.fail("upstream sent an event that is not a JSON object")
        try:
            return self._on_chunk(chunk)
        except WrongShape as exc:
            return self.fail(malformed_message(str(exc)))

    # Field paths for error messages are only built when a field has the wrong type.
    def _on_chunk(self, data: Json) -> list[bytes]:
        if "error" in data:
            return self._on_error(data["error"])
        if not self._header:
            response_id = optional_str(data.get("responseId"), "responseId")
            self._ids = _CallIds(response_id)
            chunk_id = response_id or "chatcmpl-" + uuid.uuid4().hex
            self._header = orjson.dumps({"id": chunk_id, "object": "chat.completion.chunk",
                                         "created": self._created, "model": self._model})[:-1]
        meta = data.get("usageMetadata")
        if meta is not None and meta != self._meta:  # cumulative: the latest replaces the earlier
            self._meta = meta
            self.usage = gemini.usage_from_gemini(meta)
        candidates = data.get("candidates")
        if candidates:
            if not isinstance(candidates, list):
                raise WrongShape("candidates", "an array")
            if len(candidates) == 1:
                return self._on_candidate(candidates[0], 0)
            frames: list[bytes] = []
            for position, candidate in enumerate(candidates):
                frames += self._on_candidate(candidate, position)
            return frames
        feedback = optional_dict(data.get("promptFeedback"), "promptFeedback")
        if optional_str(feedback.get("blockReason"), "promptFeedback.blockReason") is None:
            return []
        if 0 in self._choices:
            choice = self._choices[0]
            return [] if choice.finished else [self._finish_choice(choice, "content_filter")]
        choice = self._new_choice(0)
        return [choice.head + _ROLE_DELTA + self._tail, self._finish_choice(choice, "content_filter")]

    def _new_choice(self, index: int) -> _Choice:
        head = b"data: " + self._header + b',"choices":[{"index":' + str(index).encode() + b',"delta":'
        choice = self._choices[index] = _Choice(head)
        if index == 0:
            self._open = choice
        return choice

    def _on_candidate(self, candidate: Any, position: int) -> list[bytes]:
        if not isinstance(candidate, dict):
            raise WrongShape(f"candidates[{position}]", "an object")
        index = candidate.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise WrongShape(f"candidates[{position}].index", "a non-negative integer")
        frames: list[bytes] = []
        choice = self._choices.get(index)
        if choice is None:
            choice = self._new_choice(index)
            frames.append(choice.head + _ROLE_DELTA + self._tail)
        elif choice.finished:
            return []
        content = candidate.get("content")
        if isinstance(content, dict):
            parts = content.get("parts")
        elif content is None:
            parts = None
        else:
            raise WrongShape(f"candidates[{position}].content", "an object")
        if parts:
            if not isinstance(parts, list):
                raise WrongShape(f"candidates[{position}].content.parts", "an array")
            for j, part in enumerate(parts):
                if not isinstance(part, dict):
                    raise WrongShape(f"candidates[{position}].content.parts[{j}]", "an object")
                text = part.get("text")
                if text and isinstance(text, str):
                    start = choice.thought if part.get("thought") is True else choice.text
                    frames.append(start + orjson.dumps(text) + self._tail)
                elif "functionCall" in part:
                    path = f"candidates[{position}].content.parts[{j}]"
                    call = {"index": choice.next_tool, **_tool_call(part, path, self._ids)}
                    choice.next_tool += 1
                    choice.called = True
                    frames.append(choice.head + b'{"tool_calls":[' + orjson.dumps(call) + b"]" + self._tail)
                elif text is not None and not isinstance(text, str):
                    raise WrongShape(f"candidates[{position}].content.parts[{j}].text", "a string")
        reason = candidate.get("finishReason")
        if reason is not None:
            if not isinstance(reason, str):
                raise WrongShape(f"candidates[{position}].finishReason", "a string")
            frames.append(self._finish_choice(choice, gemini.finish_reason(reason, choice.called)))
        return frames

    def _finish_choice(self, choice: _Choice, finish: str) -> bytes:
        choice.finished = True
        if choice is self._open:
            self._open = None
        return choice.head + b'{},"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]' + self._end

    def _on_error(self, error: Any) -> list[bytes]:
        # The stream ends here whatever the event holds: fields of the wrong type get defaults.
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else 500
        read = gemini.error_from_object(error)
        message = read.message or "upstream error"
        self.failed = True
        return [encode_event(chat.error_body(message, _openai_type(read, status), read.reason or read.status))]
