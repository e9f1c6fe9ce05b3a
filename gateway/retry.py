"""When to try again, and how long to wait: the retry policy of one request.

Retries happen only before the first byte reached the client. A failure is retryable when
the upstream could not be reached, sent nothing in time, or answered 429/500/502/503/504/529
(or an Anthropic `overloaded_error`). `Retry-After` up to `max_retry_after` is waited out on
the same target; a longer one moves to the next target at once. Otherwise the wait is
exponential with full jitter.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "retry_after_seconds", "is_retryable_status"]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def retry_after_seconds(headers: Mapping[str, str], now: Callable[[], datetime] = lambda: datetime.now(UTC),
                        ) -> float | None:
    """Seconds the upstream asked to wait (`retry-after-ms`, then `Retry-After` as seconds or an
    HTTP date); None when it asked nothing readable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0.0 and value == value:  # not NaN
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now()).total_seconds())
    return value if value >= 0.0 and value == value and value != float("inf") else None


@attrs.frozen
class RetryPolicy:
    """`[retry]`: attempts per request (all targets together), backoff base, longest Retry-After waited."""

    attempts: int = 3
    backoff: float = 0.2
    max_retry_after: float = 10.0

    def backoff_delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, backoff * 2**retry) for the retry-th retry (0-based)."""
        return rand() * self.backoff * (2 ** min(retry, 16))

    def wait_for(self, retry: int, retry_after: float | None,
                 rand: Callable[[], float] = random.random) -> tuple[float, bool]:
        """(seconds to wait, stay on the same target) before the next attempt."""
        if retry_after is not None:
            if retry_after <= self.max_retry_after:
                return retry_after, True
            return 0.0, False
        return self.backoff_delay(retry, rand), False
