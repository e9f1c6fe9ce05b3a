"""What each benchmark scenario sends, to which path, and at what concurrency."""

from __future__ import annotations

import json

import attrs

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
RESPONSES_PATH = "/v1/responses"
PROMPT = [{"role": "user", "content": "Say hello in twenty words."}]


@attrs.frozen
class Scenario:
    """One benchmark case, run against the direct upstream and against the gateway."""

    name: str
    title: str
    api: str  # the client's format: "openai", "anthropic" or "responses" (OpenAI Responses)
    stream: bool
    concurrency: int = 32
    model: str = "bench"
    ttfb: bool = False  # also measure time to first byte (Python driver, concurrency 1)
    idle_streams: int = 0  # > 0: open this many idle streams instead of a load run
    workers: int = 1  # gateway processes
    relay: bool = False  # add a row for the bare aiohttp relay (bench/bare_relay.py)
    note: str = ""

    @property
    def path(self) -> str:
        """The request path, on the gateway and on the upstream alike."""
        return {"openai": OPENAI_PATH, "responses": RESPONSES_PATH}.get(self.api, ANTHROPIC_PATH)

    def body(self, model: str | None = None) -> bytes:
        """The JSON request body, in the client's format."""
        payload: dict[str, object] = {"model": model or self.model, "max_tokens": 64,
                                      "messages": PROMPT}
        if self.api == "responses":
            payload = {"model": model or self.model, "max_output_tokens": 64, "input": PROMPT[0]["content"]}
        if self.stream:
            # No stream_options, as the OpenAI SDK sends by default: the gateway asks the
            # upstream for usage itself and strips that chunk again (its usual streaming path).
            payload["stream"] = True
        return json.dumps(payload, separators=(",", ":")).encode()

    def headers(self) -> dict[str, str]:
        """Client headers for the format: the gateway checks the key (bench config), the upstream ignores it."""
        if self.api in ("openai", "responses"):
            return {"Content-Type": "application/json", "Authorization": "Bearer bench-client"}
        return {"Content-Type": "application/json", "x-api-key": "bench-client",
                "anthropic-version": "2023-06-01"}

    def check(self, status: int, body: bytes) -> str | None:
        """Why a preflight response is not a complete answer, or None when it is."""
        if status >= 300:
            return f"HTTP {status}: {body[:300].decode(errors='replace')}"
        if self.stream:
            end = {"openai": b"data: [DONE]", "responses": b"response.completed"}.get(self.api, b"message_stop")
            return None if end in body else f"stream lacks {end.decode()!r}: {body[-200:]!r}"
        try:
            data = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        key = {"openai": "choices", "responses": "output"}.get(self.api, "content")
        return None if isinstance(data, dict) and key in data else f"no {key!r}: {body[:200]!r}"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("chat-c1", "Chat completion, non-streaming, concurrency 1", "openai", False, 1,
             relay=True),
    Scenario("chat-c32", "Chat completion, non-streaming, concurrency 32", "openai", False, 32),
    Scenario("virtual", "Virtual model (two targets, the first healthy), non-streaming, concurrency 32",
             "openai", False, 32, model="bench-virtual",
             note="compare the gateway with chat-c32 (the plain model)"),
    Scenario("chat-c128", "Chat completion, non-streaming, concurrency 128", "openai", False,
             128, relay=True),
    Scenario("stream", "Chat completion, streaming 20 chunks (one burst), concurrency 32",
             "openai", True, 32, ttfb=True, relay=True),
    Scenario("stream-paced", "Chat completion, streaming 20 chunks 5 ms apart, concurrency 64",
             "openai", True, 64, model="bench-gap5", relay=True,
             note="each chunk arrives on its own: per-chunk relay cost"),
    Scenario("anthropic-stream",
             "Anthropic client -> OpenAI provider, streaming 20 chunks, concurrency 32",
             "anthropic", True, 32, ttfb=True,
             note="direct = the upstream's own Anthropic endpoint"),
    Scenario("gemini", "Chat client -> Gemini provider, non-streaming, concurrency 32", "openai", False, 32,
             model="bench-gemini",
             note="direct = the upstream's own Chat endpoint; compare the gateway with chat-c32"),
    Scenario("gemini-stream", "Chat client -> Gemini provider, streaming 20 chunks, concurrency 32",
             "openai", True, 32, model="bench-gemini",
             note="direct = the upstream's own Chat endpoint; compare the gateway with stream"),
    Scenario("bedrock-stream", "Chat client -> Bedrock ConverseStream provider, streaming 20 chunks, concurrency 32",
             "openai", True, 32, model="bench-bedrock",
             note="direct = the upstream's own Chat endpoint; compare the gateway with stream (SigV4 included)"),
    Scenario("latency50", "Upstream latency 50 ms, non-streaming, concurrency 128", "openai",
             False, 128, model="bench-lat50", relay=True,
             note="direct ceiling is 128 / 50 ms = 2,560 req/s"),
    Scenario("idle", "1,000 concurrent idle streams (one chunk, then silence)", "openai", True,
             model="bench-idle", idle_streams=1000),
    Scenario("workers2", "--workers 2 scaling: non-streaming, concurrency 128", "openai", False,
             128, workers=2,
             note="on 2 cores the 2 workers share them with the upstream and the driver"),
)


def select(only: str | None) -> list[Scenario]:
    """Scenarios named in a comma list (exact name or prefix, e.g. ``chat``); all if None."""
    if not only:
        return list(SCENARIOS)
    chosen: list[Scenario] = []
    for wanted in (name.strip() for name in only.split(",") if name.strip()):
        matches = [s for s in SCENARIOS if s.name == wanted] or [
            s for s in SCENARIOS if s.name.startswith(wanted)]
        if not matches:
            names = ", ".join(s.name for s in SCENARIOS)
            raise SystemExit(f"no scenario matches {wanted!r}; choose from: {names}")
        chosen += [s for s in matches if s not in chosen]
    return [s for s in SCENARIOS if s in chosen]
