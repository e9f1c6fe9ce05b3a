"""One upstream event stream to one client stream: an SSE parser feeding a translator (sans-IO)."""

from __future__ import annotations

from ..sse import SSEParser, encode_event
from .json_values import loads_or_none
from .stream import StreamTranslator

__all__ = ["StreamPipe"]


class StreamPipe:
    """Feed the upstream's chunks as they arrive; get the bytes to send the client."""

    __slots__ = ("parser", "translator")

    def __init__(self, translator: StreamTranslator) -> None:
        self.parser = SSEParser()
        self.translator = translator

    def feed(self, chunk: bytes) -> bytes:
        """The client bytes for one upstream chunk (empty while an event is incomplete);
        SSEError (a MalformedUpstream) when an event outgrows the parser's limit."""
        block = self.parser.feed_block(chunk)
        return self.translator.relay_block(block) if block else b""

    @property
    def over(self) -> bool:
        """Nothing more from upstream can be relayed (failed, or a translated stream ended)."""
        translator = self.translator
        return translator.failed or (translator.done and not translator.raw)

    def finish(self) -> bytes:
        """The upstream ended: a final event left without its blank line (relayed by a raw
        relay only when its data is whole), then the closing frames."""
        translator = self.translator
        tail: list[bytes] = []
        for event in self.parser.finish():
            if not translator.raw or event.data == b"[DONE]" or loads_or_none(event.data) is not None:
                tail.append(translator.relay_block(encode_event(event.data, event.event)))
        return b"".join(tail + translator.finish())

    def fail(self, message: str, status: int) -> bytes:
        """The stream cannot go on: the error frame in the client's format (once)."""
        return b"".join(self.translator.fail(message, status))
