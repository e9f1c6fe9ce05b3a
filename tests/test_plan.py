"""Plans, health and the retry policy: pure pieces of failover, on an injected clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from gateway.health import HealthBoard
from gateway.plan import Planner, SmoothWeighted, VirtualModel, find_cycle
from gateway.retry import RetryPolicy, is_retryable_status, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PLAIN = {"gpt": ("gpt-route", "openai", "gpt-4o-mini"), "claude": ("claude-route", "anthropic", "claude-3"),
         "local": ("local-route", "vllm", "llama")}


def planner(virtual: dict[str, VirtualModel], health: HealthBoard | None = None) -> Planner[str]:
    return Planner(virtual, PLAIN.get, health or HealthBoard())


def test_plain_model_is_a_plan_of_one() -> None:
    plan = planner({}).plan("gpt")
    assert [(a.route, a.provider, a.upstream_model) for a in plan] == [("gpt-route", "openai", "gpt-4o-mini")]
    assert planner({}).plan("nope") == []


def test_priority_orders_groups() -> None:
    v = VirtualModel.build("r", [("claude", 1, 1), ("gpt", 0, 1), ("local", 2, 1)])
    p = planner({"r": v})
    for _ in range(5):
        assert [a.provider for a in p.plan("r")] == ["openai", "anthropic", "vllm"]


def test_smooth_weighted_shares_and_spread() -> None:
    rotation = SmoothWeighted([("a", 5), ("b", 1), ("c", 1)])
    firsts = [rotation.order()[0] for _ in range(700)]
    assert Counter(firsts) == {"a": 500, "b": 100, "c": 100}
    # smooth: the heavy member never leads more than its share in a row within one cycle of 7
    assert firsts[:7].count("a") == 5 and "b" in firsts[:7] and "c" in firsts[:7]


def test_weighted_order_lists_every_member_once() -> None:
    v = VirtualModel.build("r", [("gpt", 0, 3), ("claude", 0, 1)])
    p = planner({"r": v})
    leads = Counter()
    for _ in range(400):
        plan = p.plan("r")
        assert sorted(a.provider for a in plan) == ["anthropic", "openai"]
        leads[plan[0].provider] += 1
    assert leads == {"openai": 300, "anthropic": 100}


def test_nested_virtual_models_expand_in_place_without_duplicates() -> None:
    inner = VirtualModel.build("inner", [("claude", 0, 1), ("gpt", 1, 1)])
    outer = VirtualModel.build("outer", [("gpt", 0, 1), ("inner", 1, 1), ("local", 2, 1)])
    plan = planner({"inner": inner, "outer": outer}).plan("outer")
    assert [a.provider for a in plan] == ["openai", "anthropic", "vllm"]


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["gpt"]}) is None
    cycle = find_cycle({"a": ["b"], "b": ["c", "gpt"], "c": ["a"]})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_ejection_after_consecutive_failures_and_probe() -> None:
    clock = Clock()
    health = HealthBoard(eject_after=3, cooldown=30, clock=clock)
    v = VirtualModel.build("r", [("gpt", 0, 1), ("claude", 1, 1)])
    p = planner({"r": v}, health)
    key = "openai/gpt-4o-mini"
    health.failed(key)
    health.failed(key)
    health.succeeded(key)  # a success ends the streak
    health.failed(key)
    health.failed(key)
    assert not health.is_ejected(key)
    health.failed(key)
    assert health.is_ejected(key) and health.state(key) == "ejected"
    assert [a.provider for a in p.plan("r")] == ["anthropic", "openai"]  # ejected goes last
    clock.now += 29.9
    assert health.is_ejected(key)
    clock.now += 0.2
    assert not health.is_ejected(key)  # cooldown over: back in place for a probe
    assert [a.provider for a in p.plan("r")] == ["openai", "anthropic"]
    assert health.claim_probe(key)
    assert health.state(key) == "probing"
    assert health.is_ejected(key)  # while one request probes, the others don't pile on
    assert not health.claim_probe(key)
    health.failed(key)  # the probe failed: ejected again at once
    assert health.state(key) == "ejected"
    clock.now += 31
    assert health.claim_probe(key)
    health.succeeded(key)
    assert health.state(key) == "healthy" and not health.is_ejected(key)


def test_probe_that_never_reports_frees_the_slot() -> None:
    clock = Clock()
    health = HealthBoard(eject_after=1, cooldown=10, clock=clock)
    health.failed("k")
    clock.now += 11
    assert health.claim_probe("k")
    clock.now += 11
    assert health.claim_probe("k")


def test_eject_now_for_a_long_retry_after() -> None:
    health = HealthBoard(eject_after=5, cooldown=30, clock=Clock())
    health.failed("k", eject_now=True)
    assert health.is_ejected("k")


def test_retryable_statuses() -> None:
    assert [s for s in (200, 400, 401, 404, 429, 500, 501, 502, 503, 504, 529) if is_retryable_status(s)] == [
        429, 500, 502, 503, 504, 529]


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "-1"}) is None
    assert retry_after_seconds({}) is None
    fixed = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"retry-after": "Thu, 01 Jan 2026 00:00:07 GMT"}, lambda: fixed) == 7.0


def test_backoff_full_jitter_and_retry_after() -> None:
    policy = RetryPolicy(attempts=3, backoff=0.2, max_retry_after=10)
    assert policy.backoff_delay(0, lambda: 0.5) == 0.1
    assert policy.backoff_delay(2, lambda: 0.999) < 0.8 and policy.backoff_delay(2, lambda: 0.0) == 0.0
    assert policy.wait_for(0, 4.0) == (4.0, True)
    assert policy.wait_for(0, 11.0) == (0.0, False)
    assert policy.wait_for(1, None, lambda: 1.0) == (0.4, False)
