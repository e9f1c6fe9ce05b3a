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
    query: str
    headers: dict[str, str]
    body: bytes

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
    hold_last: asyncio.Event | None = None  # wait for this before the final chunks
    redirect_to: str | None = None
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
        rec = Recorded(request.method, request.path, request.query_string, dict(request.headers),
                       await request.read())
        self.requests.append(rec)
        return rec

    async def _failures(self) -> web.Response | None:
        b = self.behaviour
        if b.hang:
            await asyncio.sleep(3600)
        if b.redirect_to:
            return web.Response(status=307, headers={"Location": b.redirect_to})
        if b.status >= 400:
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
        if not body.get("stream"):
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": b.usage,
            })
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        base: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                "system_fingerprint": "fp_fake"}
        if include_usage:
            base["usage"] = None
        frames = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]}]
        frames += [{**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + w},
                                         "finish_reason": None}]} for i, w in enumerate(b.words)]
        frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            frames.append({**base, "choices": [], "usage": b.usage})
        raw = [b"data: " + orjson.dumps(f) + b"\n\n" for f in frames] + [b"data: [DONE]\n\n"]
        return await self._stream(request, raw)

    async def _stream(self, request: web.Request, raw: list[bytes]) -> web.StreamResponse:
        b = self.behaviour
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
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
        return web.json_response({"path": rec.path, "query": rec.query, "method": rec.method,
                                  "body_len": len(rec.body)}, headers={"X-Upstream": "fake"})
