"""The built-in mock provider: answers in-process, deterministically, with no network.

Text echoes a little of the prompt; streams come in several chunks; usage counts are
consistent (one token per whitespace-separated word, plus 3 per message); Chat `n` gives
n identical choices; embeddings have the requested dimension. A body it cannot answer gets
an OpenAI-shaped 400, relayed like any provider's error. It answers Chat Completions, Responses and Embeddings
natively; other formats reach it through the gateway's translators.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import random
import struct
import time
from typing import Any, ClassVar

import orjson
from aiohttp import ClientSession, ClientTimeout
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..errors import NotFound, openai_error
from ..sse import DONE_FRAME, encode_event
from ..usage import asks_for_stream_usage
from .base import Provider, RealtimeSocket

__all__ = ["MockProvider", "MockResponse", "count_tokens", "reply_to"]

_JSON = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
_SSE = CIMultiDictProxy(CIMultiDict({"Content-Type": "text/event-stream"}))
DEFAULT_EMBEDDING_DIMENSIONS = 1536
MAX_CHOICES = 128  # OpenAI's limit for `n`


class _MockContent:
    """The body of an in-process answer, read like aiohttp's StreamReader (UpstreamBody)."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def readany(self) -> bytes:
        if not self._chunks:
            return b""
        await asyncio.sleep(0)  # a real stream yields to the loop between chunks
        return self._chunks.pop(0)

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all that is left when n < 0)."""
        rest = b"".join(self._chunks)
        if 0 <= n < len(rest):
            self._chunks = [rest[n:]]
            return rest[:n]
        self._chunks = []
        return rest

    def clear(self) -> None:
        self._chunks = []


class MockResponse:
    """An in-process answer, read like aiohttp's ClientResponse (UpstreamResponse)."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], chunks: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self.content = _MockContent(chunks)

    async def read(self) -> bytes:
        return await self.content.read()

    def close(self) -> None:
        self.content.clear()


def count_tokens(text: str) -> int:
    """The mock's tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def reply_to(last_user: str) -> str:
    """The mock's answer: a fixed preamble echoing the first words of the last user message."""
    words = last_user.split()[:8]
    echo = " ".join(words) if words else "(empty prompt)"
    return f"This is the mock provider answering: {echo}"


def _limit(words: list[str], cap: Any) -> tuple[list[str], bool]:
    if isinstance(cap, int) and not isinstance(cap, bool) and 0 < cap < len(words):
        return words[:cap], True
    return words, False


class MockProvider(Provider):
    family = "openai"
    in_process = True
    default_base_url = "http://mock.invalid/v1"
    endpoints: ClassVar[dict[str, str]] = {"completions": "", "responses": "", "embeddings": ""}
    native_responses = True

    async def send(self, session: ClientSession, timeout: ClientTimeout, route: str, url: URL,
                   headers: CIMultiDict[str], body: bytes, parsed: dict[str, Any] | None) -> MockResponse:
        """Answered in process, in the provider's own wire format (errors included)."""
        if parsed is None:
            parsed = orjson.loads(body)
        return await self.respond(route, parsed)

    async def respond(self, route: str, body: dict[str, Any]) -> MockResponse:
        """Answer one request in the provider's own wire format."""
        if route == "completions":
            return self._chat(body)
        if route == "responses":
            return self._responses(body)
        if route == "embeddings":
            return self._embeddings(body)
        raise NotFound(f"the mock provider does not serve {route}", code="unsupported_route")

    def realtime_socket(self, model: str) -> RealtimeSocket:
        """A Realtime session answered in-process (text only)."""
        from .mock_realtime import MockRealtimeSocket  # late: it imports this module's tokenizer

        return MockRealtimeSocket(model)

    # --- chat completions ----------------------------------------------------
    def _chat(self, body: dict[str, Any]) -> MockResponse:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty array", "messages")
        prompt_tokens = 0
        last_user = ""
        for m in messages:
            if not isinstance(m, dict):
                return _error(400, "each message must be an object", "messages")
            text = _text_of(m.get("content"))
            prompt_tokens += 3 + count_tokens(text)
            if m.get("role") == "user":
                last_user = text
        choices = 1 if body.get("n") is None else body["n"]
        if not isinstance(choices, int) or isinstance(choices, bool) or not 1 <= choices <= MAX_CHOICES:
            return _error(400, f"n must be an integer between 1 and {MAX_CHOICES}", "n")
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        words, truncated = _limit(reply_to(last_user).split(), cap)
        finish = "length" if truncated else "stop"
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": choices * len(words),
            "total_tokens": prompt_tokens + choices * len(words),
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        model = str(body.get("model", "mock"))
        cid = "chatcmpl-mock-" + hashlib.sha256(" ".join(words).encode()).hexdigest()[:12]
        created = int(time.time())
        indexes = range(choices)
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words), "refusal": None}
            return MockResponse(200, _JSON, [orjson.dumps({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": i, "message": message, "finish_reason": finish, "logprobs": None}
                            for i in indexes],
                "usage": usage,
            })])
        include_usage = asks_for_stream_usage(body)
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        if include_usage:
            base["usage"] = None

        def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            c = dict(base, choices=[{"index": index, "delta": delta, "finish_reason": finish_reason,
                                     "logprobs": None}])
            return encode_event(orjson.dumps(c))

        # With n > 1 the choices' chunks interleave, as OpenAI sends them.
        chunks = [chunk(i, {"role": "assistant", "content": ""}) for i in indexes]
        chunks += [chunk(i, {"content": w if j == 0 else " " + w}) for j, w in enumerate(words) for i in indexes]
        chunks += [chunk(i, {}, finish) for i in indexes]
        if include_usage:
            chunks.append(encode_event(orjson.dumps(dict(base, choices=[], usage=usage))))
        chunks.append(DONE_FRAME)
        return MockResponse(200, _SSE, chunks)

    # --- responses -------------------------------------------------------------
    def _responses(self, body: dict[str, Any]) -> MockResponse:
        raw_input = body.get("input")
        prompt_tokens = 0
        last_user = ""
        if isinstance(raw_input, str):
            prompt_tokens, last_user = 3 + count_tokens(raw_input), raw_input
        elif isinstance(raw_input, list):
            for item in raw_input:
                if not isinstance(item, dict):
                    return _error(400, "input items must be objects", "input")
                text = _text_of(item.get("content")) or str(item.get("output", "") or "")
                prompt_tokens += 3 + count_tokens(text)
                if item.get("role") == "user":
                    last_user = text
        else:
            return _error(400, "input must be a string or an array", "input")
        if isinstance(body.get("instructions"), str):
            prompt_tokens += 3 + count_tokens(body["instructions"])
        words, truncated = _limit(reply_to(last_user).split(), body.get("max_output_tokens"))
        text = " ".join(words)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        rid, mid = f"resp_mock{digest}", f"msg_mock{digest}"
        usage = {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(words),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + len(words),
        }
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"id": mid, "type": "message", "role": "assistant", "status": "completed", "content": [part]}
        response: dict[str, Any] = {
            "id": rid, "object": "response", "created_at": int(time.time()),
            "status": "incomplete" if truncated else "completed",
            "model": str(body.get("model", "mock")), "output": [item], "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
            "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
            "parallel_tool_calls": True, "temperature": body.get("temperature"),
            "tool_choice": "auto", "tools": [], "top_p": body.get("top_p"),
            "max_output_tokens": body.get("max_output_tokens"), "usage": usage,
        }
        if not body.get("stream"):
            return MockResponse(200, _JSON, [orjson.dumps(response)])
        seq = 0
        frames: list[bytes] = []

        def emit(kind: str, **fields: Any) -> None:
            nonlocal seq
            frames.append(encode_event(orjson.dumps({"type": kind, "sequence_number": seq, **fields}), kind))
            seq += 1

        pending = dict(response, status="in_progress", output=[], usage=None, incomplete_details=None)
        emit("response.created", response=pending)
        emit("response.in_progress", response=pending)
        emit("response.output_item.added", output_index=0,
             item=dict(item, status="in_progress", content=[]))
        ids = {"item_id": mid, "output_index": 0, "content_index": 0}
        emit("response.content_part.added", **ids, part=dict(part, text=""))
        for i, w in enumerate(words):
            emit("response.output_text.delta", **ids, delta=w if i == 0 else " " + w, logprobs=[])
        emit("response.output_text.done", **ids, text=text, logprobs=[])
        emit("response.content_part.done", **ids, part=part)
        emit("response.output_item.done", output_index=0, item=item)
        emit("response.incomplete" if truncated else "response.completed", response=response)
        return MockResponse(200, _SSE, frames)

    # --- embeddings ----------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any]) -> MockResponse:
        raw = body.get("input")
        inputs: list[str]
        if isinstance(raw, str):
            inputs = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
            inputs = list(raw)
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            inputs = [" ".join(map(str, raw))]
        elif isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
            inputs = [" ".join(map(str, x)) for x in raw]
        else:
            return _error(400, "input must be a string, an array of strings or token arrays", "input")
        dims = body.get("dimensions", DEFAULT_EMBEDDING_DIMENSIONS)
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 8192:
            return _error(400, "dimensions must be an integer between 1 and 8192", "dimensions")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return _error(400, 'encoding_format must be "float" or "base64"', "encoding_format")
        data = []
        tokens = 0
        for index, text in enumerate(inputs):
            tokens += max(1, count_tokens(text))
            vector = _vector(text, dims)
            embedding: Any = vector
            if fmt == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        out = {"object": "list", "data": data, "model": str(body.get("model", "mock")),
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return MockResponse(200, _JSON, [orjson.dumps(out)])


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for `text`."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    raw = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _error(status: int, message: str, param: str | None = None) -> MockResponse:
    return MockResponse(status, _JSON, [orjson.dumps(openai_error(message, "invalid_request_error", param=param))])
