"""Token usage in one normalised shape, read from and written to every format.

`input_tokens` is the *total* prompt size (cached and cache-written included, as in
OpenAI's `prompt_tokens`); `cached_tokens` and `cache_write_tokens` are subsets of
it. `reasoning_tokens` is a subset of `output_tokens`. Mapping rules follow
wire-formats.md 6.4: nothing is counted twice and nothing is lost. Readers never fail:
fields of the wrong type count as 0 (usage is metadata; a provider's bad count must not
cost the client its answer).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Usage", "asks_for_stream_usage"]


def asks_for_stream_usage(body: dict[str, Any]) -> bool:
    """A Chat Completions request that wants the final usage chunk (`stream_options.include_usage`)."""
    opts = body.get("stream_options")
    return isinstance(opts, dict) and opts.get("include_usage") is True


def _int(value: Any) -> int:
    # Counts of 2**53 and more are nonsense, and sums of them would not fit JSON's int64.
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53 else 0


_EMPTY: dict[str, Any] = {}


@attrs.define(slots=True)
class Usage:
    """Normalised token counts for one exchange."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        """Add another record's counts (a realtime session sums its responses)."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens

    # --- readers -------------------------------------------------------------
    # A reader takes whatever the provider sent as `usage`, never fails, and ignores what
    # has the wrong type: a usage that is not an object, a count that is not a positive
    # integer (below 2**53), a details field that is not an object all count as 0.
    @classmethod
    def from_chat(cls, u: Any) -> Usage:
        """From Chat Completions / Embeddings `usage`."""
        if not isinstance(u, dict):
            return cls()
        p = u.get("prompt_tokens_details")
        p = p if isinstance(p, dict) else _EMPTY
        c = u.get("completion_tokens_details")
        c = c if isinstance(c, dict) else _EMPTY
        return cls(
            input_tokens=_int(u.get("prompt_tokens")),
            output_tokens=_int(u.get("completion_tokens")),
            cached_tokens=_int(p.get("cached_tokens")),
            cache_write_tokens=_int(p.get("cache_write_tokens")),
            reasoning_tokens=_int(c.get("reasoning_tokens")),
        )

    @classmethod
    def from_responses(cls, u: Any) -> Usage:
        """From Responses API / Realtime `usage` (input/output naming)."""
        if not isinstance(u, dict):
            return cls()
        i = u.get("input_tokens_details") or u.get("input_token_details")
        i = i if isinstance(i, dict) else _EMPTY
        o = u.get("output_tokens_details") or u.get("output_token_details")
        o = o if isinstance(o, dict) else _EMPTY
        return cls(
            input_tokens=_int(u.get("input_tokens")),
            output_tokens=_int(u.get("output_tokens")),
            cached_tokens=_int(i.get("cached_tokens")),
            cache_write_tokens=_int(i.get("cache_write_tokens")),
            reasoning_tokens=_int(o.get("reasoning_tokens")),
        )

    @classmethod
    def from_anthropic(cls, u: Any) -> Usage:
        """From Anthropic `usage`, whose `input_tokens` excludes cache reads/writes."""
        if not isinstance(u, dict):
            return cls()
        read = _int(u.get("cache_read_input_tokens"))
        write = _int(u.get("cache_creation_input_tokens"))
        details = u.get("output_tokens_details")
        details = details if isinstance(details, dict) else _EMPTY
        return cls(
            input_tokens=_int(u.get("input_tokens")) + read + write,
            output_tokens=_int(u.get("output_tokens")),
            cached_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=_int(details.get("thinking_tokens")),
        )

    # --- writers -------------------------------------------------------------
    def to_chat(self) -> dict[str, Any]:
        """Chat Completions `usage` object."""
        prompt_details: dict[str, int] = {"cached_tokens": self.cached_tokens}
        if self.cache_write_tokens:
            prompt_details["cache_write_tokens"] = self.cache_write_tokens
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def to_responses(self) -> dict[str, Any]:
        """Responses API `usage` object."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }

    def to_anthropic(self) -> dict[str, Any]:
        """Anthropic `usage` object (cache tokens split out of `input_tokens`)."""
        return {
            "input_tokens": max(0, self.input_tokens - self.cached_tokens - self.cache_write_tokens),
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cached_tokens,
        }
