"""Turn measured rows into tables: aligned text for the terminal, Markdown for RESULTS.md."""

from __future__ import annotations

from pathlib import Path

from bench.measure import Row
from bench.scenarios import Scenario

RESULTS_HEADER = """\
# Benchmark results

Appended by `python -m bench` (see `bench/README.md`); newest run last. Every scenario is
measured directly against the fake upstream (`direct`) and through the gateway in the same
run, on the same machine, with the same driver.

Columns:

- **req/s**: successful responses per second over the measured window (after a warm-up).
- **p50 / p99 ms**: full-response latency percentiles (wrk, or the Python driver).
- **+p50 ms**: p50 of this row minus p50 of `direct`: the latency the server adds.
- **ttfb p50 ms / +ttfb ms** (streams only): time to the first body byte, measured by the
  Python driver at concurrency 1, and what the server adds to it versus `direct`.
- **CPU µs/req**: utime+stime of the server's process tree (`/proc/<pid>/stat`) over the
  window, divided by the successful requests. For `direct` that is the upstream's own cost.
- **VmHWM MB / VmRSS MB**: peak resident memory during the scenario (VmHWM, reset before
  each scenario through `clear_refs`) and resident memory at its end, summed over the tree.
- **req/s vs direct / p50 vs direct**: ratios against the `direct` row.
- Idle streams: RSS at rest, RSS with the streams held open (and KiB per stream), the peak,
  RSS once they are closed, and open file descriptors at rest / held / after close (a
  server that cancels the upstream request when its client leaves returns to the first).
- note "the hypervisor withheld N% of a core (steal time)": on a virtual machine, the host
  ran other guests while this one wanted the CPU (/proc/stat steal); that row's CPU and
  latency figures are inflated. `python -m bench.instructions` is immune to it.
- note "other processes used N% of a core": during that window the machine spent CPU on
  processes outside the benchmark (the upstream, driver, servers and runner are accounted
  for); that row's figures are skewed.
- `n/a (error: ...)`: the server failed that scenario (non-2xx, broken stream, refused
  connection...); the run went on. Up to 0.1% failed requests still give figures, flagged.

Pinning on 2 cores: the server under test on core 0 (`taskset -c 0`), the upstream and the
load driver together on core 1; `--workers 2` runs unpinned across both cores and so competes
with the upstream and the driver.
"""

LOAD_COLUMNS = ["target", "req/s", "p50 ms", "p99 ms", "+p50 ms", "ttfb p50 ms", "+ttfb ms",
                "CPU µs/req", "VmHWM MB", "VmRSS MB", "req/s vs direct", "p50 vs direct"]
IDLE_COLUMNS = ["target", "streams open", "open s", "RSS at rest MB", "RSS held MB",
                "+KiB/stream", "VmHWM MB", "RSS after close MB", "fds rest/held/after"]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}"


def _diff(value: float | None, base: float | None) -> str:
    return "-" if value is None or base is None else f"{value - base:+.2f}"


def load_cells(row: Row, direct: Row | None) -> list[str]:
    """Cells of a load row (without the label); an error row yields one cell."""
    if row.error or row.load is None:
        return [f"n/a (error: {row.error or 'no result'})"]
    res, base = row.load, direct.load if direct and not direct.error else None
    ttfb = row.ttfb.ttfb_p50_ms if row.ttfb else None
    base_ttfb = direct.ttfb.ttfb_p50_ms if direct and direct.ttfb else None
    return [
        f"{res.rps:,.0f}", _ms(res.p50_ms), _ms(res.p99_ms),
        _diff(res.p50_ms, base.p50_ms if base else None) if row is not direct else "-",
        _ms(ttfb), _diff(ttfb, base_ttfb) if row is not direct else "-",
        "-" if row.cpu_us is None else f"{row.cpu_us:,.0f}",
        _mb(row.memory.hwm_kb if row.memory else None),
        _mb(row.memory.rss_kb if row.memory else None),
        _ratio(res.rps, base.rps if base else None),
        _ratio(res.p50_ms, base.p50_ms if base else None),
    ]


def idle_cells(row: Row) -> list[str]:
    """Cells of an idle-streams row (without the label)."""
    figures = row.idle
    if figures is None:
        return [f"n/a (error: {row.error or 'no result'})"]
    per_stream = (figures.held_kb - figures.rest_kb) / figures.opened if figures.opened else None
    cells = [f"{figures.opened}/{figures.wanted}", f"{figures.open_seconds:.1f}",
             _mb(figures.rest_kb), _mb(figures.held_kb),
             "-" if per_stream is None else f"{per_stream:.1f}", _mb(figures.hwm_kb),
             _mb(figures.after_kb), "/".join(str(n) for n in figures.fds)]
    if row.error:
        cells[0] += f" (error: {row.error})"
    return cells


def table(scenario: Scenario, rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of one scenario's table."""
    if scenario.idle_streams:
        return IDLE_COLUMNS, [[row.label, *idle_cells(row)] for row in rows]
    direct = rows[0] if rows else None
    columns = LOAD_COLUMNS if scenario.ttfb else [
        c for c in LOAD_COLUMNS if "ttfb" not in c]
    body = []
    for row in rows:
        cells = load_cells(row, direct)
        if not scenario.ttfb and len(cells) > 1:
            cells = cells[:4] + cells[6:]
        body.append([row.label, *cells])
    return columns, body


def notes(scenario: Scenario, rows: list[Row]) -> list[str]:
    """Footnotes: the scenario's own note, flagged errors, worker scaling."""
    lines = [scenario.note] if scenario.note else []
    lines += [f"{row.label}: {row.note}" for row in rows if row.note]
    if scenario.workers > 1:
        one = next((r for r in rows if "1 worker" in r.label and r.load and not r.error), None)
        many = next((r for r in rows if "workers" in r.label and r.load and not r.error), None)
        if one and many and one.load and many.load and one.load.rps:
            lines.append(f"{scenario.workers} workers / 1 worker: "
                         f"{many.load.rps / one.load.rps:.2f}x req/s")
    return lines


def render_text(scenario: Scenario, rows: list[Row]) -> str:
    """An aligned plain-text table with its title and notes."""
    columns, body = table(scenario, rows)
    full = [columns] + [cells for cells in body if len(cells) > 2]
    widths = [max(len(cells[i]) for cells in full) for i in range(len(columns))]
    widths[0] = max(len(cells[0]) for cells in [columns, *body])

    def line(cells: list[str]) -> str:
        if len(cells) == 2:  # an error row: label, then the message
            return f"{cells[0]:<{widths[0]}}  {cells[1]}"
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=False)))

    out = [f"== {scenario.name}: {scenario.title}", line(columns)]
    out += [line(cells) for cells in body]
    out += [f"   note: {n}" for n in notes(scenario, rows)]
    return "\n".join(out)


def render_markdown(scenario: Scenario, rows: list[Row]) -> str:
    """A Markdown table with its title and notes."""
    columns, body = table(scenario, rows)

    def line(cells: list[str]) -> str:
        cells = cells + [""] * (len(columns) - len(cells))
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"### {scenario.name}: {scenario.title}", "", line(columns),
           "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    out += [line(cells) for cells in body]
    out += [f"\n- {n}" if i == 0 else f"- {n}" for i, n in enumerate(notes(scenario, rows))]
    return "\n".join(out) + "\n"


def append_results(path: Path, heading: str, context: list[str], sections: list[str]) -> None:
    """Append one run to RESULTS.md, creating the file with its header first."""
    if not path.exists():
        path.write_text(RESULTS_HEADER)
    parts = [f"\n## {heading}\n", *[f"- {c}" for c in context], "", *sections]
    with path.open("a") as handle:
        handle.write("\n".join(parts))
