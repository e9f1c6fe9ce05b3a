"""JSON from outside the gateway (client bodies, provider answers), read without trusting it.

Translators check the type of every value they rely on with the `expect_*` readers. A
wrong type raises WrongShape naming the field's path; each verb turns it into the
gateway's own error at its boundary (`client_body`: BadRequest, a 400 whose `param` is
the path; `provider_answer`: MalformedUpstream, a 502 saying the provider's answer was
malformed; stream translators end the stream with their error event).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import orjson

from ..errors import BadRequest, MalformedUpstream

__all__ = [
    "Json",
    "WrongShape",
    "client_body",
    "describe",
    "dumps",
    "expect_dict",
    "expect_list",
    "expect_str",
    "loads_or_none",
    "malformed",
    "malformed_message",
    "not_an_object",
    "optional_dict",
    "optional_list",
    "optional_str",
    "provider_answer",
    "provider_object",
]

Json = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")


class WrongShape(Exception):
    """A JSON value of the wrong type at `path` (e.g. `messages[2].content`)."""

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path} must be {expected}")
        self.path = path
        self.expected = expected

    def within(self, prefix: str) -> WrongShape:
        """The same error named from the value that holds the field (`prefix`, e.g.
        `messages[2]`). Loops over long arrays catch and rename instead of formatting the
        path of every element they read: paths cost only when something is wrong."""
        path = self.path
        if path and path[0] != "[":
            path = "." + path
        return WrongShape(prefix + path, self.expected)


def malformed_message(detail: str) -> str:
    """What the client is told about a provider answer (or stream event) of the wrong shape."""
    return f"the provider's answer was malformed: {detail}"


def malformed(detail: str) -> MalformedUpstream:
    """The 502 for a provider answer of the wrong shape."""
    return MalformedUpstream(malformed_message(detail))


def client_body(translate: Callable[P, R]) -> Callable[P, R]:
    """Decorate a verb reading a client's body: WrongShape becomes BadRequest naming the field."""

    @functools.wraps(translate)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return translate(*args, **kwargs)
        except WrongShape as exc:
            raise BadRequest(str(exc), param=exc.path) from None

    return checked


def provider_answer(translate: Callable[P, R]) -> Callable[P, R]:
    """Decorate a verb reading a provider's answer: WrongShape becomes MalformedUpstream."""

    @functools.wraps(translate)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return translate(*args, **kwargs)
        except WrongShape as exc:
            raise malformed(str(exc)) from None

    return checked


def loads_or_none(data: bytes | str) -> Any:
    """Parsed JSON, or None when `data` is not JSON (upstream bytes are untrusted)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def provider_object(body: bytes) -> Json:
    """A provider's answer as a JSON object; MalformedUpstream when it is empty, not JSON or
    not an object."""
    obj = loads_or_none(body)
    if isinstance(obj, dict):
        return obj
    raise not_an_object(body)


def not_an_object(body: bytes) -> MalformedUpstream:
    """The 502 for a provider answer that is empty, not JSON or not a JSON object."""
    return malformed("the body is empty" if not body.strip() else "the body is not a JSON object")


def dumps(value: Any, path: str) -> bytes:
    """`value` as JSON; WrongShape when it is nested too deeply for orjson (255 levels)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise WrongShape(path, "JSON nested less than 255 levels deep") from None


def expect_dict(value: Any, path: str) -> Json:
    if isinstance(value, dict):
        return value
    raise WrongShape(path, "an object")


def expect_list(value: Any, path: str) -> list[Any]:
    if isinstance(value, list):
        return value
    raise WrongShape(path, "an array")


def expect_str(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise WrongShape(path, "a string")


def optional_dict(value: Any, path: str) -> Json:
    """An object, {} when absent (null)."""
    if value is None:
        return {}
    return expect_dict(value, path)


def optional_list(value: Any, path: str) -> list[Any]:
    """An array, [] when absent (null)."""
    if value is None:
        return []
    return expect_list(value, path)


def optional_str(value: Any, path: str) -> str | None:
    """A string, None when absent (null)."""
    if value is None or isinstance(value, str):
        return value
    raise WrongShape(path, "a string")


def describe(value: Any) -> str:
    """A short, safe rendering of an untrusted value for an error message (never the repr
    of a structure, which could be huge or nested too deeply to print)."""
    if isinstance(value, str):
        return repr(value[:100])
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return "a number"
    return "an array" if isinstance(value, list) else "an object"
