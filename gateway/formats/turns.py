"""Turns built from Chat messages for providers that want strictly alternating roles (sans-IO).

Anthropic Messages and Gemini both merge consecutive messages of one role into one turn,
and both want a tool's results to lead the user turn that carries them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TurnBuilder"]

Json = dict[str, Any]


class TurnBuilder:
    """Collects items (content blocks or parts) into alternating turns `{"role", <items_key>}`;
    tool results lead their turn."""

    __slots__ = ("_items", "_items_key", "_results", "_role", "turns")

    def __init__(self, items_key: str) -> None:
        self.turns: list[Json] = []
        self._items_key = items_key
        self._role = ""
        self._results: list[Json] = []
        self._items: list[Json] = []

    def add(self, role: str, items: list[Json], result: Json | None = None) -> None:
        if role != self._role:
            self._flush()
            self._role = role
        if result is not None:
            self._results.append(result)
        self._items.extend(items)

    def finish(self) -> list[Json]:
        self._flush()
        return self.turns

    def _flush(self) -> None:
        items = self._results + self._items if self._results else self._items
        if not items:
            return
        if self.turns and self.turns[-1]["role"] == self._role:
            self.turns[-1][self._items_key].extend(items)
        else:
            self.turns.append({"role": self._role, self._items_key: items})
        self._results = []
        self._items = []
