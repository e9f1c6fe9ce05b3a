"""The base of every stream translator and same-format relay: the once-only ending (sans-IO)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..usage import Usage

__all__ = ["StreamTranslator"]


class StreamTranslator:
    """Turns the provider's event stream into the client's, one block of events at a time.

    `relay_block` takes a block of complete upstream events and returns the bytes for the
    client; `finish` the closing frames once upstream ends, `fail` one error frame in the
    client's format. Exactly one ending ever goes out: once `done` (the stream's own end
    was relayed) or `failed` (an error frame was) is set, `finish` and `fail` return [].
    `raw` relays send the upstream's own bytes (and read on after the end); translators
    don't. `usage` always holds the latest counts, so a cut stream still reports usage.

    `for_request(model, body, injected_usage)` makes the stream for one exchange: the
    client's model and request body, and whether the gateway asked the provider for a
    usage chunk the client did not ask for.
    """

    __slots__ = ("done", "failed", "usage")
    raw: ClassVar[bool] = False
    # The error message when upstream ends without the stream's own end.
    cut_message: ClassVar[str] = "upstream stream ended before it was complete"

    def __init__(self) -> None:
        self.usage = Usage()
        self.done = False
        self.failed = False

    @classmethod
    def for_request(cls, model: str, body: dict[str, Any], injected_usage: bool) -> StreamTranslator:
        raise NotImplementedError

    def relay_block(self, block: bytes) -> bytes:
        """The bytes to send the client for a block of complete upstream events."""
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        """Upstream ended: one error frame when the stream's own end never came, else []."""
        if self.done or self.failed:
            return []
        return self.fail(self.cut_message)

    def fail(self, message: str, status: int = 502) -> list[bytes]:
        """End the stream with one error frame (nothing follows it); [] once ended."""
        if self.done or self.failed:
            return []
        self.failed = True
        return [self.error_frame(message, status)]

    def error_frame(self, message: str, status: int) -> bytes:
        """One error event in the client's format."""
        raise NotImplementedError
