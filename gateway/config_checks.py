"""How config values are checked and how their problems are named.

attrs validators that say what is allowed; a cattrs converter that is strict about types
(`"4000"` is not a port), names the choices of a `Literal`, resolves secrets and runs each
field's validator as soon as the field is structured (so every refused value of a table is
reported, not only the first); and the walk from a structuring error to `key.path: message`
lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import attrs
import cattrs
import cattrs.cols
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, override

from .secret import Secret, SecretError, resolve_secret

__all__ = [
    "Invalid",
    "Validator",
    "at_key",
    "at_least",
    "between",
    "converter",
    "each",
    "http_url",
    "non_empty",
    "default_of",
    "not_yet",
    "not_yet_problems",
    "path_key",
    "positive",
    "problems_in",
    "rule",
    "show",
]


class Invalid(ValueError):
    """A value a field refuses. `message` says what is allowed; `at` extends the key path
    below the field (e.g. `["/v1/x"]` for one entry of a table)."""

    def __init__(self, message: str, at: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.at = at


# -- validators: attrs validators (instance, attribute, value) with the message a user reads

Validator = Callable[[Any, Any, Any], None]


def rule(ok: Callable[[Any], bool], message: str) -> Validator:
    """Refuse a value for which `ok` is false, saying `message`."""

    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not ok(value):
            raise Invalid(message)

    return check


def not_yet(what: str) -> dict[str, str]:
    """attrs field metadata for a key of the config contract whose feature is not built: any
    value but the default is refused (by `not_yet_problems`, after structuring, so the entry
    still takes part in the cross-reference checks)."""
    return {"not_yet": what}


def not_yet_problems(value: Any, path: str) -> Iterator[str]:
    """`key.path: … not supported yet` for every such key of `value`, at any depth, not at its default."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from not_yet_problems(item, path + path_key(i))
        return
    if not attrs.has(type(value)):
        return
    for field in attrs.fields(type(value)):
        inner = getattr(value, field.name)
        where = f"{path}.{field.name}" if path else field.name
        what = field.metadata.get("not_yet")
        if what is not None and inner != default_of(field):
            yield f"{where}: {what} not supported yet"
        yield from not_yet_problems(inner, where)


def default_of(field: Any) -> Any:
    """A field's default value (a factory's fresh one)."""
    default = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def each(check: Callable[[str, Any], str | None]) -> Validator:
    """Check every entry of a table; `check(key, value)` returns a problem or None."""

    def validator(_instance: Any, _attribute: Any, table: Mapping[str, Any]) -> None:
        problems = [Invalid(p, at=path_key(k)) for k, v in table.items() if (p := check(k, v)) is not None]
        if problems:
            raise ExceptionGroup("invalid entries", problems)

    return validator


def path_key(key: object) -> str:
    """A table key or array index as a path segment: `["/v1/x"]`, `[2]`."""
    if isinstance(key, int):
        return f"[{key}]"
    return '["' + str(key).replace("\\", "\\\\").replace('"', '\\"') + '"]'


def show(value: Any) -> str:
    """A value as a message quotes it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def between(low: int, high: int, note: str = "") -> Validator:
    return rule(lambda v: low <= v <= high, f"must be {low}-{high}{note}")


def at_least(low: float, note: str = "") -> Validator:
    return rule(lambda v: v >= low, f"must be {note or f'at least {low}'}")


positive = rule(lambda v: v > 0, "must be greater than 0")
non_empty = rule(bool, "must not be empty")
http_url = rule(lambda v: v is None or v.startswith(("http://", "https://")), "must start with http:// or https://")


def converter(base_dir: Path | None) -> cattrs.Converter:
    """The strict converter; secrets' `{ file = … }` paths are relative to `base_dir`."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def strict(kind: type, what: str) -> Callable[[Any, Any], Any]:
        def hook(raw: Any, _: Any) -> Any:
            ok = isinstance(raw, kind) or (kind is float and isinstance(raw, int))
            if not ok or (kind is not bool and isinstance(raw, bool)):
                raise Invalid(f"must be {what}")
            return kind(raw)

        return hook

    conv.register_structure_hook(int, strict(int, "a whole number"))
    conv.register_structure_hook(float, strict(float, "a number"))
    conv.register_structure_hook(str, strict(str, "a string"))
    conv.register_structure_hook(bool, strict(bool, "true or false"))

    def literal(raw: Any, choice: Any) -> Any:
        allowed = get_args(choice)
        if isinstance(raw, str) and raw in allowed:
            return raw
        raise Invalid(f"must be one of {', '.join(show(a) for a in allowed)} (got {show(raw)})")

    conv.register_structure_hook_func(lambda t: get_origin(t) is Literal, literal)

    def array(list_type: Any) -> Callable[[Any, Any], Any]:
        structure = cattrs.cols.list_structure_factory(list_type, conv)

        def hook(raw: Any, t: Any) -> Any:
            if not isinstance(raw, list):
                raise Invalid("must be an array")
            return structure(raw, t)

        return hook

    conv.register_structure_hook_factory(lambda t: get_origin(t) is list, array)

    def self_checking(cls: type) -> Callable[[Any, Any], Any]:
        """cattrs' structuring, plus each field's validator as soon as that field is structured,
        so every refused value is reported with its key, not only the first of a table."""
        checked: dict[str, Any] = {
            f.name: override(struct_hook=_checked(conv, f.validator, f)) for f in attrs.fields(cls) if f.validator}
        structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv, **checked)

        def hook(raw: Any, t: Any) -> Any:
            if not isinstance(raw, dict):
                raise Invalid("must be a table")
            return structure(raw, t)

        return hook

    conv.register_structure_hook_factory(attrs.has, self_checking)
    conv.register_structure_hook(Secret, lambda raw, _: resolve_secret(raw, base_dir))
    return conv


def _checked(conv: cattrs.Converter, validator: Validator, field: Any) -> Callable[[Any, Any], Any]:
    def hook(raw: Any, t: Any) -> Any:
        value = conv.structure(raw, t)
        validator(None, field, value)
        return value

    return hook


def at_key(problem: Exception, name: str) -> Exception:
    """Mark a problem as belonging to key `name` of a table, as cattrs marks its own."""
    problem.__notes__ = [AttributeValidationNote(f"Structuring @ attribute {name}", name, str)]
    return problem


# -- problems by key path


def problems_in(exc: BaseException, path: str, expected: Any = None) -> Iterator[str]:
    """Every problem inside a structuring error, as `key.path: message`."""
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, field in with_notes:
            yield from problems_in(sub, f"{path}.{field.name}" if path else field.name, field.type)
        for sub in without:
            yield from problems_in(sub, path, expected)
    elif isinstance(exc, IterableValidationError):
        with_entries, without = exc.group_exceptions()
        for sub, entry in with_entries:
            yield from problems_in(sub, path + path_key(entry.index), entry.type)
        for sub in without:
            yield from problems_in(sub, path, expected)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield f"{path + '.' if path else ''}{key}: unknown key"
    elif isinstance(exc, BaseExceptionGroup):
        for part in exc.exceptions:
            yield from problems_in(part, path, expected)
    elif isinstance(exc, Invalid):
        yield f"{path + exc.at or '(top level)'}: {exc.message}"
    elif isinstance(exc, SecretError):
        yield f"{path}: {exc}"
    elif isinstance(exc, KeyError):
        yield f"{path}: required key missing"
    else:
        yield f"{path}: {_expectation(expected)}"


def _expectation(expected: Any) -> str:
    origin = get_origin(expected) or expected
    if origin in (dict, Mapping) or (isinstance(origin, type) and attrs.has(origin)) or origin is Union:
        return "must be a table"
    if origin is list:
        return "must be an array"
    return f"invalid value (expected {getattr(expected, '__name__', expected)})"


