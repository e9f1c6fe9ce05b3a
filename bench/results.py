"""The figures one load run produces, whichever driver made them."""

from __future__ import annotations

import math
from typing import Any

import attrs


@attrs.define
class LoadResult:
    """Requests/s and latency of one run; times in milliseconds, ``None`` when not measured."""

    tool: str
    requests: int  # responses received, any status
    ok: int  # 2xx responses
    errors: int  # non-2xx responses plus socket errors and time-outs
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    first_error: str = ""

    @property
    def rps(self) -> float:
        """Successful responses per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """A plain dict, for the driver's one-line JSON output."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadResult:
        """The inverse of ``to_json``."""
        return cls(**data)


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list; ``None`` when empty."""
    if not sorted_values:
        return None
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]
