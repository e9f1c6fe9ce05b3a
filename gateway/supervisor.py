"""`--workers N`: N worker processes that share the port, watched by the master process.

Each worker tells the master when its listeners are bound, or why it could not start. If a
worker fails to start at launch, the master stops the others and exits 1 with the worker's
reason. Later, a worker that dies is logged and replaced: at once when it had run a while,
after a doubling delay while replacements keep dying. When no worker is left and the last
start of every one failed, the master gives up and exits 1. SIGTERM/SIGINT reach every
worker, which drains; the master exits 0 once all have.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

import attrs

__all__ = ["READY", "RestartBackoff", "StartupError", "WorkerMain", "supervise"]

log = logging.getLogger("gateway")

READY = "ready"

WorkerMain = Callable[[Callable[[], None]], None]
"""Runs one worker until it is told to stop; calls its argument once it is listening."""


class StartupError(Exception):
    """The gateway cannot start; the message is one line for the operator."""


@attrs.define
class RestartBackoff:
    """The delay before replacing a worker: none after one that ran `stable_after` seconds,
    else `base` doubling with each early death in a row, up to `cap`."""

    base: float = 0.5
    cap: float = 30.0
    stable_after: float = 10.0
    early_deaths: int = 0

    def delay(self, lived: float) -> float:
        if lived >= self.stable_after:
            self.early_deaths = 0
            return 0.0
        self.early_deaths += 1
        return min(self.base * 2 ** (self.early_deaths - 1), self.cap)


@attrs.define(eq=False)
class _Slot:
    """One of the N worker places and the process currently in it."""

    process: BaseProcess | None = None
    conn: Connection | None = None
    started: float = 0.0
    ready: bool = False
    failure: str | None = None  # why its last start failed; None once a worker got ready
    restart_at: float | None = None
    backoff: RestartBackoff = attrs.Factory(RestartBackoff)


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Supervisor:
    def __init__(self, worker_main: WorkerMain, count: int, stop_timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._main = worker_main
        self._slots = [_Slot() for _ in range(count)]
        self._stop_timeout = stop_timeout
        self._clock = clock
        self._ctx = multiprocessing.get_context("fork")
        self._stopping = False
        self._launched = False
        self._wake_r, self._wake_w = socket.socketpair()

    # -- the master's life

    def run(self, banner: str) -> int:
        previous = self._install_signals()
        try:
            for slot in self._slots:
                self._start(slot)
            if not self._launch():
                return 1
            if self._stopping:
                return 0
            log.info(banner)
            self._launched = True
            code = self._watch()
            self._stop_all()
            if code == 0:
                log.info(f"gateway stopped (pid {os.getpid()})")
            return code
        finally:
            self._stop_all()
            self._restore_signals(previous)
            self._wake_r.close()
            self._wake_w.close()

    def _launch(self) -> bool:
        """Wait until every first worker is listening or gone; False if one could not start."""
        while not self._stopping and any(s.process is not None and not s.ready for s in self._slots):
            self._poll(None)
        reasons = list(dict.fromkeys(s.failure for s in self._slots if s.failure))
        for reason in reasons:
            log.error(reason)
        return not reasons

    def _watch(self) -> int:
        """Replace workers that end until told to stop; 1 when none can start any more."""
        while not self._stopping:
            now = self._clock()
            waiting = [s.restart_at for s in self._slots if s.process is None and s.restart_at is not None]
            self._poll(max(0.0, min(waiting) - now) if waiting else None)
            now = self._clock()
            for slot in self._slots:
                if slot.process is None and slot.restart_at is not None and slot.restart_at <= now:
                    self._start(slot)
            if all(s.process is None and s.failure for s in self._slots):
                log.error(f"no worker could start ({self._slots[0].failure}); giving up")
                return 1
        return 0

    # -- workers

    def _start(self, slot: _Slot) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=self._worker, args=(send,), daemon=False)
        process.start()
        send.close()
        slot.process, slot.conn, slot.started = process, receive, self._clock()
        slot.ready, slot.restart_at = False, None

    def _worker(self, conn: Connection) -> None:
        """In the forked worker: the master's signal handling off, then serve."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        self._wake_r.close()
        self._wake_w.close()
        try:
            self._main(lambda: conn.send(READY))
        except StartupError as exc:
            conn.send(str(exc))
            raise SystemExit(1) from None
        finally:
            conn.close()

    def _poll(self, timeout: float | None) -> None:
        """Wait for a signal, a worker's message or a worker's end, and handle what came."""
        waitables: list[object] = [self._wake_r]
        for slot in self._slots:
            if slot.conn is not None:
                waitables.append(slot.conn)
            if slot.process is not None:
                waitables.append(slot.process.sentinel)
        ready = wait(waitables, timeout)  # type: ignore[arg-type]
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        for slot in self._slots:
            if slot.conn is not None and slot.conn in ready:
                self._read(slot)
            if slot.process is not None and slot.process.sentinel in ready:
                self._ended(slot)

    def _read(self, slot: _Slot) -> None:
        assert slot.conn is not None
        try:
            while slot.conn.poll():
                message = slot.conn.recv()
                if message == READY:
                    slot.ready, slot.failure = True, None
                    if self._launched and slot.process is not None:
                        log.info(f"worker pid {slot.process.pid} started")
                else:
                    slot.failure = str(message)
        except (EOFError, OSError):
            slot.conn.close()
            slot.conn = None

    def _ended(self, slot: _Slot) -> None:
        assert slot.process is not None
        if slot.conn is not None:
            self._read(slot)  # a reason it sent just before exiting
        slot.process.join()
        pid, code = slot.process.pid, slot.process.exitcode
        slot.process = None
        if slot.conn is not None:
            slot.conn.close()
            slot.conn = None
        if not slot.ready and slot.failure is None:
            slot.failure = f"worker pid {pid} {_how_it_ended(code)} before it was listening"
        if self._stopping:
            return
        lived = self._clock() - slot.started if slot.ready else 0.0
        delay = slot.backoff.delay(lived)
        slot.restart_at = self._clock() + delay
        if self._launched:  # at launch, a failed start ends the master with its reason instead
            why = f" ({slot.failure})" if not slot.ready else ""
            when = f" in {delay:.1f} s" if delay else ""
            log.warning(f"worker pid {pid} {_how_it_ended(code)}{why}; replacing it{when}")

    def _stop_all(self) -> None:
        running = [s.process for s in self._slots if s.process is not None]
        for process in running:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = self._clock() + self._stop_timeout
        for process in running:
            process.join(max(0.0, deadline - self._clock()))
            if process.is_alive():
                process.kill()
                process.join()
        for slot in self._slots:
            if slot.conn is not None:
                slot.conn.close()
            slot.process = slot.conn = None

    # -- signals

    def _install_signals(self) -> dict[int, object]:
        def stop(_signum: int, _frame: FrameType | None) -> None:
            self._stopping = True  # the wakeup fd ends the wait; _stop_all tells the workers

        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        previous: dict[int, object] = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[-1] = signal.set_wakeup_fd(self._wake_w.fileno())
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, object]) -> None:
        fd = previous.pop(-1)
        signal.set_wakeup_fd(fd if isinstance(fd, int) else -1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def supervise(worker_main: WorkerMain, count: int, banner: str, stop_timeout: float) -> int:
    """Run `count` workers until SIGTERM/SIGINT; the process exit code (0, or 1 on failure)."""
    return _Supervisor(worker_main, count, stop_timeout).run(banner)
