"""Fast checks of the harness itself: wire shapes, knob parsing, wrk parsing, a short load."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from bench import upstream, wrk
from bench.driver import run_load
from bench.results import percentile
from bench.scenarios import SCENARIOS, select

WRK_TEXT = """\
Running 1s test @ http://127.0.0.1:45115/v1/nope
  1 threads and 8 connections
  Latency Distribution
     50%  457.00us
     75%  513.00us
     90%  663.00us
     99%    1.93ms
  17540 requests in 1.10s, 2.88MB read
  Non-2xx or 3xx responses: 17
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  15946.18
"""


def _events(frames: tuple[bytes, ...]) -> list[dict[str, object] | str]:
    out: list[dict[str, object] | str] = []
    for frame in frames:
        data = frame.split(b"data: ", 1)[1].strip()
        out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return out


def test_openai_stream_ends_with_usage_chunk_then_done() -> None:
    events = _events(upstream.openai_frames("m", 3, include_usage=True))
    assert events[-1] == "[DONE]"
    usage_chunk, finish_chunk = events[-2], events[-3]
    assert isinstance(usage_chunk, dict) and usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 12, "completion_tokens": 3,
                                    "total_tokens": 15}
    assert isinstance(finish_chunk, dict) and finish_chunk["usage"] is None
    assert finish_chunk["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    assert len(events) == 1 + 3 + 1 + 1 + 1  # role, content, finish, usage, DONE


def test_openai_stream_without_usage_has_no_usage_key() -> None:
    events = _events(upstream.openai_frames("m", 2, include_usage=False))
    assert all("usage" not in e for e in events if isinstance(e, dict))


def test_gemini_stream_is_what_the_gateways_translator_reads_to_the_end() -> None:
    from gateway.formats.chat_on_gemini import ChatOnGeminiStream
    from gateway.formats.stream_pipe import StreamPipe

    pipe = StreamPipe(ChatOnGeminiStream("m", include_usage=True))
    out = pipe.feed(b"".join(upstream.gemini_frames("m", 3))) + pipe.finish()
    assert pipe.translator.done and not pipe.translator.failed
    assert pipe.translator.usage.to_chat()["completion_tokens"] == 3
    chunks = [json.loads(f[6:]) for f in out.split(b"\n\n") if f.startswith(b"data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "tok0 tok1 tok2 "
    whole = json.loads(upstream.gemini_json("m", 3))
    assert whole["candidates"][0]["finishReason"] == "STOP"


def test_bedrock_stream_is_what_the_gateways_provider_and_translator_read_to_the_end() -> None:
    from gateway.formats.chat_on_converse import ChatOnConverseStream
    from gateway.formats.stream_pipe import StreamPipe
    from gateway.providers.bedrock import _Bytes, _EventStreamBody

    async def decoded() -> bytes:
        body = _EventStreamBody(_Bytes(b"".join(upstream.bedrock_frames(3))))
        out = b""
        while chunk := await body.readany():
            out += chunk
        return out

    pipe = StreamPipe(ChatOnConverseStream("m", {"stream_options": {"include_usage": True}}))
    out = pipe.feed(asyncio.run(decoded())) + pipe.finish()
    assert pipe.translator.done and not pipe.translator.failed
    assert pipe.translator.usage.to_chat()["completion_tokens"] == 3
    chunks = [json.loads(f[6:]) for f in out.split(b"\n\n") if f.startswith(b"data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "tok0 tok1 tok2 "
    whole = json.loads(upstream.bedrock_json(3))
    assert whole["stopReason"] == "end_turn" and whole["usage"]["outputTokens"] == 3


def test_anthropic_stream_event_order() -> None:
    frames = upstream.anthropic_frames("m", 2)
    names = [f.split(b"\n", 1)[0].decode() for f in frames]
    assert names == ["event: message_start", "event: content_block_start",
                     "event: content_block_delta", "event: content_block_delta",
                     "event: content_block_stop", "event: message_delta", "event: message_stop"]


def test_model_name_knobs() -> None:
    knobs = upstream.parse_knobs("bench-lat50-gap5-chunks7-idle", 0, 20)
    assert knobs == upstream.Knobs(latency=0.05, gap=0.005, chunks=7, idle=True)
    assert upstream.parse_knobs("gpt-4o", 10, 20) == upstream.Knobs(0.01, None, 20, False)


def test_wrk_text_output_is_parsed() -> None:
    result = wrk.parse_text(WRK_TEXT)
    assert (result.requests, result.ok, result.errors) == (17540, 17523, 20)
    assert result.p50_ms == 0.457 and result.p99_ms == 1.93


def test_wrk_lua_script_posts_the_body() -> None:
    script = wrk.lua_script(b'{"a":"b"}', {"x-api-key": 'k"1'})
    assert 'wrk.body = [==[{"a":"b"}]==]' in script
    assert 'wrk.headers["x-api-key"] = "k\\"1"' in script


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99)) == (50.0, 99.0)
    assert percentile([], 50) is None


def test_select_by_exact_name_or_prefix() -> None:
    assert [s.name for s in select("stream")] == ["stream"]
    assert [s.name for s in select("chat")] == ["chat-c1", "chat-c32", "chat-c128"]
    assert len(select(None)) == len(SCENARIOS)


def test_python_driver_against_the_fake_upstream() -> None:
    async def scenario() -> None:
        fake = upstream.FakeUpstream(latency_ms=0, chunks=20, idle_seconds=1)
        server = web.Server(fake.handle)
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(server, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            body = json.dumps({"model": "bench", "stream": True}).encode()
            result = await run_load(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                    {"Content-Type": "application/json"}, 4, 0.3)
        finally:
            listener.close()
            await server.shutdown(1)
        assert result.ok > 0 and result.errors == 0
        assert result.ttfb_p50_ms is not None and result.p50_ms is not None

    asyncio.run(scenario())
