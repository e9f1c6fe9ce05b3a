"""A fake Gemini API (generativelanguage.googleapis.com) that speaks the wire faithfully and
fails on demand.

What it does as Google does: the model and method in the path (`/v1beta/models/{m}:{method}`),
the key in `x-goog-api-key` (or `?key=`), Google-shaped errors (`{"error": {code, message,
status, details}}`: 403 PERMISSION_DENIED without a key, 400 INVALID_ARGUMENT with reason
API_KEY_INVALID for a wrong one, 400 "Unknown name" for a field the API does not know),
`streamGenerateContent?alt=sse` as `data:` events separated by CRLF CRLF with no end marker
(the connection closes), and without `alt=sse` the stream as one JSON array. Each stream
chunk is a whole GenerateContentResponse; the last holds `finishReason` and the final
cumulative `usageMetadata`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import orjson
from aiohttp import web

from tests.fake_upstreams import Recorded

GEMINI_KEY = "AIzaSyFakeGeminiKey-0123456789abcdefghi"
RESPONSE_ID = "fakeResp-01"

# Fields of the request messages the fake checks, as the API's proto declares them.
_REQUEST_FIELDS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                             "safetySettings", "cachedContent", "labels"})
_GENERATION_FIELDS = frozenset({
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "mediaResolution", "imageConfig"})
_THINKING_FIELDS = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
_PART_FIELDS = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
                          "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", "partMetadata"})
_SCHEMA_FIELDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum"})
_SCHEMA_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL",
                           "string", "number", "integer", "boolean", "array", "object", "null"})
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def google_error(code: int, message: str, status: str | None = None, reason: str | None = None) -> bytes:
    """A Google API error body."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status or _STATUS_NAMES.get(code, "UNKNOWN")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]
    return orjson.dumps({"error": error})


class Rejected(Exception):
    """The request breaks a rule the real API enforces: answered 400 INVALID_ARGUMENT."""


@attrs.define
class GeminiBehaviour:
    """Knobs a test turns; defaults give a normal, fast text answer."""

    words: list[str] = attrs.Factory(lambda: ["Hello", "from", "fake", "Gemini"])
    thoughts: str | None = None  # a thought summary part (`thought: true`) before the text
    function_calls: list[dict[str, Any]] = attrs.Factory(list)  # [{"name", "args", "id"?}] as functionCall parts
    thought_signature: str | None = None  # on the first functionCall part (else on the last text part)
    finish_reason: str = "STOP"
    block_reason: str | None = None  # answer with promptFeedback.blockReason and no candidates
    usage: dict[str, Any] = attrs.Factory(lambda: {
        "promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}]})
    status: int = 200  # answer every generate/embed/count call with this error status
    error_body: bytes | None = None  # the error body (default: Google-shaped for `status`)
    error_headers: dict[str, str] = attrs.Factory(dict)
    answer: bytes | None = None  # a non-streaming answer sent as is (status 200), however wrong
    stream_frames: list[bytes] | None = None  # a stream's frames sent as is, however wrong
    cut_after_chunks: int | None = None  # abort the connection after this many stream chunks
    stream_error_after: int | None = None  # send an `{"error": …}` event after this many chunks
    require_thought_signatures: bool = False  # Gemini 3: 400 when a model turn's call lost its signature
    bad_key_status: int = 400  # Google answers a wrong key 400 INVALID_ARGUMENT (API_KEY_INVALID)
    embedding_dimensions: int = 8


class FakeGemini:
    """Records every request (raw query included); `behaviour` decides the answer."""

    def __init__(self, api_key: str = GEMINI_KEY) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.behaviour = GeminiBehaviour()
        self.app = web.Application()
        self.app.router.add_get("/v1beta/models", self.list_models)
        self.app.router.add_post("/v1beta/models/{target}", self.call)

    # --- plumbing -------------------------------------------------------------------------
    def _key_failure(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return self._error(403, "Method doesn't allow unregistered callers (callers without established "
                                    "identity). Please use API Key or other form of API consumer identity to "
                                    "call this API.", "PERMISSION_DENIED", "SERVICE_DISABLED")
        if key != self.api_key:
            status = self.behaviour.bad_key_status
            return self._error(status, "API key not valid. Please pass a valid API key.",
                               "INVALID_ARGUMENT" if status == 400 else None, "API_KEY_INVALID")
        return None

    @staticmethod
    def _error(code: int, message: str, status: str | None = None, reason: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=code, body=google_error(code, message, status, reason),
                            content_type="application/json", headers=headers)

    def _configured_failure(self) -> web.Response | None:
        b = self.behaviour
        if b.status < 400:
            return None
        body = b.error_body or google_error(b.status, f"fake failure {b.status}")
        return web.Response(status=b.status, body=body, content_type="application/json", headers=b.error_headers)

    async def list_models(self, request: web.Request) -> web.Response:
        self.requests.append(await Recorded.of(request))
        failure = self._key_failure(request)
        if failure is not None:
            return failure
        return web.json_response({"models": [{
            "name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536, "supportedGenerationMethods": ["generateContent", "countTokens"]}]})

    async def call(self, request: web.Request) -> web.StreamResponse:
        rec = await Recorded.of(request)
        self.requests.append(rec)
        model, _, method = request.match_info["target"].rpartition(":")
        handler = {"generateContent": self._generate, "streamGenerateContent": self._stream,
                   "batchEmbedContents": self._embed, "countTokens": self._count}.get(method)
        if not model or handler is None:
            return self._error(404, f"Method not found: {method}", "NOT_FOUND")
        failure = self._key_failure(request) or self._configured_failure()
        if failure is not None:
            return failure
        body = orjson.loads(rec.body) if rec.body else None
        if not isinstance(body, dict):
            return self._error(400, "Invalid JSON payload received. Expected an object.")
        try:
            return await handler(request, model, body)
        except Rejected as exc:
            return self._error(400, str(exc))

    # --- generateContent ------------------------------------------------------------------
    def _check_request(self, body: dict[str, Any]) -> None:
        _unknown(body, _REQUEST_FIELDS, "")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise Rejected("* GenerateContentRequest.contents: contents is not specified")
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                raise Rejected(f"Please use a valid role: user, model. (contents[{i}])")
            parts = content.get("parts")
            if not parts:
                raise Rejected(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
            for j, part in enumerate(parts):
                _unknown(part, _PART_FIELDS, f"contents[{i}].parts[{j}]")
                if part.get("text") == "":
                    raise Rejected("Unable to submit request because it has an empty text parameter.")
            calls = [p for p in parts if "functionCall" in p]
            if (self.behaviour.require_thought_signatures and content["role"] == "model" and calls
                    and "thoughtSignature" not in calls[0]):
                raise Rejected(f"Function call is missing a thought_signature in functionCall parts. "
                               f"Position in contents: {i}")
        config = body.get("generationConfig", {})
        _unknown(config, _GENERATION_FIELDS, "generation_config")
        _unknown(config.get("thinkingConfig", {}), _THINKING_FIELDS, "generation_config.thinking_config")
        if "responseSchema" in config:
            _check_schema(config["responseSchema"], "generation_config.response_schema")
        for tool in body.get("tools", []):
            for k, declaration in enumerate(tool.get("functionDeclarations", [])):
                if "parameters" in declaration:
                    _check_schema(declaration["parameters"], f"tools[0].function_declarations[{k}].parameters")

    def _parts(self) -> list[dict[str, Any]]:
        b = self.behaviour
        parts: list[dict[str, Any]] = []
        if b.thoughts:
            parts.append({"text": b.thoughts, "thought": True})
        if b.words:
            parts.append({"text": " ".join(b.words)})
        calls: list[dict[str, Any]] = [{"functionCall": {"name": c["name"], "args": c.get("args", {}),
                                   **({"id": c["id"]} if "id" in c else {})}} for c in b.function_calls]
        if b.thought_signature and (calls or parts):
            (calls[0] if calls else parts[-1])["thoughtSignature"] = b.thought_signature
        return parts + calls

    def _response(self, model: str, parts: list[dict[str, Any]], finish: str | None,
                  usage: dict[str, Any]) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": RESPONSE_ID}

    def _final(self, model: str) -> dict[str, Any]:
        b = self.behaviour
        if b.block_reason:
            return {"promptFeedback": {"blockReason": b.block_reason}, "usageMetadata": b.usage,
                    "modelVersion": model, "responseId": RESPONSE_ID}
        return self._response(model, self._parts(), b.finish_reason, b.usage)

    async def _generate(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        self._check_request(body)
        if self.behaviour.answer is not None:
            return web.Response(body=self.behaviour.answer, content_type="application/json")
        return web.json_response(self._final(model))

    def _chunks(self, model: str) -> list[dict[str, Any]]:
        """The stream: a chunk per word (usage so far: the prompt), the calls, then the finish."""
        b = self.behaviour
        if b.block_reason:
            return [self._final(model)]
        prompt = {k: v for k, v in b.usage.items() if k.startswith("prompt")}
        prompt["totalTokenCount"] = b.usage.get("promptTokenCount", 0)
        chunks = []
        if b.thoughts:
            chunks.append(self._response(model, [{"text": b.thoughts, "thought": True}], None, prompt))
        for i, word in enumerate(b.words):
            chunks.append(self._response(model, [{"text": (" " if i else "") + word}], None, prompt))
        calls = [p for p in self._parts() if "functionCall" in p]
        if calls:
            chunks.append(self._response(model, calls, None, prompt))
        last: dict[str, Any] = {"text": ""}
        if b.thought_signature and not calls:
            last["thoughtSignature"] = b.thought_signature
        chunks.append(self._response(model, [last], b.finish_reason, b.usage))
        return chunks

    async def _stream(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        self._check_request(body)
        b = self.behaviour
        chunks = self._chunks(model)
        if request.query.get("alt") != "sse":  # without alt=sse Google streams one JSON array
            return web.Response(body=orjson.dumps(chunks), content_type="application/json")
        frames = b.stream_frames
        if frames is None:
            frames = [b"data: " + orjson.dumps(chunk) + b"\r\n\r\n" for chunk in chunks]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, frame in enumerate(frames):
            if b.cut_after_chunks is not None and i == b.cut_after_chunks:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if b.stream_error_after is not None and i == b.stream_error_after:
                error = {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                   "status": "UNAVAILABLE"}}
                await resp.write(b"data: " + orjson.dumps(error) + b"\r\n\r\n")
                break
            await resp.write(frame)
        await resp.write_eof()
        return resp

    # --- embeddings and token counts ------------------------------------------------------
    async def _embed(self, request: web.Request, model: str, body: dict[str, Any]) -> web.Response:
        _unknown(body, frozenset({"requests"}), "")
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise Rejected("* BatchEmbedContentsRequest.requests: requests is not specified")
        embeddings = []
        for i, item in enumerate(requests):
            _unknown(item, frozenset({"model", "content", "taskType", "title", "outputDimensionality"}),
                     f"requests[{i}]")
            if item.get("model") != f"models/{model}":
                raise Rejected(f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be "
                               f"models/{model}, as in the URL")
            text = "".join(p.get("text", "") for p in item["content"]["parts"])
            size = item.get("outputDimensionality") or self.behaviour.embedding_dimensions
            digest = hashlib.sha256(text.encode()).digest()
            embeddings.append({"values": [round((digest[k % 32] - 128) / 128, 6) for k in range(size)]})
        return web.json_response({"embeddings": embeddings})

    async def _count(self, request: web.Request, model: str, body: dict[str, Any]) -> web.Response:
        _unknown(body, frozenset({"contents", "generateContentRequest"}), "")
        contents = body.get("contents") or body.get("generateContentRequest", {}).get("contents", [])
        words = sum(len(p.get("text", "").split()) for c in contents for p in c.get("parts", []))
        return web.json_response({"totalTokens": words, "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": words}]})


def _unknown(obj: Any, known: frozenset[str], where: str) -> None:
    """Google's answer to a field its proto does not declare."""
    if not isinstance(obj, dict):
        raise Rejected(f"Invalid JSON payload received. Expected an object at '{where}'.")
    for key in obj:
        if key not in known:
            at = f" at '{where}'" if where else ""
            raise Rejected(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.')


def _check_schema(schema: Any, where: str) -> None:
    """The OpenAPI subset Gemini accepts for `parameters` and `responseSchema`."""
    _unknown(schema, _SCHEMA_FIELDS, where)
    if "type" in schema and schema["type"] not in _SCHEMA_TYPES:
        raise Rejected(f"Invalid value at '{where}.type', \"{schema['type']}\"")
    for name, sub in schema.get("properties", {}).items():
        _check_schema(sub, f"{where}.properties[{name}].value")
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")
    for k, sub in enumerate(schema.get("anyOf", [])):
        _check_schema(sub, f"{where}.any_of[{k}]")
