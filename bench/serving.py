"""Run one of bench's own servers until it is stopped (uvloop unless told not to)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


def run_server(serve: Coroutine[Any, Any, None], no_uvloop: bool) -> None:
    """Run ``serve`` on uvloop (when installed and not refused) until Ctrl-C or SIGTERM."""
    run: Callable[..., Any] = asyncio.run
    if not no_uvloop:
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            pass
    with contextlib.suppress(KeyboardInterrupt):
        run(serve)
