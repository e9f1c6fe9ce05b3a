"""The access log's LineSink: batched, whole lines, writes no larger than PIPE_BUF."""

from __future__ import annotations

import os

from gateway.line_sink import PIPE_BUF, LineSink


def recorder(writes: list[bytes], at_most: int | None = None):  # type: ignore[no-untyped-def]
    def write(fd: int, data: bytes) -> int:
        taken = bytes(data[:at_most] if at_most else data)
        writes.append(taken)
        return len(taken)
    return write


def test_lines_wait_for_flush_then_go_out_whole_in_pipe_sized_writes() -> None:
    writes: list[bytes] = []
    sink = LineSink(1, max_buffer=1 << 20, write=recorder(writes))
    lines = [f'{{"n":{i},"pad":"{"x" * (i % 700)}"}}\n'.encode() for i in range(300)]
    for line in lines:
        sink.write(line)
    assert writes == []  # nothing until a flush
    sink.flush()
    assert b"".join(writes) == b"".join(lines)
    assert all(len(w) <= PIPE_BUF and w.endswith(b"\n") for w in writes)
    assert len(writes) < len(lines) / 5  # batched, not one write per line


def test_a_full_buffer_is_written_without_waiting_for_flush() -> None:
    writes: list[bytes] = []
    sink = LineSink(1, max_buffer=1000, write=recorder(writes))
    for _ in range(15):
        sink.write(b"y" * 99 + b"\n")
    assert sum(map(len, writes)) == 1000  # the first ten lines, once 1,000 bytes waited; five wait


def test_a_line_longer_than_pipe_buf_goes_alone_and_short_writes_are_resumed() -> None:
    writes: list[bytes] = []
    sink = LineSink(1, write=recorder(writes, at_most=1000))
    big = b"z" * (PIPE_BUF * 2) + b"\n"
    sink.write(b"a\n")
    sink.write(big)
    sink.write(b"b\n")
    sink.flush()
    assert b"".join(writes) == b"a\n" + big + b"b\n"


def test_writes_to_a_real_pipe() -> None:
    read_fd, write_fd = os.pipe()
    try:
        sink = LineSink(write_fd)
        sink.write(b"one\n")
        sink.write(b"two\n")
        sink.flush()
        assert os.read(read_fd, 100) == b"one\ntwo\n"
    finally:
        os.close(read_fd)
        os.close(write_fd)
