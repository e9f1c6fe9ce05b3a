"""Accounting: totals per key, model and provider, bounded in size."""

from __future__ import annotations

from gateway.accounting import OVERFLOW_MODEL, Accounting
from gateway.usage import Usage


def test_records_add_up_per_key_and_model() -> None:
    acc = Accounting()
    acc.record("team-a", "gpt-x", "openai", Usage(input_tokens=10, output_tokens=2, cached_tokens=4))
    acc.record("team-a", "gpt-x", "openai", Usage(input_tokens=5, output_tokens=1, reasoning_tokens=1))
    acc.record("team-b", "gpt-x", "openai", Usage(input_tokens=7, output_tokens=7))
    a = acc.totals(identity="team-a")
    assert (a.records, a.input_tokens, a.output_tokens, a.cached_tokens, a.reasoning_tokens) == (2, 15, 3, 4, 1)
    assert a.total_tokens == 18
    assert acc.totals(model="gpt-x").records == 3
    assert acc.totals().input_tokens == 22


def test_new_models_beyond_the_cap_fold_into_one_entry() -> None:
    acc = Accounting(max_entries=2)
    for name in ("m1", "m2", "m3", "m4"):
        acc.record("k", name, "p", Usage(input_tokens=1))
    assert set(acc.entries()) == {("k", "m1", "p"), ("k", "m2", "p"), ("k", OVERFLOW_MODEL, "p")}
    assert acc.totals(model=OVERFLOW_MODEL).records == 2
    acc.record("k", "m1", "p", Usage(input_tokens=1))  # known entries still count
    assert acc.totals(model="m1").records == 2
