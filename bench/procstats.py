"""CPU time and memory of a process tree, read from /proc (Linux only).

A gateway started with ``--workers N`` may fork, so every reading covers the process and
its live descendants. CPU is utime+stime (``/proc/<pid>/stat`` fields 14 and 15); memory is
VmRSS (now) and VmHWM (peak since start, or since the last ``reset_peak``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs

PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@attrs.frozen
class Memory:
    """Resident memory of a process tree, in KiB (sums over its processes)."""

    rss_kb: int
    hwm_kb: int


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from ``/proc/<pid>/task/*/children``."""
    found: list[int] = []
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if (PROC / str(current)).exists():
            tree.append(current)
            todo += children(current)
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """Sum of user+system CPU seconds of ``pids`` (processes gone are skipped)."""
    ticks = 0
    for pid in pids:
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces or ')'
        ticks += int(fields[11]) + int(fields[12])  # fields 14, 15 of the whole line
    return ticks / _TICK


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (tells a reused PID apart)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])  # field 22 of the whole line


def memory(pids: list[int]) -> Memory:
    """VmRSS and VmHWM summed over ``pids``."""
    rss = hwm = 0
    for pid in pids:
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return Memory(rss_kb=rss, hwm_kb=hwm)


def open_fds(pids: list[int]) -> int:
    """Open file descriptors (sockets included) summed over ``pids``."""
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(PROC / str(pid) / "fd"))
        except OSError:
            continue
    return total


def reset_peak(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > clear_refs``); False where not allowed."""
    done = True
    for pid in pids:
        try:
            (PROC / str(pid) / "clear_refs").write_text("5")
        except OSError:
            done = False
    return done


def machine_cpu_seconds() -> float:
    """CPU seconds all processes on the machine spent in user and system mode (/proc/stat)."""
    fields = (PROC / "stat").read_text().split("\n", 1)[0].split()
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / _TICK  # user, nice, system


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this machine wanted to run
    (/proc/stat "steal", all CPUs); 0 on bare metal."""
    fields = (PROC / "stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / _TICK if len(fields) > 8 else 0.0


def children_cpu_seconds() -> float:
    """CPU seconds of this process's finished (waited-for) children, e.g. wrk runs."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat), to flag a noisy machine."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)
