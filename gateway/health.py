"""Target health: consecutive failures eject a target for a cooldown, then one request probes it.

A small state machine per target key with an injected clock, so tests drive time by hand.
Health is per process (each worker learns on its own); it outlives config generations.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

__all__ = ["HealthBoard", "TargetHealth"]

HEALTHY = "healthy"
EJECTED = "ejected"
PROBING = "probing"


@attrs.define(slots=True)
class TargetHealth:
    """One target's record: its failure streak and, while ejected, until when."""

    failures: int = 0
    ejected_until: float = 0.0  # 0: not ejected
    probe_until: float = 0.0  # a probe is in flight until then (it may never report)
    ejections: int = 0


class HealthBoard:
    """Which targets may serve now; fed by every attempt's outcome."""

    __slots__ = ("_clock", "_targets", "cooldown", "eject_after", "ejected")

    def __init__(self, eject_after: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.eject_after = eject_after
        self.cooldown = cooldown
        self._clock = clock
        self._targets: dict[str, TargetHealth] = {}
        self.ejected: set[str] = set()  # keys ejected and not yet back (the request path's fast check)

    def configure(self, eject_after: int, cooldown: float) -> None:
        """New settings (a reload); the records carry over."""
        self.eject_after = eject_after
        self.cooldown = cooldown

    def is_ejected(self, key: str) -> bool:
        """True while `key` must not serve: ejected and its cooldown not over, or a probe in flight."""
        if key not in self.ejected:
            return False
        rec = self._targets.get(key)
        if rec is None or not rec.ejected_until:
            return False
        now = self._clock()
        return now < rec.ejected_until or now < rec.probe_until

    def claim_probe(self, key: str) -> bool:
        """After the cooldown, the first caller gets to probe an ejected target (True once)."""
        if key not in self.ejected:
            return True
        rec = self._targets.get(key)
        if rec is None or not rec.ejected_until:
            return True
        now = self._clock()
        if now < rec.ejected_until or now < rec.probe_until:
            return False
        rec.probe_until = now + self.cooldown  # a probe that never reports frees the slot later
        return True

    def succeeded(self, key: str) -> None:
        """A good answer: the streak ends and an ejected target is back."""
        rec = self._targets.get(key)
        if rec is not None:
            rec.failures = 0
            rec.ejected_until = 0.0
            rec.probe_until = 0.0
            self.ejected.discard(key)

    def failed(self, key: str, *, eject_now: bool = False) -> None:
        """A retryable failure; `eject_now` for a 429 whose Retry-After is too long to wait."""
        rec = self._targets.get(key)
        if rec is None:
            rec = self._targets[key] = TargetHealth()
        rec.failures += 1
        was_probe = bool(rec.ejected_until) and rec.probe_until > 0.0
        if eject_now or was_probe or rec.failures >= self.eject_after:
            rec.ejected_until = self._clock() + self.cooldown
            rec.probe_until = 0.0
            rec.ejections += 1
            self.ejected.add(key)

    def state(self, key: str) -> str:
        """healthy | ejected | probing, for /readyz."""
        rec = self._targets.get(key)
        if rec is None or not rec.ejected_until:
            return HEALTHY
        now = self._clock()
        if now < rec.probe_until:
            return PROBING
        return EJECTED if now < rec.ejected_until else PROBING

    def states(self) -> dict[str, str]:
        """Every target heard from, with its state."""
        return {key: self.state(key) for key in self._targets}

    def failures(self, key: str) -> int:
        rec = self._targets.get(key)
        return rec.failures if rec is not None else 0
