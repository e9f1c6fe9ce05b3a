"""A fast fake LLM upstream: OpenAI Chat Completions, Anthropic Messages, Gemini
``generateContent`` / ``streamGenerateContent?alt=sse`` and Bedrock ``/model/{id}/converse``
/ ``converse-stream`` (eventstream binary frames; signatures are not checked), JSON and SSE.

Every response body is built once per (API, model, stream, usage) and cached as bytes, and
requests go through aiohttp's low-level ``web.Server`` (no router, no middleware), so the
upstream stays cheap next to the gateway it feeds.

Per-request knobs ride in the model name (headers may not survive a gateway), as
dash-separated tokens, e.g. ``bench-lat50``, ``bench-idle``, ``bench-chunks100-gap5``:

- ``lat<N>``: wait N ms before answering (overrides ``--latency-ms``);
- ``gap<N>``: write each stream frame on its own, N ms apart (``gap0``: just yield between
  frames). Without it a stream's frames go out in ONE write: a frame per write costs the
  upstream a send() each, and under load a relay reads a burst in one go anyway;
- ``chunks<N>``: N content chunks (overrides ``--chunks``);
- ``idle``: send the first chunk, then hold the stream open for ``--idle-seconds``.

Usage: ``python -m bench.upstream --port 0`` prints ``READY <port>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from bench import eventstream
from bench.serving import run_server

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - orjson is a gateway dependency
    _loads = json.loads

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


CREATED = 1730000000
PROMPT_TOKENS = 12
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
EVENTSTREAM_HEADERS = {"Content-Type": "application/vnd.amazon.eventstream"}
JSON_CT = "application/json"


@attrs.frozen
class Knobs:
    """Behaviour for one model name: latency, chunk gap, chunk count, idle hold."""

    latency: float
    gap: float | None
    chunks: int
    idle: bool


@attrs.frozen
class Canned:
    """Precomputed reply: the whole body (JSON, or all SSE frames joined) and the frames."""

    body: bytes
    frames: tuple[bytes, ...] = ()

    @classmethod
    def stream(cls, frames: tuple[bytes, ...]) -> Canned:
        """A stream reply: its frames, and their concatenation for a one-write burst."""
        return cls(body=b"".join(frames), frames=frames)


def parse_knobs(model: str, latency_ms: float, chunks: int) -> Knobs:
    """Read the ``lat``/``gap``/``chunks``/``idle`` tokens out of a model name."""
    gap: float | None = None
    idle = False
    for token in model.split("-"):
        if token == "idle":
            idle = True
        elif token.startswith("lat") and token[3:].isdigit():
            latency_ms = float(token[3:])
        elif token.startswith("gap") and token[3:].isdigit():
            gap = float(token[3:]) / 1000
        elif token.startswith("chunks") and token[6:].isdigit():
            chunks = max(1, int(token[6:]))
    return Knobs(latency=latency_ms / 1000, gap=gap, chunks=chunks, idle=idle)


def _words(n: int) -> list[str]:
    return [f"tok{i} " for i in range(n)]


def openai_json(model: str, chunks: int) -> bytes:
    """A ``chat.completion`` body whose content is ``chunks`` words."""
    return _dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED,
        "model": model, "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0, "finish_reason": "stop", "logprobs": None,
            "message": {"role": "assistant", "content": "".join(_words(chunks)),
                        "refusal": None, "annotations": []},
        }],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks,
                  "total_tokens": PROMPT_TOKENS + chunks},
    })


def openai_frames(model: str, chunks: int, include_usage: bool) -> tuple[bytes, ...]:
    """``chat.completion.chunk`` SSE frames: content deltas, finish, [usage], ``[DONE]``."""
    base: dict[str, Any] = {
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
        "model": model, "system_fingerprint": "fp_bench",
    }
    if include_usage:
        base["usage"] = None

    def frame(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return b"data: " + _dumps({**base, "choices": [choice]}) + b"\n\n"

    frames = [frame({"role": "assistant", "content": ""}, None)]
    frames += [frame({"content": word}, None) for word in _words(chunks)]
    frames.append(frame({}, "stop"))
    if include_usage:
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks,
                 "total_tokens": PROMPT_TOKENS + chunks}
        frames.append(b"data: " + _dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return tuple(frames)


def anthropic_json(model: str, chunks: int) -> bytes:
    """A Messages API ``message`` body whose text is ``chunks`` words."""
    return _dumps({
        "id": "msg_bench", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "".join(_words(chunks))}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": chunks,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    })


def anthropic_frames(model: str, chunks: int) -> tuple[bytes, ...]:
    """Messages SSE: message_start, block start, ``chunks`` deltas, block stop, delta, stop."""

    def frame(data: dict[str, Any]) -> bytes:
        event = str(data["type"]).encode()
        return b"event: " + event + b"\ndata: " + _dumps(data) + b"\n\n"

    message: dict[str, Any] = {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }
    frames = [
        frame({"type": "message_start", "message": message}),
        frame({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}}),
    ]
    frames += [
        frame({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": word}})
        for word in _words(chunks)
    ]
    frames += [
        frame({"type": "content_block_stop", "index": 0}),
        frame({"type": "message_delta",
               "delta": {"stop_reason": "end_turn", "stop_sequence": None},
               "usage": {"output_tokens": chunks}}),
        frame({"type": "message_stop"}),
    ]
    return tuple(frames)


def gemini_json(model: str, chunks: int) -> bytes:
    """A ``GenerateContentResponse`` whose text is ``chunks`` words."""
    return _dumps(_gemini_chunk(model, "".join(_words(chunks)), "STOP", chunks))


def _gemini_chunk(model: str, text: str, finish: str | None, output_tokens: int) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage: dict[str, Any] = {"promptTokenCount": PROMPT_TOKENS, "totalTokenCount": PROMPT_TOKENS + output_tokens}
    if output_tokens:
        usage["candidatesTokenCount"] = output_tokens
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "bench"}


def gemini_frames(model: str, chunks: int) -> tuple[bytes, ...]:
    """``streamGenerateContent?alt=sse`` frames: a chunk per word, the last with the finish
    reason and the final usage; no end marker (Google closes the stream)."""
    words = _words(chunks)
    return tuple(b"data: " + _dumps(_gemini_chunk(model, word, "STOP" if i == chunks - 1 else None,
                                                  chunks if i == chunks - 1 else 0)) + b"\r\n\r\n"
                 for i, word in enumerate(words))


def _bedrock_usage(output_tokens: int) -> dict[str, int]:
    return {"inputTokens": PROMPT_TOKENS, "outputTokens": output_tokens, "totalTokens": PROMPT_TOKENS + output_tokens}


def bedrock_json(chunks: int) -> bytes:
    """A Converse answer whose text is ``chunks`` words."""
    return _dumps({"output": {"message": {"role": "assistant", "content": [{"text": "".join(_words(chunks))}]}},
                   "stopReason": "end_turn", "usage": _bedrock_usage(chunks), "metrics": {"latencyMs": 1}})


def bedrock_frames(chunks: int) -> tuple[bytes, ...]:
    """ConverseStream eventstream frames: messageStart, a contentBlockDelta per word,
    contentBlockStop, messageStop and the metadata event with usage."""
    deltas = [eventstream.event("contentBlockDelta", _dumps({"contentBlockIndex": 0, "delta": {"text": word}}))
              for word in _words(chunks)]
    return (eventstream.event("messageStart", b'{"role":"assistant"}'), *deltas,
            eventstream.event("contentBlockStop", b'{"contentBlockIndex":0}'),
            eventstream.event("messageStop", b'{"stopReason":"end_turn"}'),
            eventstream.event("metadata", _dumps({"usage": _bedrock_usage(chunks), "metrics": {"latencyMs": 1}})))


class FakeUpstream:
    """The request handler plus its caches of knobs and canned replies."""

    def __init__(self, latency_ms: float, chunks: int, idle_seconds: float) -> None:
        self.latency_ms = latency_ms
        self.chunks = chunks
        self.idle_seconds = idle_seconds
        self._knobs: dict[str, Knobs] = {}
        self._canned: dict[tuple[str, str, bool, bool], Canned] = {}

    def knobs(self, model: str) -> Knobs:
        """Knobs for a model name, parsed once."""
        found = self._knobs.get(model)
        if found is None:
            found = self._knobs[model] = parse_knobs(model, self.latency_ms, self.chunks)
        return found

    def canned(self, api: str, model: str, stream: bool, usage: bool, chunks: int) -> Canned:
        """The precomputed reply for one request shape."""
        key = (api, model, stream, usage)
        found = self._canned.get(key)
        if found is None:
            if api == "openai":
                found = (Canned.stream(openai_frames(model, chunks, usage)) if stream
                         else Canned(openai_json(model, chunks)))
            elif api == "gemini":
                found = Canned.stream(gemini_frames(model, chunks)) if stream else Canned(gemini_json(model, chunks))
            elif api == "bedrock":
                found = Canned.stream(bedrock_frames(chunks)) if stream else Canned(bedrock_json(chunks))
            else:
                found = (Canned.stream(anthropic_frames(model, chunks)) if stream
                         else Canned(anthropic_json(model, chunks)))
            self._canned[key] = found
        return found

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer ``POST /v1/chat/completions``, ``POST /v1/messages``, Gemini's
        ``POST /v1beta/models/{model}:generateContent`` / ``:streamGenerateContent`` and
        Bedrock's ``POST /model/{model}/converse`` / ``converse-stream``."""
        path = request.path
        gemini_model = ""
        method = ""
        if path.endswith("/chat/completions"):
            api = "openai"
        elif path.endswith("/messages"):
            api = "anthropic"
        elif path.startswith("/v1beta/models/"):
            api = "gemini"
            gemini_model, _, method = path[len("/v1beta/models/"):].partition(":")
            if method not in ("generateContent", "streamGenerateContent"):
                return web.Response(status=404, body=b'{"error":"not found"}', content_type=JSON_CT)
        elif path.startswith("/model/"):
            api = "bedrock"
            gemini_model, _, method = path[len("/model/"):].partition("/")
            if method not in ("converse", "converse-stream"):
                return web.Response(status=404, body=b'{"error":"not found"}', content_type=JSON_CT)
        else:
            return web.Response(status=404, body=b'{"error":"not found"}', content_type=JSON_CT)
        if request.method != "POST":
            return web.Response(status=405)
        try:
            payload = _loads(await request.read())
            if api == "gemini":
                model, stream = gemini_model, method == "streamGenerateContent"
            elif api == "bedrock":
                model, stream = gemini_model, method == "converse-stream"
            else:
                model = str(payload.get("model") or "bench")
                stream = bool(payload.get("stream"))
            options = payload.get("stream_options") or {}
            usage = api == "openai" and stream and bool(options.get("include_usage"))
        except (ValueError, AttributeError):
            return web.Response(status=400, body=b'{"error":"bad json"}', content_type=JSON_CT)
        knobs = self.knobs(model)
        canned = self.canned(api, model, stream, usage, knobs.chunks)
        if knobs.latency:
            await asyncio.sleep(knobs.latency)
        if not stream:
            return web.Response(body=canned.body, content_type=JSON_CT)
        response = web.StreamResponse(headers=EVENTSTREAM_HEADERS if api == "bedrock" else SSE_HEADERS)
        await response.prepare(request)
        if knobs.gap is None and not knobs.idle:
            await response.write(canned.body)
        else:
            await self._write_frames(response, canned.frames, knobs, api)
        await response.write_eof()
        return response

    async def _write_frames(
        self, response: web.StreamResponse, frames: tuple[bytes, ...], knobs: Knobs, api: str
    ) -> None:
        if knobs.idle:
            head = 1 if api == "openai" else 3  # Anthropic: start, block start, first delta
            await response.write(b"".join(frames[:head]))
            await asyncio.sleep(self.idle_seconds)
            frames = frames[head:]
        if knobs.gap is None:
            await response.write(b"".join(frames))
            return
        for frame in frames:
            await asyncio.sleep(knobs.gap)
            await response.write(frame)


async def serve(args: argparse.Namespace) -> None:
    """Listen until cancelled; print ``READY <port>`` once bound."""
    fake = FakeUpstream(args.latency_ms, args.chunks, args.idle_seconds)
    server = web.Server(fake.handle, handler_cancellation=True, access_log=None)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, args.host, args.port, backlog=4096)
    port = listener.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        listener.close()
        await server.shutdown(1)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="fixed delay before every response")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--idle-seconds", type=float, default=600.0,
                        help="how long 'idle' streams stay open after their first chunk")
    parser.add_argument("--no-uvloop", action="store_true", help="use the asyncio loop")
    args = parser.parse_args(argv)
    run_server(serve(args), args.no_uvloop)


if __name__ == "__main__":
    main()
