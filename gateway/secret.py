"""Secrets referenced from config as `{ env = "NAME" }` or `{ file = "PATH" }`; never printed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Secret", "SecretError", "resolve_secret"]


class SecretError(ValueError):
    """A secret reference is malformed or cannot be resolved."""


@attrs.frozen(repr=False)
class Secret:
    """A resolved secret; `source` says where it came from, `value` never shows in repr."""

    source: str
    value: str = attrs.field(eq=False)

    def __repr__(self) -> str:
        return f"Secret({self.source}, redacted)"

    __str__ = __repr__


def resolve_secret(raw: Any, base_dir: Path | None = None) -> Secret:
    """Resolve `{env = NAME}` / `{file = PATH}`; literal strings are refused so keys stay out of files."""
    if isinstance(raw, str):
        raise SecretError('must be { env = "NAME" } or { file = "PATH" }, not a literal string')
    if not isinstance(raw, dict) or len(raw) != 1 or not ({"env", "file"} & raw.keys()):
        raise SecretError('must be { env = "NAME" } or { file = "PATH" }')
    if "env" in raw:
        name = raw["env"]
        if not isinstance(name, str) or not name:
            raise SecretError("env must name an environment variable")
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"environment variable {name} is not set")
        if not value.strip():
            raise SecretError(f"environment variable {name} is empty")
        return Secret(f"env:{name}", value.strip())
    path = raw["file"]
    if not isinstance(path, str) or not path:
        raise SecretError("file must be a path")
    full = Path(path) if base_dir is None else base_dir / path
    try:
        value = full.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    if not value:
        raise SecretError(f"secret file {path} is empty")
    return Secret(f"file:{path}", value)
