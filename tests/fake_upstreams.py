"""A fake OpenAI-compatible upstream that speaks the wire format faithfully and fails on demand."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
import orjson
from aiohttp import web


@attrs.define
class Recorded:
    method: str
    path: str
    query: str  # raw, as on the request line: a query encoded twice on the way shows here
    headers: dict[str, str]
    body: bytes

    @classmethod
    async def of(cls, request: web.Request) -> Recorded:
        """Everything the fake received, body included."""
        query = request.raw_path.partition("?")[2]
        return cls(request.method, request.path, query, dict(request.headers), await request.read())

    def json(self) -> Any:
        return orjson.loads(self.body)


@attrs.define
class Behaviour:
    """Knobs a test turns; defaults give a normal, fast answer."""

    words: list[str] = attrs.Factory(lambda: ["Hello", "from", "the", "fake", "upstream"])
    status: int = 200
    error_body: bytes | None = None
    error_headers: dict[str, str] = attrs.Factory(dict)
    hang: bool = False  # never send the response head
    chunk_delay: float = 0.0
    reset_after_chunks: int | None = None  # abort the connection mid-stream
    stall_after_chunks: int | None = None  # stop sending but keep the connection open
    stall_body: bool = False  # non-streaming and passthrough: the head and half the body, then nothing
    hold_last: asyncio.Event | None = None  # wait for this before the final chunks
    redirect_to: str | None = None
    tool_calls: list[dict[str, str]] = attrs.Factory(list)  # [{"name", "arguments"}] answered as tool calls
    answer: bytes | None = None  # a non-streaming chat answer sent as is (status 200), however wrong
    stream_frames: list[bytes] | None = None  # a chat stream's frames sent as is, however wrong
    stream_content_type: str = "text/event-stream"
    fail_times: int | None = None  # fail with `status` only for this many requests, then answer
    usage: dict[str, Any] = attrs.Factory(lambda: {
        "prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 0},
    })


class FakeOpenAI:
    """Records every request; `behaviour` decides the answer."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.behaviour = Behaviour()
        self.open_streams = 0
        self.closed_streams: list[float] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/v1/responses", self.responses)
        self.app.router.add_post("/v1/embeddings", self.embeddings)
        self.app.router.add_route("*", "/{tail:.*}", self.echo)

    async def _record(self, request: web.Request) -> Recorded:
        rec = await Recorded.of(request)
        self.requests.append(rec)
        return rec

    async def _failures(self) -> web.Response | None:
        b = self.behaviour
        if b.hang:
            await asyncio.sleep(3600)
        if b.redirect_to:
            return web.Response(status=307, headers={"Location": b.redirect_to})
        if b.status >= 400 and (b.fail_times is None or b.fail_times > 0):
            if b.fail_times:
                b.fail_times -= 1
            body = b.error_body or orjson.dumps({"error": {
                "message": f"fake failure {b.status}", "type": "server_error" if b.status >= 500 else "rate_limit",
                "param": None, "code": None}})
            return web.Response(status=b.status, body=body, content_type="application/json",
                                headers=b.error_headers)
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        failure = await self._failures()
        if failure is not None:
            return failure
        body = rec.json()
        b = self.behaviour
        cid, created, model = "chatcmpl-fake1", int(time.time()), body["model"]
        text = " ".join(b.words)
        calls = [{"id": f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                 for i, c in enumerate(b.tool_calls)]
        finish = "tool_calls" if calls else "stop"
        if b.answer is not None and not body.get("stream"):
            return web.Response(body=b.answer, content_type="application/json")
        if b.stream_frames is not None and body.get("stream"):
            return await self._stream(request, b.stream_frames)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            answer = orjson.dumps({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": b.usage,
            })
            if b.stall_body:
                return await self._stall_halfway(request, answer)
            return web.Response(body=answer, content_type="application/json")
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        base: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                "system_fingerprint": "fp_fake"}
        if include_usage:
            base["usage"] = None
        frames = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]}]
        frames += [{**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + w},
                                         "finish_reason": None}]} for i, w in enumerate(b.words)]
        for i, c in enumerate(calls):
            args = c["function"]["arguments"]
            half = len(args) // 2
            frames.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                {"index": i, "id": c["id"], "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": ""}}]}}]})
            for piece in (args[:half], args[half:]):
                frames.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                    {"index": i, "function": {"arguments": piece}}]}}]})
        frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            frames.append({**base, "choices": [], "usage": b.usage})
        raw = [b"data: " + orjson.dumps(f) + b"\n\n" for f in frames] + [b"data: [DONE]\n\n"]
        return await self._stream(request, raw)

    async def _stream(self, request: web.Request, raw: list[bytes]) -> web.StreamResponse:
        b = self.behaviour
        resp = web.StreamResponse(headers={"Content-Type": b.stream_content_type})
        await resp.prepare(request)
        self.open_streams += 1
        try:
            for i, frame in enumerate(raw):
                if b.reset_after_chunks is not None and i == b.reset_after_chunks:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if b.stall_after_chunks is not None and i == b.stall_after_chunks:
                    await asyncio.sleep(3600)
                if b.hold_last is not None and i == len(raw) - 2:
                    await b.hold_last.wait()
                if b.chunk_delay:
                    await asyncio.sleep(b.chunk_delay)
                await resp.write(frame)
            await resp.write_eof()
            return resp
        finally:
            self.open_streams -= 1
            self.closed_streams.append(time.monotonic())

    async def responses(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        failure = await self._failures()
        if failure is not None:
            return failure
        body = rec.json()
        text = " ".join(self.behaviour.words)
        usage = {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 5,
                 "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 14}
        item = {"id": "msg_fake", "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}
        response = {"id": "resp_fake", "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": body["model"], "output": [item], "usage": usage, "error": None,
                    "incomplete_details": None, "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
        if not body.get("stream"):
            return web.json_response(response)
        ids = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
        part = item["content"][0]  # type: ignore[index]
        events = [("response.created", {"response": {**response, "status": "in_progress", "output": [],
                                                     "usage": None}}),
                  ("response.output_item.added", {"output_index": 0,
                                                  "item": {**item, "status": "in_progress", "content": []}}),
                  ("response.content_part.added", {**ids, "part": {**part, "text": ""}}),
                  ("response.output_text.delta", {**ids, "delta": text, "logprobs": []}),
                  ("response.output_text.done", {**ids, "text": text, "logprobs": []}),
                  ("response.content_part.done", {**ids, "part": part}),
                  ("response.output_item.done", {"output_index": 0, "item": item}),
                  ("response.completed", {"response": response})]
        raw = [f"event: {t}\n".encode() + b"data: " + orjson.dumps({"type": t, "sequence_number": i, **d}) + b"\n\n"
               for i, (t, d) in enumerate(events)]
        return await self._stream(request, raw)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        body = rec.json()
        return web.json_response({"object": "list", "model": body["model"],
                                  "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
                                  "usage": {"prompt_tokens": 4, "total_tokens": 4}})

    async def echo(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        failure = await self._failures()
        if failure is not None:
            return failure
        answer = orjson.dumps({"path": rec.path, "query": rec.query, "method": rec.method, "body_len": len(rec.body)})
        if self.behaviour.stall_body:
            return await self._stall_halfway(request, answer)
        return web.Response(body=answer, content_type="application/json", headers={"X-Upstream": "fake"})

    async def _stall_halfway(self, request: web.Request, answer: bytes) -> web.StreamResponse:
        """Send the head and half of `answer`, then nothing (the connection stays open)."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(answer)
        await resp.prepare(request)
        await resp.write(answer[: len(answer) // 2])
        await asyncio.sleep(3600)
        return resp


@attrs.define
class AnthropicBehaviour:
    """What the fake Anthropic answers: content blocks, stop reason, usage, or an error."""

    content: list[dict[str, Any]] = attrs.Factory(lambda: [{"type": "text", "text": "Hello from fake Claude"}])
    stop_reason: Any = "end_turn"  # anything JSON, to send a wrong shape
    usage: dict[str, Any] = attrs.Factory(lambda: {
        "input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 30})
    status: int = 200
    error_type: str = "overloaded_error"
    stream_error_after: int | None = None  # send `event: error` after this many events
    cut_after: int | None = None  # drop the connection after this many events
    retry_after: str | None = "3"  # the retry-after header of an error answer
    fail_times: int | None = None  # the error status (and stream error) only for this many requests


class FakeAnthropic:
    """A fake Anthropic Messages API: JSON and the full SSE event sequence, count_tokens, errors."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.behaviour = AnthropicBehaviour()
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/messages/count_tokens", self.count_tokens)

    async def _record(self, request: web.Request) -> Recorded:
        rec = await Recorded.of(request)
        self.requests.append(rec)
        return rec

    async def count_tokens(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"input_tokens": 1234})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        b = self.behaviour
        failing = b.fail_times is None or b.fail_times > 0
        if b.fail_times and (b.status != 200 or b.stream_error_after is not None):
            b.fail_times -= 1
        if b.status != 200 and failing:
            headers = {"retry-after": b.retry_after} if b.retry_after is not None else {}
            return web.json_response({"type": "error", "error": {"type": b.error_type, "message": "fake says no"},
                                      "request_id": "req_fake"}, status=b.status, headers=headers)
        body = rec.json()
        # Vertex AI names the model in the path (rawPredict), Anthropic in the body.
        model = body.get("model") or request.match_info.get("model")
        message = {"id": "msg_fake01", "type": "message", "role": "assistant", "model": model,
                   "content": b.content, "stop_reason": b.stop_reason, "stop_sequence": None, "usage": b.usage}
        if not body.get("stream"):
            return web.json_response(message)
        events: list[dict[str, Any]] = [{"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None,
            "usage": {**b.usage, "output_tokens": 1}}}, {"type": "ping"}]
        for index, block in enumerate(b.content):
            if block["type"] == "text":
                events.append({"type": "content_block_start", "index": index,
                               "content_block": {"type": "text", "text": ""}})
                words = block["text"].split(" ")
                for i, w in enumerate(words):
                    events.append({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "text_delta", "text": (" " if i else "") + w}})
            elif block["type"] == "thinking":
                events.append({"type": "content_block_start", "index": index,
                               "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                events.append({"type": "content_block_delta", "index": index,
                               "delta": {"type": "thinking_delta", "thinking": block["thinking"]}})
                events.append({"type": "content_block_delta", "index": index,
                               "delta": {"type": "signature_delta", "signature": block["signature"]}})
            elif block["type"] == "tool_use":
                events.append({"type": "content_block_start", "index": index, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                args = orjson.dumps(block["input"]).decode()
                for piece in (args[: len(args) // 2], args[len(args) // 2:]):
                    events.append({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "input_json_delta", "partial_json": piece}})
            events.append({"type": "content_block_stop", "index": index})
        events.append({"type": "message_delta", "delta": {"stop_reason": b.stop_reason, "stop_sequence": None},
                       "usage": {"output_tokens": b.usage["output_tokens"]}})
        events.append({"type": "message_stop"})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, event in enumerate(events):
            if b.cut_after is not None and i == b.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if b.stream_error_after is not None and i == b.stream_error_after and failing:
                event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                await resp.write(b"event: error\ndata: " + orjson.dumps(event) + b"\n\n")
                break
            await resp.write(f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n")
        await resp.write_eof()
        return resp
