"""Route table and model matching."""

from __future__ import annotations

from gateway.config import ModelConfig
from gateway.model_router import ModelRouter
from gateway.routes import RouteTable


def test_route_suffix_longest_wins_and_prefixes_work() -> None:
    table = RouteTable()
    assert table.match("/v1/messages").route == "messages"
    assert table.match("/v1/messages/count_tokens").route == "anthropic_token_count"
    assert table.match("/openai/v1/chat/completions").route == "completions"
    assert table.match("/v1/models/gpt-4o").item == "gpt-4o"
    assert table.match("/v1/files").route == "passthrough"


def test_routes_config_overrides_and_extends() -> None:
    table = RouteTable({"/chat": "completions", "/v1/embeddings": "passthrough"})
    assert table.match("/team/chat").route == "completions"
    assert table.match("/v1/embeddings").route == "passthrough"


def test_model_matching_exact_then_longest_prefix_then_wildcard() -> None:
    router = ModelRouter([
        ModelConfig(name="*", provider="any"),
        ModelConfig(name="gpt-*", provider="short"),
        ModelConfig(name="gpt-4o*", provider="long"),
        ModelConfig(name="gpt-4o-mini", provider="exact", model="upstream-mini"),
    ])
    assert router.resolve("gpt-4o-mini").provider == "exact"  # type: ignore[union-attr]
    assert router.resolve("gpt-4o-mini").upstream_name("gpt-4o-mini") == "upstream-mini"  # type: ignore[union-attr]
    assert router.resolve("gpt-4o-2024").provider == "long"  # type: ignore[union-attr]
    assert router.resolve("gpt-3.5").provider == "short"  # type: ignore[union-attr]
    assert router.resolve("claude").provider == "any"  # type: ignore[union-attr]
    assert ModelRouter([ModelConfig(name="x", provider="p")]).resolve("y") is None
