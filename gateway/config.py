"""Gateway configuration: TOML → frozen attrs classes via cattrs, with every problem named by key path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from .secret import Secret, SecretError, resolve_secret

__all__ = [
    "AuthConfig",
    "AuthKey",
    "Config",
    "ConfigError",
    "ModelConfig",
    "ObservabilityConfig",
    "ProviderConfig",
    "ServerConfig",
    "Target",
    "Timeouts",
    "load_config",
    "parse_config",
    "redacted",
]

PROVIDER_KINDS = ("openai", "anthropic", "mock")
FUTURE_PROVIDER_KINDS = ("gemini", "bedrock", "azure", "vertex")
ROUTE_TYPES = (
    "completions",
    "responses",
    "messages",
    "anthropic_token_count",
    "embeddings",
    "models",
    "realtime",
    "passthrough",
)


class ConfigError(Exception):
    """The config has problems; `problems` lists each as `key.path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@attrs.frozen
class Timeouts:
    """Upstream timeouts in seconds; streams have no total cap."""

    connect: float = 5.0
    first_byte: float = 120.0
    idle: float = 120.0


@attrs.frozen
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 4000
    workers: int = 1
    max_request_bytes: int = 32 * 1024 * 1024  # bodies the gateway reads (JSON); larger → 413
    max_passthrough_bytes: int = 512 * 1024 * 1024  # streamed passthrough bodies; 0 = no cap
    ws_max_message_bytes: int = 16 * 1024 * 1024  # one WebSocket message, either direction
    admin_port: int = 15000
    keepalive_timeout: float = 120.0
    shutdown_timeout: float = 30.0
    max_upstream_connections: int = 4096
    default_max_tokens: int = 4096


@attrs.frozen
class ProviderConfig:
    name: str
    kind: str
    base_url: str | None = None
    api_key: Secret | None = None
    headers: dict[str, str] = attrs.Factory(dict)
    timeouts: Timeouts = Timeouts()


@attrs.frozen
class Target:
    model: str
    priority: int = 0
    weight: int = 1


@attrs.frozen
class ModelConfig:
    name: str
    provider: str | None = None
    model: str | None = None
    defaults: dict[str, Any] = attrs.Factory(dict)
    overrides: dict[str, Any] = attrs.Factory(dict)
    targets: list[Target] = attrs.Factory(list)


@attrs.frozen
class AuthKey:
    name: str
    key_sha256: str | None = None
    key: Secret | None = None
    models: list[str] = attrs.Factory(lambda: ["*"])
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@attrs.frozen
class AuthConfig:
    mode: str = "none"
    keys: list[AuthKey] = attrs.Factory(list)
    jwt: dict[str, Any] | None = None


@attrs.frozen
class RateLimitConfig:
    store: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"


@attrs.frozen
class PromptsConfig:
    prepend: list[dict[str, Any]] = attrs.Factory(list)
    append: list[dict[str, Any]] = attrs.Factory(list)


@attrs.frozen
class ObservabilityConfig:
    access_log: str = "json"
    log_prompts: bool = False
    otlp_endpoint: str = ""


@attrs.frozen
class Config:
    server: ServerConfig = ServerConfig()
    providers: list[ProviderConfig] = attrs.Factory(list)
    models: list[ModelConfig] = attrs.Factory(list)
    routes: dict[str, str] = attrs.Factory(dict)
    auth: AuthConfig = AuthConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    guardrails: list[dict[str, Any]] = attrs.Factory(list)
    prompts: PromptsConfig = PromptsConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    source: str = ""

    def provider(self, name: str) -> ProviderConfig:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(name)


def _converter(base_dir: Path | None) -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(Secret, lambda raw, _: resolve_secret(raw, base_dir))

    def strict_number(kind: type) -> Any:
        def hook(raw: Any, _: Any) -> Any:
            ok = isinstance(raw, int) or (kind is float and isinstance(raw, float))
            if not ok or isinstance(raw, bool):
                raise ValueError(f"must be a {'number' if kind is float else 'whole number'}")
            return kind(raw)

        return hook

    conv.register_structure_hook(int, strict_number(int))
    conv.register_structure_hook(float, strict_number(float))

    def strict_str(raw: Any, _: Any) -> str:
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        return raw

    def strict_bool(raw: Any, _: Any) -> bool:
        if not isinstance(raw, bool):
            raise ValueError("must be true or false")
        return raw

    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(bool, strict_bool)
    return conv


_UNKNOWN_KEYS = "unknown key(s): "


def _describe(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, SecretError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return _UNKNOWN_KEYS + ", ".join(sorted(exc.extra_fields))
    if isinstance(exc, ValueError) and str(exc).startswith("must"):
        return str(exc)
    if isinstance(exc, TypeError | ValueError):
        name = getattr(_type, "__name__", None) or str(_type)
        return f"invalid value (expected {name})"
    return str(exc)


def _flatten(path: str) -> str:
    path = path.removeprefix("$").removeprefix(".")
    return path or "(top level)"


def parse_config(data: dict[str, Any], *, source: str = "", base_dir: Path | None = None) -> Config:
    """Structure and validate a parsed TOML document; raise ConfigError listing every problem."""
    conv = _converter(base_dir)
    try:
        config = conv.structure(data, Config)
    except (ClassValidationError, IterableValidationError) as exc:
        problems = []
        for line in cattrs.transform_error(exc, format_exception=_describe):
            message, _, where = line.rpartition(" @ ")
            if message.startswith(_UNKNOWN_KEYS):
                prefix = where.removeprefix("$").removeprefix(".")
                for key in message.removeprefix(_UNKNOWN_KEYS).split(", "):
                    problems.append(f"{prefix + '.' if prefix else ''}{key}: unknown key")
            else:
                problems.append(f"{_flatten(where)}: {message}")
        # Structural errors first; semantic checks need a structured config.
        raise ConfigError(problems) from None
    config = attrs.evolve(config, source=source)
    problems = validate(config)
    if problems:
        raise ConfigError(problems)
    return config


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


def validate(config: Config) -> list[str]:
    """Semantic checks that types alone cannot express."""
    problems: list[str] = []
    s = config.server
    if not 1 <= s.port <= 65535:
        problems.append("server.port: must be 1-65535")
    if not 0 <= s.admin_port <= 65535:
        problems.append("server.admin_port: must be 0-65535 (0 = off)")
    if s.admin_port and s.admin_port == s.port:
        problems.append("server.admin_port: must differ from server.port")
    if s.workers < 0:
        problems.append("server.workers: must be 0 (one per core) or more")
    if s.max_request_bytes < 1024:
        problems.append("server.max_request_bytes: must be at least 1024")
    if s.max_passthrough_bytes < 0:
        problems.append("server.max_passthrough_bytes: must be 0 (no cap) or more")
    if s.ws_max_message_bytes < 1024:
        problems.append("server.ws_max_message_bytes: must be at least 1024")
    if s.max_upstream_connections < 1:
        problems.append("server.max_upstream_connections: must be at least 1")
    if s.default_max_tokens < 1:
        problems.append("server.default_max_tokens: must be at least 1")

    names: set[str] = set()
    for i, p in enumerate(config.providers):
        where = f"providers[{i}]"
        if p.name in names:
            problems.append(f'{where}.name: duplicate provider name "{p.name}"')
        names.add(p.name)
        if p.kind in FUTURE_PROVIDER_KINDS:
            problems.append(f'{where}.kind: provider kind "{p.kind}" is not supported yet')
        elif p.kind not in PROVIDER_KINDS:
            allowed = ", ".join(PROVIDER_KINDS)
            problems.append(f'{where}.kind: unknown provider kind "{p.kind}" (one of {allowed})')
        if p.base_url is not None and not p.base_url.startswith(("http://", "https://")):
            problems.append(f"{where}.base_url: must start with http:// or https://")
        if p.kind in ("openai", "anthropic") and p.api_key is None:
            problems.append(f"{where}.api_key: required for kind {p.kind}")
        for field in ("connect", "first_byte", "idle"):
            if getattr(p.timeouts, field) <= 0:
                problems.append(f"{where}.timeouts.{field}: must be greater than 0")
        for header in p.headers:
            if not header or any(c in header for c in " :\r\n"):
                problems.append(f'{where}.headers: invalid header name "{header}"')

    model_names = {m.name for m in config.models}
    for i, m in enumerate(config.models):
        where = f"models[{i}]"
        if not m.name:
            problems.append(f"{where}.name: must not be empty")
        elif "*" in m.name[:-1]:
            problems.append(f'{where}.name: "*" is only allowed at the end')
        if m.targets:
            problems.append(f"{where}.targets: virtual models with targets are not supported yet")
            for j, t in enumerate(m.targets):
                if t.model not in model_names:
                    problems.append(f'{where}.targets[{j}].model: unknown model "{t.model}"')
        elif m.provider is None:
            problems.append(f"{where}.provider: required key missing")
        elif m.provider not in names:
            problems.append(f'{where}.provider: unknown provider "{m.provider}"')
        for key in ("model", "stream"):
            if key in m.defaults or key in m.overrides:
                problems.append(f'{where}: "{key}" cannot be set in defaults/overrides')

    for suffix, route in config.routes.items():
        if not suffix.startswith("/"):
            problems.append(f'routes["{suffix}"]: path suffix must start with "/"')
        if route not in ROUTE_TYPES:
            allowed = ", ".join(ROUTE_TYPES)
            problems.append(f'routes["{suffix}"]: unknown route type "{route}" (one of {allowed})')

    auth = config.auth
    if auth.mode not in ("none", "api_key"):
        if auth.mode in ("jwt", "any"):
            problems.append(f'auth.mode: "{auth.mode}" is not supported yet')
        else:
            problems.append(f'auth.mode: unknown mode "{auth.mode}" (one of none, api_key)')
    if auth.mode == "api_key" and not auth.keys:
        problems.append("auth.keys: api_key mode needs at least one key")
    for i, k in enumerate(auth.keys):
        where = f"auth.keys[{i}]"
        if (k.key is None) == (k.key_sha256 is None):
            problems.append(f"{where}: set exactly one of key or key_sha256")
        if k.key_sha256 is not None and (
            len(k.key_sha256) != 64 or any(c not in "0123456789abcdef" for c in k.key_sha256)
        ):
            problems.append(f"{where}.key_sha256: must be 64 lowercase hex characters")
        if k.requests_per_minute is not None or k.tokens_per_minute is not None:
            problems.append(f"{where}: per-key rate limits are not supported yet")
    if auth.jwt is not None:
        problems.append("auth.jwt: JWT auth is not supported yet")
    if config.guardrails:
        problems.append("guardrails: guardrails are not supported yet")
    if config.prompts.prepend or config.prompts.append:
        problems.append("prompts: prompt injection policies are not supported yet")
    if config.observability.access_log not in ("json", "text", "off"):
        problems.append('observability.access_log: must be "json", "text" or "off"')
    if config.observability.otlp_endpoint:
        problems.append("observability.otlp_endpoint: OpenTelemetry export is not supported yet")
    return problems


def redacted(config: Config) -> dict[str, Any]:
    """The config as plain data with every secret replaced by its source."""
    conv = cattrs.Converter()
    conv.register_unstructure_hook(Secret, lambda s: f"<redacted {s.source}>")
    data: dict[str, Any] = conv.unstructure(config)
    return data
