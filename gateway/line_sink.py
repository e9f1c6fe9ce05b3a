"""Batched writes of whole lines to a file descriptor (the access log's stdout).

Lines wait in memory until `max_buffer` bytes are pending or `flush()` is called (the
access log flushes every second), then go out in writes of at most PIPE_BUF bytes made of
whole lines: such a write to a pipe is atomic, so worker processes sharing one stdout never
interleave inside a line. Python's own stdout buffer offers neither (and PYTHONUNBUFFERED=1,
common in containers, turns it into one write call per line).
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable

__all__ = ["LineSink"]

PIPE_BUF = getattr(select, "PIPE_BUF", 4096)


class LineSink:
    """Collects lines (each ending in a newline) and writes them out in batches."""

    __slots__ = ("_lines", "_max", "_size", "_write_fd")

    def __init__(self, fd: int = 1, max_buffer: int = 64 * 1024,
                 write: Callable[[int, bytes | memoryview], int] = os.write) -> None:
        self._lines: list[bytes] = []
        self._size = 0
        self._max = max_buffer
        self._write_fd: Callable[[bytes | memoryview], int] = lambda data: write(fd, data)

    def write(self, line: bytes) -> None:
        """Queue one line; write the batch once `max_buffer` bytes are waiting."""
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self._max:
            self.flush()

    def flush(self) -> None:
        """Write every queued line now (OSError propagates; the lines are dropped)."""
        lines, self._lines, self._size = self._lines, [], 0
        batch: list[bytes] = []
        size = 0
        for line in lines:
            if batch and size + len(line) > PIPE_BUF:
                self._write_all(b"".join(batch))
                batch, size = [], 0
            batch.append(line)
            size += len(line)
        if batch:
            self._write_all(b"".join(batch))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._write_fd(view):]
