"""Config: every problem listed by key path, secrets resolved and never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config, redacted

ROOT = Path(__file__).resolve().parent.parent


def problems(data: dict) -> list[str]:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_shipped_config_is_valid_and_uses_the_mock() -> None:
    config = load_config(ROOT / "gateway.toml")
    assert [p.kind for p in config.providers] == ["mock"]


def test_semantic_problems_are_all_listed_by_key_path() -> None:
    found = problems({
        "server": {"port": 70000},
        "providers": [{"name": "a", "kind": "mock"}, {"name": "b", "kind": "opena1"}],
        "models": [{"name": "x", "provider": "a"}, {"name": "y", "provider": "a"}, {"name": "z", "provider": "opena1"}],
        "routes": {"/v1/x": "nonsense"},
    })
    assert "server.port: must be 1-65535" in found
    assert 'providers[1].kind: unknown provider kind "opena1" (one of openai, anthropic, mock, gemini, vertex, azure, bedrock)' in found
    assert 'models[2].provider: unknown provider "opena1"' in found
    assert any(p.startswith('routes["/v1/x"]: unknown route type') for p in found)
    assert len(found) == 4


def test_type_problems_and_unknown_keys_name_their_path() -> None:
    found = problems({"server": {"port": "4000", "workerz": 2},
                      "providers": [{"name": "a", "kind": "mock", "timeouts": {"connect": "soon"}}]})
    assert "server.port: must be a whole number" in found
    assert "server.workerz: unknown key" in found
    assert "providers[0].timeouts.connect: must be a number" in found


def test_missing_env_secret_is_a_config_error_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SURELY_UNSET_KEY", raising=False)
    found = problems({"providers": [{"name": "o", "kind": "openai", "api_key": {"env": "SURELY_UNSET_KEY"}}]})
    assert found == ["providers[0].api_key: environment variable SURELY_UNSET_KEY is not set"]


def test_empty_env_secret_and_literal_secret_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY_KEY", "  ")
    found = problems({"providers": [{"name": "o", "kind": "openai", "api_key": {"env": "EMPTY_KEY"}},
                                    {"name": "p", "kind": "openai", "api_key": "sk-literal"}]})
    assert "providers[0].api_key: environment variable EMPTY_KEY is empty" in found
    assert any(p.startswith("providers[1].api_key: must be { env") for p in found)


def test_file_secret_is_read_and_redacted(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("sk-from-file-123456\n")
    (tmp_path / "gw.toml").write_text(
        '[[providers]]\nname = "o"\nkind = "openai"\napi_key = { file = "key.txt" }\n'
        '[[models]]\nname = "*"\nprovider = "o"\n')
    config = load_config(tmp_path / "gw.toml")
    assert config.providers[0].api_key is not None
    assert config.providers[0].api_key.value == "sk-from-file-123456"
    assert "sk-from-file" not in repr(config)
    assert "sk-from-file" not in str(redacted(config))
    assert "<redacted file:key.txt>" in str(redacted(config))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SURELY_UNSET_KEY"}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


BAD = """
[server]
port = 0
[[providers]]
name = "openai"
kind = "openai"
api_key = { env = "SURELY_UNSET_KEY" }
"""


def test_check_command_prints_every_problem_and_fails(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(BAD)
    result = run_cli("check", str(tmp_path / "bad.toml"))
    assert result.returncode == 2
    assert "providers[0].api_key: environment variable SURELY_UNSET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(BAD.replace('api_key = { env = "SURELY_UNSET_KEY" }', 'api_key = { env = "HOME" }'))
    result = run_cli("--config", str(tmp_path / "bad.toml"))
    assert result.returncode == 2
    assert "server.port: must be 1-65535" in result.stderr


def test_check_command_accepts_the_shipped_config() -> None:
    result = run_cli("check", "gateway.toml")
    assert result.returncode == 0 and "OK" in result.stdout


def test_invalid_toml_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[server\nport = 1")
    result = run_cli("check", str(tmp_path / "broken.toml"))
    assert result.returncode == 2 and "invalid TOML" in result.stderr


FOUR_MISTAKES = """
[server]
port = "4000"
[[providers]]
name = "openai"
kind = "openai"
api_key = { env = "SURELY_UNSET_KEY" }
colour = "blue"
[[models]]
name = "*"
provider = "opena1"
"""


def test_check_reports_every_kind_of_problem_in_one_run(tmp_path: Path) -> None:
    # A wrong type, an unknown key, an unset secret and a reference to a provider that does not
    # exist: one run lists all four, each with its key path.
    (tmp_path / "four.toml").write_text(FOUR_MISTAKES)
    result = run_cli("check", str(tmp_path / "four.toml"))
    assert result.returncode == 2
    lines = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert sorted(lines) == sorted([
        "server.port: must be a whole number",
        "providers[0].colour: unknown key",
        "providers[0].api_key: environment variable SURELY_UNSET_KEY is not set",
        'models[0].provider: unknown provider "opena1"',
    ])
    assert "4 problem(s)" in result.stderr.splitlines()[0]


def test_references_to_an_entry_that_did_not_parse_are_not_reported_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SURELY_UNSET_KEY", raising=False)
    found = problems({"providers": [{"name": "o", "kind": "openai", "api_key": {"env": "SURELY_UNSET_KEY"}}],
                      "models": [{"name": "*", "provider": "o"}, {"name": "x", "provider": "p"}]})
    assert found == ["providers[0].api_key: environment variable SURELY_UNSET_KEY is not set",
                     'models[1].provider: unknown provider "p"']


def test_references_into_a_section_that_is_not_an_array_of_tables_are_not_checked() -> None:
    assert problems({"providers": {"name": "o", "kind": "mock"}, "models": [{"name": "*", "provider": "o"}]}) == [
        "providers: must be an array of tables ([[providers]])"]


def test_every_refused_value_of_a_table_is_listed() -> None:
    found = problems({"server": {"port": 0, "admin_port": 70000, "workers": -1, "keepalive_timeout": 0},
                      "providers": [{"name": "m", "kind": "mock", "base_url": "ftp://x",
                                     "headers": {"bad name": "v", "x-ok": "line\nbreak"}}]})
    assert found == [
        "server.port: must be 1-65535",
        "server.workers: must be 0 (one per core) or more",
        "server.admin_port: must be 0-65535 (0 = off)",
        "server.keepalive_timeout: must be greater than 0",
        "providers[0].base_url: must start with http:// or https://",
        'providers[0].headers["bad name"]: invalid header name',
        'providers[0].headers["x-ok"]: header values must not contain line breaks',
    ]


def test_choices_name_what_is_allowed() -> None:
    found = problems({"observability": {"access_log": "xml"}, "auth": {"mode": "token"}})
    assert found == ['observability.access_log: must be one of "json", "text", "off" (got "xml")',
                     'auth.mode: must be one of "none", "api_key", "jwt", "any" (got "token")']


def test_provider_kinds_of_the_contract_are_typed_and_the_unbuilt_ones_refused_as_not_supported_yet() -> None:
    found = problems({"providers": [
        {"name": "g", "kind": "gemini", "api_key": {"env": "HOME"}},
        {"name": "b", "kind": "bedrock", "regoin": "us-east-1"},
        {"name": "a", "kind": "azure", "api_key": {"env": "HOME"}, "base_url": "https://r.openai.azure.com/openai",
         "api_version": "2024-10-21"},
        {"name": "v", "kind": "vertex", "project": "p", "location": "us-central1", "region": "x"},
        {"name": "o", "kind": "openai", "api_key": {"env": "HOME"}, "region": "us-east-1"},
        {"name": "n", "kind": "nope"},
    ]})
    assert found == [
        "providers[1].region: required key missing",
        "providers[1].regoin: unknown key",
        "providers[3].region: unknown key",
        "providers[4].region: unknown key",  # bedrock's key is not an openai key
        'providers[5].kind: unknown provider kind "nope" (one of openai, anthropic, mock, gemini, vertex, azure, bedrock)',
    ]


def test_providers_are_typed_per_kind() -> None:
    config = parse_config({"providers": [{"name": "o", "kind": "openai", "api_key": {"env": "HOME"}},
                                         {"name": "m", "kind": "mock"}],
                           "models": [{"name": "*", "provider": "o"}]})
    assert [type(p).__name__ for p in config.providers] == ["OpenAIProviderConfig", "MockProviderConfig"]
    assert [p.kind for p in config.providers] == ["openai", "mock"]
    assert problems({"providers": [{"name": "a", "kind": "anthropic"}]}) == ["providers[0].api_key: required key missing"]


def test_jwt_guardrails_and_prompts_are_typed_and_refused_as_not_supported_yet() -> None:
    found = problems({
        "auth": {"mode": "jwt", "jwt": {"issuer": "https://issuer.example", "algorithms": ["HS256"],
                                        "jwks_url": "https://issuer.example/jwks.json"}},
        "guardrails": [{"name": "pii", "on": "sideways", "builtin": ["email", "dna"], "patterns": ["("]},
                       {"name": "ok", "builtin": ["email"]}],
        "prompts": {"prepend": [{"role": "system", "content": "Be brief."}], "append": [{"content": "x"}]},
    })
    assert found == [
        'auth.mode: "jwt" is not supported yet',
        'auth.jwt.algorithms[0]: must be one of "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", '
        '"ES256", "ES384", "ES512", "EdDSA" (got "HS256")',
        'guardrails[0].on: must be one of "request", "response", "both" (got "sideways")',
        'guardrails[0].builtin[1]: must be one of "email", "credit_card", "ssn", "phone", "ipv4", "secret" (got "dna")',
        "guardrails[0].patterns[0]: not a regular expression (missing ), unterminated subpattern at position 0)",
        "guardrails: guardrails are not supported yet",
        "prompts.append[0].role: required key missing",
    ]
    assert problems({"auth": {"jwt": {"issuer": "i", "jwks_url": "https://i/jwks"}},
                     "guardrails": [{"name": "g", "patterns": ["x"]}],
                     "prompts": {"prepend": [{"role": "system", "content": "Be brief."}]}}) == [
        "auth.jwt: JWT auth is not supported yet",
        "guardrails: guardrails are not supported yet",
        "prompts: prompt policies are not supported yet",
    ]


def test_config_file_path_is_not_a_config_key() -> None:
    assert problems({"source": "elsewhere.toml"}) == ["source: unknown key"]


def test_an_entry_using_a_feature_not_built_yet_is_still_cross_checked() -> None:
    found = problems({"providers": [{"name": "m", "kind": "mock"}],
                      "models": [{"name": "fast", "provider": "m"},
                                 {"name": "resilient", "targets": [{"model": "fast"}, {"model": "fsat"}]}],
                      "auth": {"jwt": {"issuer": "https://issuer.example"}},
                      "rate_limit": {"store": "redis", "redis_url": {"env": "HOME"}}})
    assert found == [
        "auth.jwt: JWT auth is not supported yet",
        'rate_limit.store: store "redis" is not supported yet',
        'models[1].targets[1].model: unknown model "fsat"',
        "auth.jwt: set exactly one of jwks or jwks_url",
    ]


def test_virtual_model_mistakes_are_named() -> None:
    found = problems({"providers": [{"name": "m", "kind": "mock"}],
                      "models": [{"name": "fast", "provider": "m"},
                                 {"name": "empty", "targets": []},
                                 {"name": "typo", "targets": [{"model": "fsat"}]},
                                 {"name": "a", "targets": [{"model": "b"}]},
                                 {"name": "b", "targets": [{"model": "fast"}, {"model": "a"}]},
                                 {"name": "own", "provider": "m", "targets": [{"model": "fast"}]},
                                 {"name": "heavy", "targets": [{"model": "fast", "weight": 0}]}],
                      "retry": {"attempts": 0}})
    assert "models[1].targets: must list at least one target" in found
    assert 'models[2].targets[0].model: unknown model "fsat"' in found
    assert "models[3].targets: targets form a cycle: a -> b -> a" in found
    assert "models[5].provider: a virtual model has no provider of its own (its targets do)" in found
    assert any(p.startswith("models[6].targets[0].weight: must be at least 1") for p in found)
    assert "retry.attempts: must be at least 1" in found
