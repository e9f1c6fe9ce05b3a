"""Usage accounting: the one place every usage record goes through.

HTTP responses and streams are recorded by the observe middleware once the exchange
ends; a realtime session records each `response.done` as it passes. Totals are kept
in memory per (key, model, provider); metrics and token rate limits read them.
"""

from __future__ import annotations

import attrs
from aiohttp import web

from .usage import Usage

__all__ = ["ACCOUNTING", "Accounting", "UsageTotals"]

OVERFLOW_MODEL = "(other)"  # where new models go once the table is full


@attrs.define(slots=True)
class UsageTotals:
    """Running totals for one (key, model, provider)."""

    records: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, usage: Usage) -> None:
        self.records += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_tokens += usage.cached_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        self.reasoning_tokens += usage.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Accounting:
    """In-memory usage totals; bounded, since model names come from clients."""

    __slots__ = ("_max_entries", "_totals")

    def __init__(self, max_entries: int = 10_000) -> None:
        self._totals: dict[tuple[str, str, str], UsageTotals] = {}
        self._max_entries = max_entries

    def record(self, identity: str, model: str, provider: str, usage: Usage) -> None:
        """Add one usage record (synchronous, so a cancelled request still counts)."""
        key = (identity, model, provider)
        totals = self._totals.get(key)
        if totals is None:
            if len(self._totals) >= self._max_entries:
                key = (identity, OVERFLOW_MODEL, provider)
                totals = self._totals.get(key)
            if totals is None:
                totals = self._totals[key] = UsageTotals()
        totals.add(usage)

    def totals(self, identity: str | None = None, model: str | None = None) -> UsageTotals:
        """Sum over every entry matching the given key and/or model."""
        out = UsageTotals()
        for (who, what, _), entry in self._totals.items():
            if (identity is None or who == identity) and (model is None or what == model):
                out.records += entry.records
                out.input_tokens += entry.input_tokens
                out.output_tokens += entry.output_tokens
                out.cached_tokens += entry.cached_tokens
                out.cache_write_tokens += entry.cache_write_tokens
                out.reasoning_tokens += entry.reasoning_tokens
        return out

    def entries(self) -> dict[tuple[str, str, str], UsageTotals]:
        """A snapshot of every (key, model, provider) → totals."""
        return {k: attrs.evolve(v) for k, v in self._totals.items()}


# Per application rather than per config snapshot, so totals survive a config reload.
ACCOUNTING: web.AppKey[Accounting] = web.AppKey("accounting", Accounting)
