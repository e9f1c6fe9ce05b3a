"""A fake Amazon Bedrock runtime (Converse, ConverseStream, InvokeModel for embedders) that verifies every request's
SigV4 signature by recomputing it with botocore, checks the Converse rules the real service
enforces (no `model` in the body, toolConfig whenever tool blocks are in the history, tool
names within `[a-zA-Z0-9_-]{1,64}`), and streams real eventstream binary frames."""

from __future__ import annotations

import asyncio
import binascii
import datetime
import itertools
import re
import struct
from typing import Any
from urllib.parse import unquote

import attrs
import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fake_upstreams import Recorded

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def eventstream_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One eventstream message: prelude (total and headers length, CRC32), string headers,
    payload, message CRC32."""
    head = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        head += struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + head + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return eventstream_frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                             orjson.dumps(payload))


def exception(kind: str, message: str) -> bytes:
    return eventstream_frame({":exception-type": kind, ":content-type": "application/json",
                              ":message-type": "exception"}, orjson.dumps({"message": message}))


@attrs.define
class BedrockBehaviour:
    text: str = "Hello from fake Bedrock"
    tool_call: dict[str, Any] | None = None  # {"name", "input"}: answered as a toolUse
    error: tuple[int, str, str] | None = None  # (status, x-amzn-ErrorType, message)
    stream_exception: str | None = None  # an exception frame after the first text delta
    usage: dict[str, int] = attrs.Factory(lambda: {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17,
                                                   "cacheReadInputTokens": 4})


class FakeBedrock:
    """`POST /model/{modelId}/converse[-stream]` and `/invoke`, signed by the given credentials only."""

    def __init__(self, access_key: str, secret_key: str, region: str, session_token: str | None = None,
                 api_key: str | None = None) -> None:
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.region, self.api_key = region, api_key
        self.behaviour = BedrockBehaviour()
        self.requests: list[Recorded] = []
        self.raw_paths: list[str] = []
        self.models: list[str] = []
        self.verified = 0
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self.call)

    def _error(self, status: int, error_type: str, message: str) -> web.Response:
        return web.Response(status=status, body=orjson.dumps({"message": message}), content_type="application/json",
                            headers={"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"})

    def _signature_problem(self, request: web.Request, body: bytes) -> str | None:
        if self.api_key is not None:
            return None if request.headers.get("Authorization") == f"Bearer {self.api_key}" else "bad API key"
        found = _AUTH.match(request.headers.get("Authorization", ""))
        if found is None:
            return "Authorization header missing or malformed"
        key, day, region, service, signed, signature = found.groups()
        amz_date = request.headers.get("X-Amz-Date", "")
        if (key, region, service) != (self.credentials.access_key, self.region, "bedrock") or amz_date[:8] != day:
            return "credential scope mismatch"
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300:
            return "signature expired"
        if self.credentials.token is not None and request.headers.get("X-Amz-Security-Token") != self.credentials.token:
            return "security token missing"
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "host and x-amz-date must be signed"
        redo = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}", data=body,
                          headers={n: request.headers[n] for n in names if n in request.headers})
        redo.context["timestamp"] = amz_date
        auth = SigV4Auth(self.credentials, "bedrock", self.region)
        expected = auth.signature(auth.string_to_sign(redo, auth.canonical_request(redo)), redo)
        return None if expected == signature else "The request signature we calculated does not match"

    async def call(self, request: web.Request) -> web.StreamResponse:
        rec = await Recorded.of(request)
        self.requests.append(rec)
        self.raw_paths.append(request.raw_path)
        problem = self._signature_problem(request, rec.body)
        if problem is not None:
            return self._error(403, "InvalidSignatureException", problem)
        self.verified += 1
        parts = request.raw_path.partition("?")[0].split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in ("converse", "converse-stream", "invoke"):
            return self._error(404, "UnknownOperationException", "unknown operation")
        self.models.append(unquote(parts[2]))
        b = self.behaviour
        if b.error is not None:
            return self._error(*b.error)
        body = rec.json()
        if parts[3] == "invoke":
            return _embeddings(unquote(parts[2]), body)
        problem = _converse_problem(body)
        if problem is not None:
            return self._error(400, "ValidationException", problem)
        content: list[dict[str, Any]] = [{"text": b.text}]
        if b.tool_call is not None:
            content.append({"toolUse": {"toolUseId": "tooluse_1", **b.tool_call}})
        stop = "tool_use" if b.tool_call is not None else "end_turn"
        if parts[3] == "converse":
            return web.json_response({"output": {"message": {"role": "assistant", "content": content}},
                                      "stopReason": stop, "usage": b.usage, "metrics": {"latencyMs": 9}})
        return await self._stream(request, content, stop)

    async def _stream(self, request: web.Request, content: list[dict[str, Any]], stop: str) -> web.StreamResponse:
        b = self.behaviour
        frames = [event("messageStart", {"role": "assistant"})]
        words = b.text.split(" ")
        for i, word in enumerate(words):
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 0,
                                                      "delta": {"text": (" " if i else "") + word}}))
            if i == 0 and b.stream_exception is not None:
                frames.append(exception(b.stream_exception, "Too many tokens, please wait."))
        frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        if b.tool_call is not None:
            use = content[1]["toolUse"]
            arguments = orjson.dumps(use["input"]).decode()
            frames.append(event("contentBlockStart", {"contentBlockIndex": 1, "start": {
                "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                frames.append(event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}}))
            frames.append(event("contentBlockStop", {"contentBlockIndex": 1}))
        frames.append(event("messageStop", {"stopReason": stop}))
        frames.append(event("metadata", {"usage": b.usage, "metrics": {"latencyMs": 9}}))
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        raw = b"".join(frames)
        for i in range(len(raw)):  # split at every byte
            await resp.write(raw[i : i + 1])
            if i % 64 == 0:
                await asyncio.sleep(0)
        await resp.write_eof()
        return resp


def embedding_of(text: str, size: int = 4) -> list[float]:
    """The fake's embedding of `text`: a small vector that tells texts apart."""
    return [float(len(text)), *(0.25 * (i + 1) for i in range(size - 1))]


def _embeddings(model: str, body: Any) -> web.Response:
    """InvokeModel for Titan (`inputText` only) and Cohere (`texts` + `input_type`) embedders,
    refusing bodies the real models would (a ValidationException)."""
    def invalid(message: str) -> web.Response:
        return web.Response(status=400, body=orjson.dumps({"message": message}), content_type="application/json",
                            headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/"})

    if model.startswith("cohere.embed"):
        texts = body.get("texts")
        if set(body) - {"texts", "input_type", "truncate", "embedding_types"} or not isinstance(texts, list):
            return invalid("Malformed input request: extraneous key")
        if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering"):
            return invalid("Malformed input request: #: required key [input_type] not found")
        vectors = [embedding_of(t) for t in texts]
        embeddings: Any = {"float": vectors} if body.get("embedding_types") else vectors
        return web.json_response({"embeddings": embeddings, "id": "emb-1", "texts": texts,
                                  "response_type": "embeddings_floats"})
    if not model.startswith("amazon.titan-embed"):
        return invalid("The provided model identifier is invalid.")
    allowed = {"inputText"} if model.startswith("amazon.titan-embed-text-v1") else {
        "inputText", "dimensions", "normalize", "embeddingTypes"}
    text = body.get("inputText")
    if set(body) - allowed or not isinstance(text, str):
        return invalid("Malformed input request: extraneous key or inputText missing")
    size = body.get("dimensions", 4)
    return web.json_response({"embedding": embedding_of(text, size), "inputTextTokenCount": len(text.split())})


def _converse_problem(body: Any) -> str | None:
    """What the real Converse API would refuse in this body, or None."""
    if not isinstance(body, dict) or "model" in body or not isinstance(body.get("messages"), list):
        return "Malformed input request: extraneous key [model] is not permitted" if isinstance(body, dict) else "bad"
    has_tool_blocks = False
    roles = []
    for msg in body["messages"]:
        roles.append(msg.get("role"))
        for block in msg.get("content", []):
            if "toolUse" in block or "toolResult" in block:
                has_tool_blocks = True
            if "toolUse" in block and not _TOOL_NAME.match(block["toolUse"]["name"]):
                return "Value at 'messages.toolUse.name' failed to satisfy constraint"
    if any(a == b for a, b in itertools.pairwise(roles)) or (roles and roles[0] != "user"):
        return "A conversation must alternate between user and assistant roles"
    tools = (body.get("toolConfig") or {}).get("tools")
    if has_tool_blocks and not tools:
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    for tool in tools or []:
        if not _TOOL_NAME.match(tool["toolSpec"]["name"]):
            return "Value at 'toolConfig.tools.1.member.toolSpec.name' failed to satisfy constraint"
    return None
