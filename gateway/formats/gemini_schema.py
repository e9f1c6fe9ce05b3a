"""JSON Schema (as OpenAI clients write it) → the OpenAPI-subset `Schema` Gemini accepts.

Gemini's `functionDeclarations[].parameters` and `generationConfig.responseSchema` take
"a select subset of an OpenAPI 3.0 schema object" and reject the request (400, "Unknown
name …") on any other key. `gemini_schema` rewrites a client's JSON Schema into that
subset, the way LiteLLM's `_build_vertex_schema` (ported by AGW) does:

- local `$ref`s (`#/$defs/…`, `#/definitions/…`) are inlined; a recursive schema, an
  unresolvable `$ref` or an expansion beyond MAX_NODES nodes is a BadRequest;
- `type: [t, "null"]` and `anyOf`/`oneOf` with a `{"type": "null"}` member become
  `nullable: true`; several types become `anyOf`; `oneOf` becomes `anyOf`; an `allOf`
  is merged into its parent; `const` becomes a one-value `enum`;
- types are written upper-case (`STRING`, `OBJECT`, …); `enum` is kept only when every
  value is a string (Gemini's enum is `string[]`); `format` only where Gemini knows it
  (`enum`/`date-time` on strings, `float`/`double`/`int32`/`int64` on numbers);
- `required` keeps only names present in `properties`;
- every other keyword (`additionalProperties`, `$schema`, `examples`, `exclusiveMinimum`,
  `patternProperties`, `strict`, …) is dropped: it only narrows what the model may
  generate, so the call still works, less strictly checked. `default` and `example` are
  dropped too: Gemini ignores `default`, and both may hold any JSON at all.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest
from .json_values import Json, describe

__all__ = ["MAX_DEPTH", "MAX_NODES", "gemini_schema"]

MAX_DEPTH = 64  # nesting deeper than this is no tool a model can fill in
MAX_NODES = 20_000  # $ref inlining can grow a schema exponentially; stop well before that hurts

_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
# Keywords copied as they are when their value has the type Gemini expects.
_NUMBERS = ("minimum", "maximum")
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_TEXTS = ("title", "description", "pattern")


class _Cleaner:
    """One schema's rewrite: the root (for `$ref`s), the refs being inlined, a node budget."""

    __slots__ = ("_active_refs", "_nodes", "_path", "_root")

    def __init__(self, root: Json, path: str) -> None:
        self._root = root
        self._path = path
        self._active_refs: set[str] = set()
        self._nodes = 0

    def fail(self, message: str) -> BadRequest:
        return BadRequest(f"{self._path}: {message}", param=self._path)

    def clean(self, schema: Any, depth: int) -> Json:
        if not isinstance(schema, dict):
            # `true`/`{}` accept anything: Gemini has no such schema, an unconstrained object is closest.
            if isinstance(schema, bool):
                return {}
            raise self.fail("a schema must be an object")
        self._nodes += 1
        if self._nodes > MAX_NODES or depth > MAX_DEPTH:
            raise self.fail("the schema is too large or nested too deeply for Gemini")
        ref = schema.get("$ref")
        if ref is not None:
            return self._inline(ref, schema, depth)
        out: Json = {}
        nullable = self._types(schema, out, depth)
        for part in _list(schema.get("allOf")):
            for k, v in self.clean(part, depth + 1).items():
                out.setdefault(k, v)
        if "const" in schema and isinstance(schema["const"], str):
            out["enum"] = [schema["const"]]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            values = [v for v in enum if v is not None]
            nullable = nullable or len(values) < len(enum)
            if values and all(isinstance(v, str) for v in values):
                out["enum"] = values
        if "enum" in out and "anyOf" not in out:
            out.setdefault("type", "STRING")  # Gemini's enum is a STRING property's
        self._copy_scalars(schema, out)
        self._children(schema, out, depth)
        if nullable:
            out["nullable"] = True
        return out

    def _inline(self, ref: Any, schema: Json, depth: int) -> Json:
        if not isinstance(ref, str):
            raise self.fail("$ref must be a string")
        if ref in self._active_refs:
            raise self.fail(f"$ref {describe(ref)} is recursive; Gemini schemas cannot refer to themselves")
        target = self._resolve(ref)
        self._active_refs.add(ref)
        try:
            out = self.clean(target, depth + 1)
        finally:
            self._active_refs.discard(ref)
        # Siblings of $ref (a description, say) win over the definition's own.
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if siblings:
            out.update(self.clean(siblings, depth + 1))
        return out

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise self.fail(f"$ref {describe(ref)} is not a local reference (#/$defs/…)")
        node: Any = self._root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                raise self.fail(f"$ref {describe(ref)} does not resolve")
            node = node[token]
        return node

    def _types(self, schema: Json, out: Json, depth: int) -> bool:
        """Sets `type` (or `anyOf` for several); True when null is allowed."""
        nullable = schema.get("nullable") is True
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        names = [_TYPES[k] for k in kinds if isinstance(k, str) and k in _TYPES]
        nullable = nullable or "null" in kinds
        if len(names) == 1:
            out["type"] = names[0]
        elif len(names) > 1:
            out["anyOf"] = [{"type": name} for name in names]
        variants = _list(schema.get("anyOf")) + _list(schema.get("oneOf"))
        if variants:
            kept = []
            for variant in variants:
                if isinstance(variant, dict) and variant.get("type") == "null" and len(variant) == 1:
                    nullable = True
                else:
                    kept.append(self.clean(variant, depth + 1))
            if len(kept) == 1 and "anyOf" not in out:
                for k, v in kept[0].items():
                    out.setdefault(k, v)
            elif kept:
                out["anyOf"] = kept
        return nullable

    @staticmethod
    def _copy_scalars(schema: Json, out: Json) -> None:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
            out["format"] = fmt
        for key in _TEXTS:
            if isinstance(schema.get(key), str):
                out[key] = schema[key]
        for key in _NUMBERS:
            value = schema.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = value
        for key in _COUNTS:
            value = schema.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[key] = value

    def _children(self, schema: Json, out: Json, depth: int) -> None:
        properties = schema.get("properties")
        if isinstance(properties, dict) and properties:
            out["properties"] = {str(name): self.clean(sub, depth + 1) for name, sub in properties.items()}
            out.setdefault("type", "OBJECT")
            required = [r for r in _list(schema.get("required")) if isinstance(r, str) and r in properties]
            if required:
                out["required"] = required
            ordering = [p for p in _list(schema.get("propertyOrdering")) if isinstance(p, str) and p in properties]
            if ordering:
                out["propertyOrdering"] = ordering
        items = schema.get("items")
        if isinstance(items, list):  # tuple validation: any of the positions' schemas
            variants = [self.clean(item, depth + 1) for item in items]
            if variants:
                out["items"] = variants[0] if len(variants) == 1 else {"anyOf": variants}
        elif items is not None:
            out["items"] = self.clean(items, depth + 1)
        if "items" in out:
            out.setdefault("type", "ARRAY")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def gemini_schema(schema: Any, path: str) -> Json:
    """`schema` (a client's JSON Schema) rewritten for Gemini; BadRequest naming `path` when
    it cannot be (not an object, a recursive or unresolvable `$ref`, far too large)."""
    if not isinstance(schema, dict):
        raise BadRequest(f"{path} must be a JSON Schema object", param=path)
    return _Cleaner(schema, path).clean(schema, 0)
