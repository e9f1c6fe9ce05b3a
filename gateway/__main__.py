"""Command line: `python -m gateway [serve] [--config PATH] …`, `check PATH`, `hash-key`, `--version`."""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys

from . import __version__
from .config import ConfigError, load_config

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="LLM gateway")
    parser.add_argument("--version", action="version", version=f"llm-gateway {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the gateway (the default)")
    check = sub.add_parser("check", help="validate a config file and list every problem")
    check.add_argument("path")
    sub.add_parser("hash-key", help="print the key_sha256 of a client key read from stdin")
    for p in (parser, serve):
        p.add_argument("--config", default="gateway.toml", help="TOML config (default ./gateway.toml)")
        p.add_argument("--host", help="override server.host")
        p.add_argument("--port", type=int, help="override server.port")
        p.add_argument("--admin-port", type=int, help="override server.admin_port (0 = off)")
        p.add_argument("--workers", type=int, help="override server.workers (0 = one per core)")
    return parser


def _configure_logging() -> None:
    """Gateway lines at INFO on stderr; other libraries' at WARNING."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("gateway").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash-key":
        key = sys.stdin.readline().strip()
        print(hashlib.sha256(key.encode()).hexdigest())
        return 0
    path = args.path if args.command == "check" else args.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s) in the config:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(f"{path}: OK ({len(config.providers)} providers, {len(config.models)} models)")
        return 0
    from .server import Addresses, serve

    server = config.server
    port = args.port if args.port is not None else server.port
    admin_port = args.admin_port if args.admin_port is not None else server.admin_port
    workers = args.workers if args.workers is not None else server.workers
    problems = [message for bad, message in (
        (not 1 <= port <= 65535, "--port: must be 1-65535"),
        (not 0 <= admin_port <= 65535, "--admin-port: must be 0-65535 (0 = off)"),
        (admin_port == port, "--admin-port: must differ from the API port"),
        (workers < 0, "--workers: must be 0 (one per core) or more"),
    ) if bad]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    _configure_logging()
    return serve(config, Addresses(args.host or server.host, port, admin_port), workers)


if __name__ == "__main__":
    sys.exit(main())
