"""Gateway configuration: TOML → frozen attrs classes via cattrs, every problem named by key path.

Each field checks itself: its type (strict: `"4000"` is not a port), its `Literal` choices
and the attrs validator next to its default. `validate()` keeps only the checks that span
fields or sections (a model's provider must exist, …). A document is structured section by
section and entry by entry, so one pass reports every problem: type errors, unknown keys and
unresolvable secrets together, and the cross-reference checks still run on every part that
parsed (a reference to an entry that is itself broken is not reported twice).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, Union, get_args

import attrs
import cattrs
from cattrs.errors import ClassValidationError
from cattrs.strategies import configure_tagged_union

from .config_checks import (
    Invalid,
    at_key,
    at_least,
    between,
    converter,
    default_of,
    each,
    http_url,
    non_empty,
    not_yet,
    not_yet_problems,
    path_key,
    positive,
    problems_in,
    rule,
    show,
)
from .plan import find_cycle
from .secret import Secret

__all__ = [
    "AccessLogFormat",
    "AnyProviderConfig",
    "AuthConfig",
    "AuthKey",
    "AuthMode",
    "Config",
    "ConfigError",
    "GuardrailConfig",
    "JwtConfig",
    "ModelConfig",
    "ObservabilityConfig",
    "PromptsConfig",
    "ProviderConfig",
    "ProviderKind",
    "RateLimitConfig",
    "ResponsesConfig",
    "RetryConfig",
    "HealthConfig",
    "RouteType",
    "ServerConfig",
    "Target",
    "Timeouts",
    "load_config",
    "parse_config",
    "redacted",
    "validate",
]

ProviderKind = Literal["openai", "anthropic", "mock", "gemini", "bedrock", "azure", "vertex"]
SUPPORTED_PROVIDER_KINDS = ("openai", "anthropic", "mock", "gemini", "vertex", "azure", "bedrock")
RouteType = Literal["completions", "responses", "messages", "anthropic_token_count", "embeddings",
                    "models", "realtime", "passthrough"]
ROUTE_TYPES: tuple[str, ...] = get_args(RouteType)
AuthMode = Literal["none", "api_key", "jwt", "any"]
AccessLogFormat = Literal["json", "text", "off"]
ResponsesMode = Literal["native", "translate"]
ResponsesStoreKind = Literal["sqlite", "redis", "off"]
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
GuardrailStage = Literal["request", "response", "both"]
GuardrailAction = Literal["reject", "mask"]
BuiltinDetector = Literal["email", "credit_card", "ssn", "phone", "ipv4", "secret"]
MessageRole = Literal["system", "user", "assistant", "tool"]


class ConfigError(Exception):
    """The config has problems; `problems` lists each as `key.path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _glob_name(_instance: Any, _attribute: Any, name: str) -> None:
    if not name:
        raise Invalid("must not be empty")
    if "*" in name[:-1]:
        raise Invalid('"*" is only allowed at the end')


def _no_model_or_stream(_instance: Any, _attribute: Any, fields: Mapping[str, Any]) -> None:
    for key in ("model", "stream"):
        if key in fields:
            raise Invalid(f'"{key}" cannot be set in defaults/overrides')


def _header(name: str, value: str) -> str | None:
    if not name or any(c in name for c in " :\r\n"):
        return "invalid header name"
    if any(c in value for c in "\r\n\0"):
        return "header values must not contain line breaks"
    return None


def _route(suffix: str, route: str) -> str | None:
    if not suffix.startswith("/"):
        return 'path suffix must start with "/"'
    if route not in ROUTE_TYPES:
        return f"unknown route type {show(route)} (one of {', '.join(ROUTE_TYPES)})"
    return None


def _regex(_instance: Any, _attribute: Any, patterns: list[str]) -> None:
    problems = []
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(Invalid(f"not a regular expression ({exc})", at=path_key(i)))
    if problems:
        raise ExceptionGroup("invalid patterns", problems)


def _service_account(_instance: Any, _attribute: Any, secret: Secret | None) -> None:
    """A Vertex `credentials` secret holds a service-account key file (JSON)."""
    if secret is None:
        return
    try:
        info = json.loads(secret.value)
    except ValueError:
        raise Invalid("must hold a service-account key file (JSON)") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise Invalid('must hold a service-account key file (JSON with "type": "service_account")')
    missing = [k for k in ("client_email", "private_key", "token_uri") if not isinstance(info.get(k), str)]
    if missing:
        raise Invalid(f"the service-account key file lacks {', '.join(missing)}")


def _supported_mode(_instance: Any, _attribute: Any, mode: str) -> None:
    if mode in ("jwt", "any"):
        raise Invalid(f'"{mode}" is not supported yet')


# -- the config classes


@attrs.frozen
class Timeouts:
    """Upstream timeouts in seconds; streams have no total cap."""

    connect: float = attrs.field(default=5.0, validator=positive)
    first_byte: float = attrs.field(default=120.0, validator=positive)
    idle: float = attrs.field(default=120.0, validator=positive)


@attrs.frozen
class ServerConfig:
    host: str = attrs.field(default="127.0.0.1", validator=non_empty)
    port: int = attrs.field(default=4000, validator=between(1, 65535))
    workers: int = attrs.field(default=1, validator=at_least(0, "0 (one per core) or more"))
    # bodies the gateway reads (JSON); larger → 413
    max_request_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=at_least(1024))
    # streamed passthrough bodies; 0 = no cap
    max_passthrough_bytes: int = attrs.field(default=512 * 1024 * 1024, validator=at_least(0, "0 (no cap) or more"))
    # one WebSocket message, either direction
    ws_max_message_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=at_least(1024))
    admin_port: int = attrs.field(default=15000, validator=between(0, 65535, " (0 = off)"))
    keepalive_timeout: float = attrs.field(default=120.0, validator=positive)
    shutdown_timeout: float = attrs.field(default=30.0, validator=at_least(0, "0 or more"))
    max_upstream_connections: int = attrs.field(default=4096, validator=at_least(1))
    default_max_tokens: int = attrs.field(default=4096, validator=at_least(1))


@attrs.frozen(kw_only=True)
class ProviderConfig:
    """What every provider kind has; each kind's class adds its own keys (`kind` is the tag)."""

    name: str = attrs.field(validator=non_empty)
    kind: ProviderKind
    base_url: str | None = attrs.field(default=None, validator=http_url)
    api_key: Secret | None = None
    headers: dict[str, str] = attrs.field(factory=dict, validator=each(_header))
    timeouts: Timeouts = Timeouts()


@attrs.frozen(kw_only=True)
class OpenAIProviderConfig(ProviderConfig):
    kind: Literal["openai"] = "openai"
    api_key: Secret
    # native: the server has /v1/responses; translate: served through Chat Completions.
    # None: native on api.openai.com, translate elsewhere (gateway/providers/openai.py).
    responses: ResponsesMode | None = None


@attrs.frozen(kw_only=True)
class AnthropicProviderConfig(ProviderConfig):
    kind: Literal["anthropic"] = "anthropic"
    api_key: Secret


@attrs.frozen(kw_only=True)
class MockProviderConfig(ProviderConfig):
    kind: Literal["mock"] = "mock"


@attrs.frozen(kw_only=True)
class GeminiProviderConfig(ProviderConfig):
    kind: Literal["gemini"] = "gemini"
    api_key: Secret


@attrs.frozen(kw_only=True)
class BedrockProviderConfig(ProviderConfig):
    kind: Literal["bedrock"] = "bedrock"
    region: str = attrs.field(validator=non_empty)
    aws_access_key_id: Secret | None = None  # all three unset: botocore's credential chain
    aws_secret_access_key: Secret | None = None
    aws_session_token: Secret | None = None


@attrs.frozen(kw_only=True)
class AzureProviderConfig(ProviderConfig):
    kind: Literal["azure"] = "azure"
    base_url: str = attrs.field(validator=http_url)
    api_key: Secret
    api_version: str | None = attrs.field(  # set: /deployments/{model}/…?api-version=
        default=None, validator=attrs.validators.optional(non_empty))


@attrs.frozen(kw_only=True)
class VertexProviderConfig(ProviderConfig):
    kind: Literal["vertex"] = "vertex"
    project: str = attrs.field(validator=non_empty)
    location: str = attrs.field(validator=non_empty)
    # service-account JSON; unset: application default credentials
    credentials: Secret | None = attrs.field(default=None, validator=_service_account)


AnyProviderConfig = Union[  # noqa: UP007 - cattrs needs a typing.Union to tag
    OpenAIProviderConfig,
    AnthropicProviderConfig,
    MockProviderConfig,
    GeminiProviderConfig,
    BedrockProviderConfig,
    AzureProviderConfig,
    VertexProviderConfig,
]


@attrs.frozen
class Target:
    model: str = attrs.field(validator=non_empty)
    priority: int = 0
    weight: int = attrs.field(default=1, validator=at_least(1))


@attrs.frozen
class ModelConfig:
    name: str = attrs.field(validator=_glob_name)
    provider: str | None = None
    model: str | None = None
    defaults: dict[str, Any] = attrs.field(factory=dict, validator=_no_model_or_stream)
    overrides: dict[str, Any] = attrs.field(factory=dict, validator=_no_model_or_stream)
    targets: list[Target] | None = None  # a virtual model: a plan of other models

    @property
    def is_virtual(self) -> bool:
        return self.targets is not None


@attrs.frozen
class RetryConfig:
    """`[retry]`: attempts per request (all targets together), backoff, longest Retry-After waited."""

    attempts: int = attrs.field(default=3, validator=at_least(1))
    backoff: float = attrs.field(default=0.2, validator=at_least(0, "0 or more"))
    max_retry_after: float = attrs.field(default=10.0, validator=at_least(0, "0 or more"))


@attrs.frozen
class HealthConfig:
    """`[health]`: consecutive failures that eject a target, and for how long."""

    eject_after: int = attrs.field(default=5, validator=at_least(1))
    cooldown: float = attrs.field(default=30.0, validator=positive)


@attrs.frozen
class AuthKey:
    name: str = attrs.field(validator=non_empty)
    key_sha256: str | None = attrs.field(default=None, validator=rule(
        lambda v: v is None or _HEX64.fullmatch(v) is not None, "must be 64 lowercase hex characters"))
    key: Secret | None = None
    models: list[str] = attrs.Factory(lambda: ["*"])
    requests_per_minute: int | None = attrs.field(default=None, metadata=not_yet("per-key rate limits are"))
    tokens_per_minute: int | None = attrs.field(default=None, metadata=not_yet("per-key rate limits are"))


@attrs.frozen
class JwtConfig:
    issuer: str = attrs.field(validator=non_empty)
    audiences: list[str] = attrs.Factory(list)
    jwks: Secret | None = None  # { file = "jwks.json" }, relative to the config file
    jwks_url: str | None = attrs.field(default=None, validator=http_url)
    algorithms: list[JwtAlgorithm] = attrs.Factory(lambda: ["RS256", "ES256", "EdDSA"])
    name_claim: str = attrs.field(default="sub", validator=non_empty)
    models_claim: str | None = None
    limits_claim: str | None = None


@attrs.frozen
class AuthConfig:
    mode: AuthMode = attrs.field(default="none", validator=_supported_mode)
    keys: list[AuthKey] = attrs.Factory(list)
    jwt: JwtConfig | None = attrs.field(default=None, metadata=not_yet("JWT auth is"))


@attrs.frozen
class RateLimitConfig:
    store: Literal["memory", "redis"] = attrs.field(default="memory", metadata=not_yet('store "redis" is'))
    redis_url: Secret | None = None
    on_store_error: Literal["open", "closed"] = "open"
    requests_per_minute: int = attrs.field(default=0, metadata=not_yet("gateway-wide rate limits are"))
    tokens_per_minute: int = attrs.field(default=0, metadata=not_yet("gateway-wide rate limits are"))


@attrs.frozen
class WebhookConfig:
    url: str = attrs.field(validator=[non_empty, http_url])
    timeout: float = attrs.field(default=2.0, validator=positive)
    on_error: Literal["open", "closed"] = "closed"


@attrs.frozen
class GuardrailConfig:
    name: str = attrs.field(validator=non_empty)
    on: GuardrailStage = "both"
    action: GuardrailAction = "reject"
    builtin: list[BuiltinDetector] = attrs.Factory(list)
    patterns: list[str] = attrs.field(factory=list, validator=_regex)
    scope: list[MessageRole] = attrs.Factory(lambda: ["system", "user", "assistant", "tool"])
    models: list[str] = attrs.Factory(lambda: ["*"])
    message: str = "request blocked by policy"
    webhook: WebhookConfig | None = None


@attrs.frozen
class PromptMessage:
    role: Literal["system", "developer", "user", "assistant"]
    content: str


@attrs.frozen
class PromptsConfig:
    prepend: list[PromptMessage] = attrs.Factory(list)
    append: list[PromptMessage] = attrs.Factory(list)


@attrs.frozen
class ResponsesConfig:
    """Where translated Responses are kept for previous_response_id (gateway/responses_state.py)."""

    store: ResponsesStoreKind = "sqlite"
    path: str = attrs.field(default="responses.sqlite3", validator=non_empty)  # relative to the config file
    redis_url: Secret | None = None  # store = "redis"; default: [rate_limit] redis_url
    ttl: float = attrs.field(default=30 * 24 * 3600.0, validator=positive)  # seconds from creation


@attrs.frozen
class ObservabilityConfig:
    access_log: AccessLogFormat = "json"
    log_prompts: bool = attrs.field(default=False, metadata=not_yet("logging prompts is"))
    otlp_endpoint: str = attrs.field(default="", metadata=not_yet("OpenTelemetry export is"))


@attrs.frozen
class Config:
    server: ServerConfig = ServerConfig()
    providers: list[AnyProviderConfig] = attrs.Factory(list)
    models: list[ModelConfig] = attrs.Factory(list)
    routes: dict[str, str] = attrs.field(factory=dict, validator=each(_route))
    retry: RetryConfig | None = None  # absent: no retries, but a virtual model tries each target once
    health: HealthConfig = HealthConfig()
    auth: AuthConfig = AuthConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    guardrails: list[GuardrailConfig] = attrs.field(factory=list, metadata=not_yet("guardrails are"))
    prompts: PromptsConfig = attrs.field(default=PromptsConfig(), metadata=not_yet("prompt policies are"))
    responses: ResponsesConfig = ResponsesConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    source: str = ""  # the file it came from; not a config key


def _kind_of(cls: type) -> str:
    """The `kind` tag of a provider config class (its `kind` field's default)."""
    return str(attrs.fields_dict(cls)["kind"].default)


_PROVIDER_CLASSES: dict[str, type[ProviderConfig]] = {_kind_of(cls): cls for cls in get_args(AnyProviderConfig)}


def _has_google_auth() -> bool:
    """Whether the `vertex` extra (google-auth) is installed."""
    try:
        return find_spec("google.auth") is not None
    except ImportError:  # no `google` namespace package at all
        return False


def _tag_providers(conv: cattrs.Converter) -> None:
    """`[[providers]]` entries as a tagged union on `kind`; a missing or unknown kind is named."""
    configure_tagged_union(AnyProviderConfig, conv, tag_name="kind", tag_generator=_kind_of)
    tagged = conv.get_structure_hook(AnyProviderConfig)

    def structure(raw: Any, t: Any) -> Any:
        if not isinstance(raw, dict):
            raise Invalid("must be a table")
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in _PROVIDER_CLASSES:
            problem: Exception = KeyError("kind") if kind is None else Invalid(
                f"unknown provider kind {show(kind)} (one of {', '.join(SUPPORTED_PROVIDER_KINDS)})")
            raise ClassValidationError("While structuring a provider", [at_key(problem, "kind")], ProviderConfig)
        errors: list[Exception] = []
        if kind not in SUPPORTED_PROVIDER_KINDS:
            errors.append(at_key(Invalid(f'provider kind "{kind}" is not supported yet'), "kind"))
        elif kind == "vertex" and not _has_google_auth():
            errors.append(at_key(Invalid("needs google-auth: pip install 'llm-gateway[vertex]'"), "kind"))
        elif kind == "bedrock" and find_spec("botocore") is None:
            errors.append(at_key(Invalid("needs botocore: pip install 'llm-gateway[bedrock]'"), "kind"))
        try:
            provider = tagged(raw, t)
        except ClassValidationError as exc:
            errors.extend(exc.exceptions)
        if errors:
            raise ClassValidationError(f"While structuring provider {kind}", errors, ProviderConfig)
        return provider

    conv.register_structure_hook(AnyProviderConfig, structure)


# -- sections, cross-references and the entry points

attrs.resolve_types(Config)
_SECTIONS = {f.name: f for f in attrs.fields(Config) if f.name != "source"}
_ARRAYS_OF_TABLES = ("providers", "models", "guardrails")


@attrs.frozen
class Sections:
    """What parsed: a section or an array entry that has problems is None (its checks are skipped);
    `declared` holds the `name` each `[[providers]]`/`[[models]]` entry gives, parsed or not, and
    is None for an array that is not an array of tables (nothing is known about its names)."""

    values: dict[str, Any]
    declared: dict[str, set[str] | None]

    def get(self, section: str) -> Any:
        return self.values.get(section)

    def entries(self, section: str) -> Iterator[tuple[int, Any]]:
        """(index in the file, entry) for each entry that parsed."""
        for i, entry in enumerate(self.values.get(section) or ()):
            if entry is not None:
                yield i, entry


def _structure_sections(conv: cattrs.Converter, data: dict[str, Any]) -> tuple[Sections, list[str]]:
    problems: list[str] = []
    values: dict[str, Any] = {}
    declared: dict[str, set[str] | None] = {}
    for key, raw in data.items():
        field = _SECTIONS.get(key)
        if field is None:
            problems.append(f"{key}: unknown key")
            continue
        section_type: Any = field.type
        if key in _ARRAYS_OF_TABLES:
            if not isinstance(raw, list):
                problems.append(f"{key}: must be an array of tables ([[{key}]])")
                declared[key] = None
                continue
            (entry_type,) = get_args(section_type)
            entries = []
            declared[key] = {e["name"] for e in raw if isinstance(e, dict) and isinstance(e.get("name"), str)}
            for i, item in enumerate(raw):
                try:
                    entries.append(conv.structure(item, entry_type))
                except Exception as exc:
                    problems.extend(problems_in(exc, f"{key}[{i}]", entry_type))
                    entries.append(None)
                else:
                    problems.extend(not_yet_problems(entries[-1], f"{key}[{i}]"))
            values[key] = entries
            parsed = [e for e in entries if e is not None]
        else:
            try:
                values[key] = parsed = conv.structure(raw, section_type)
            except Exception as exc:
                problems.extend(problems_in(exc, key, section_type))
                values[key] = None
                continue
            problems.extend(not_yet_problems(parsed, key))
        what = field.metadata.get("not_yet")
        if what is not None and parsed != default_of(field):
            problems.append(f"{key}: {what} not supported yet")
        if field.validator is not None:
            try:
                field.validator(None, field, parsed)
            except Exception as exc:
                problems.extend(problems_in(exc, key))
    return Sections(values, declared), problems


def validate(sections: Sections) -> list[str]:
    """The checks that span fields or sections, on every part that parsed."""
    problems: list[str] = []
    server = sections.get("server")
    if server is not None and server.admin_port and server.admin_port == server.port:
        problems.append("server.admin_port: must differ from server.port")

    seen: set[str] = set()
    for i, p in sections.entries("providers"):
        if p.name in seen:
            problems.append(f'providers[{i}].name: duplicate provider name "{p.name}"')
        seen.add(p.name)

    providers = sections.declared.get("providers", set())
    models = sections.declared.get("models", set())
    for i, m in sections.entries("models"):
        where = f"models[{i}]"
        if m.targets is not None:
            problems.extend(_virtual_model_problems(where, m, models))
        elif m.provider is None:
            problems.append(f"{where}.provider: required key missing")
        elif providers is not None and m.provider not in providers:
            problems.append(f'{where}.provider: unknown provider "{m.provider}"')

    problems.extend(_target_cycles(sections))
    auth = sections.get("auth")
    if auth is not None:
        if auth.mode == "api_key" and not auth.keys:
            problems.append("auth.keys: api_key mode needs at least one key")
        for i, k in enumerate(auth.keys):
            if (k.key is None) == (k.key_sha256 is None):
                problems.append(f"auth.keys[{i}]: set exactly one of key or key_sha256")
        if auth.jwt is not None and (auth.jwt.jwks is None) == (auth.jwt.jwks_url is None):
            problems.append("auth.jwt: set exactly one of jwks or jwks_url")
    problems.extend(_responses_store_problems(sections))
    for i, g in sections.entries("guardrails"):
        if not (g.builtin or g.patterns or g.webhook):
            problems.append(f"guardrails[{i}]: set builtin, patterns or webhook")
    return problems


def _responses_store_problems(sections: Sections) -> Iterator[str]:
    """A redis responses store needs a URL (its own or [rate_limit]'s) and the `redis` extra."""
    responses = sections.get("responses")
    if responses is None or responses.store != "redis":
        return
    rate_limit = sections.get("rate_limit")
    if responses.redis_url is None and (rate_limit is None or rate_limit.redis_url is None):
        yield 'responses.redis_url: store "redis" needs a redis_url (here or in [rate_limit])'
    if find_spec("redis") is None:
        yield "responses.store: \"redis\" needs the redis package: pip install 'llm-gateway[redis]'"


def _names_model(names: set[str], model: str) -> bool:
    """Whether a target's model resolves among the configured names, as a client's name would."""
    if model in names:
        return True
    return any(n == "*" or (n.endswith("*") and model.startswith(n[:-1])) for n in names)


def _virtual_model_problems(where: str, m: ModelConfig, models: set[str] | None) -> Iterator[str]:
    assert m.targets is not None
    if not m.targets:
        yield f"{where}.targets: must list at least one target"
    if "*" in m.name:
        yield f"{where}.name: a virtual model needs an exact name (no \"*\")"
    for key in ("provider", "model"):
        if getattr(m, key) is not None:
            yield f"{where}.{key}: a virtual model has no {key} of its own (its targets do)"
    for key in ("defaults", "overrides"):
        if getattr(m, key):
            yield f"{where}.{key}: set {key} on the target models, not on the virtual model"
    for j, t in enumerate(m.targets):
        if t.model == m.name:
            yield f'{where}.targets[{j}].model: a virtual model cannot target itself'
        elif models is not None and not _names_model(models, t.model):
            yield f'{where}.targets[{j}].model: unknown model "{t.model}"'


def _target_cycles(sections: Sections) -> Iterator[str]:
    """Virtual models that reach themselves through other virtual models."""
    graph: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for i, m in sections.entries("models"):
        if m.targets:
            graph.setdefault(m.name, [t.model for t in m.targets if t.model != m.name])
            where.setdefault(m.name, f"models[{i}].targets")
    reported: set[str] = set()
    while True:
        cycle = find_cycle({k: v for k, v in graph.items() if k not in reported})
        if cycle is None or len(cycle) < 2:
            return
        reported.update(cycle)
        yield f"{where[cycle[0]]}: targets form a cycle: {' -> '.join(cycle)}"


def parse_config(data: dict[str, Any], *, source: str = "", base_dir: Path | None = None) -> Config:
    """Structure and validate a parsed TOML document; raise ConfigError listing every problem."""
    conv = converter(base_dir)
    _tag_providers(conv)
    sections, problems = _structure_sections(conv, data)
    problems.extend(validate(sections))
    if problems:
        raise ConfigError(problems)
    return Config(**sections.values, source=source)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config ({exc.strerror})"]) from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: invalid TOML ({exc})"]) from None
    return parse_config(data, source=str(path), base_dir=path.parent)


def redacted(config: Config) -> dict[str, Any]:
    """The config as plain data with every secret replaced by its source."""
    conv = cattrs.Converter()
    conv.register_unstructure_hook(Secret, lambda s: f"<redacted {s.source}>")
    data: dict[str, Any] = conv.unstructure(config)
    return data
