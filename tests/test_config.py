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
    assert 'providers[1].kind: unknown provider kind "opena1" (one of openai, anthropic, mock)' in found
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
