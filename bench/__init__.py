"""Benchmark harness for the gateway: fake upstream, load drivers, scenarios, runner.

Run everything with ``python -m bench`` (see ``bench/__main__.py`` and ``bench/README.md``).
"""
