"""Measuring a run: psutil samples of every server's process tree (CPU, RSS, PSS), Locust's CSV read back,
and the summary (summary.json and the printed table)."""

from __future__ import annotations

import bisect
import csv
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from load.plan import CHAT_CHANNELS

MB = 1024 * 1024


@dataclass
class Usage:
    """One process tree over the run: CPU seconds at each sample, and its memory peaks."""

    times: list[float] = field(default_factory=list)  # time.time() of each sample
    cpu_s: list[float] = field(default_factory=list)  # the tree's CPU seconds (user + system) then
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    rss_peak: int = 0  # bytes: the largest sampled sum of the tree's resident memory
    pss_peak: int = 0  # bytes: the same of the proportional set size (shared pages split between processes)
    processes: set[int] = field(default_factory=set)

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds spent between two times, read at the samples nearest to them (at or inside)."""
        if not self.times:
            return 0.0
        first = min(bisect.bisect_left(self.times, start), len(self.times) - 1)
        last = max(bisect.bisect_right(self.times, end) - 1, first)
        return self.cpu_s[last] - self.cpu_s[first]


class Sampler(threading.Thread):
    """Samples every named process tree: CPU often, memory (memory_full_info reads smaps: slower) less often."""

    def __init__(self, interval: float, memory_every: int = 4) -> None:
        super().__init__(name="sampler", daemon=True)
        self.interval = interval
        self.memory_every = memory_every
        self.roots: dict[str, psutil.Process] = {}
        self.usage: dict[str, Usage] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self.roots[name] = psutil.Process(pid)
            self.usage[name] = Usage()

    def sample(self, memory: bool = True) -> None:
        with self._lock:
            for name, root in self.roots.items():
                usage = self.usage[name]
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    tree = []
                rss = pss = 0
                for proc in tree:
                    try:
                        with proc.oneshot():
                            cpu = proc.cpu_times()
                            # Kept per pid, so a child that exits still counts with its last reading.
                            usage.cpu_by_pid[proc.pid] = cpu.user + cpu.system
                            if memory:
                                info = proc.memory_full_info()
                                rss += info.rss
                                pss += info.pss
                        usage.processes.add(proc.pid)
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                usage.times.append(time.time())
                usage.cpu_s.append(sum(usage.cpu_by_pid.values()))
                usage.rss_peak = max(usage.rss_peak, rss)
                usage.pss_peak = max(usage.pss_peak, pss)

    def run(self) -> None:
        for n in range(1, 1 << 62):
            if self._stop_event.wait(self.interval):
                return
            self.sample(memory=n % self.memory_every == 0)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self.sample()


def machine() -> dict[str, Any]:
    """The machine, as every benchmark of the project names it, with the load it carried before the run."""
    from hotline.bench import machine as bench_machine

    return {
        **bench_machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def git_revision(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    except OSError:
        return ""
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def read_locust_csv(prefix: Path, seconds: float) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int]]]:
    """Locust's ``PREFIX_stats.csv`` and ``PREFIX_failures.csv``: per request name, rates over ``seconds``."""
    failures: dict[str, dict[str, int]] = {}
    failures_csv = Path(f"{prefix}_failures.csv")
    if failures_csv.exists():
        with open(failures_csv, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                failures.setdefault(row["Name"], {})[row["Error"]] = int(row["Occurrences"])
    rows: dict[str, dict[str, Any]] = {}
    with open(f"{prefix}_stats.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                continue
            count = int(row["Request Count"])
            rows[row["Name"]] = {
                "type": row["Type"],
                "requests": count,
                "per_s": round(count / seconds, 2) if seconds > 0 else 0.0,
                "ms_p50": _number(row["50%"]),
                "ms_p95": _number(row["95%"]),
                "ms_p99": _number(row["99%"]),
                "ms_max": _number(row["Max Response Time"]),
                "errors": int(row["Failure Count"]),
                "errors_by_kind": failures.get(row["Name"], {}),
            }
    return rows, failures


def _number(text: str) -> float | None:
    return None if text in ("", "N/A") else round(float(text), 1)


def processes(sampler: Sampler, start: float, end: float, chat_messages: int) -> list[dict[str, Any]]:
    out = []
    for name, usage in sampler.usage.items():
        cpu = usage.cpu_between(start, end)
        out.append(
            {
                "name": name,
                "processes": len(usage.processes),
                "cpu_s": round(cpu, 2),
                "cpu_percent": round(100 * cpu / (end - start), 1) if end > start else 0.0,
                "cpu_ms_per_chat_message": round(1000 * cpu / chat_messages, 1) if chat_messages else None,
                "rss_peak_mb": round(usage.rss_peak / MB),
                "pss_peak_mb": round(usage.pss_peak / MB),
            }
        )
    return out


def chat_messages(channels: dict[str, dict[str, Any]]) -> int:
    return sum(c["requests"] for name, c in channels.items() if name in CHAT_CHANNELS)


def print_summary(s: dict[str, Any]) -> None:
    m = s["machine"]
    out = [
        f"hotline-qa whole-system load (Locust), {s['layout']}",
        f"  command: {s['command']}",
        f"  locust:  {s['locust_command']}",
        f"  code:    {s['git'] or 'unknown'}; started {s['started_at']}",
        f"  machine: {m['cpu']}, {m['cores']} logical cores, {m['memory_gib']} GiB RAM, load average before "
        f"{'/'.join(str(x) for x in m['load_average_before'])}; {m['platform']}",
        f"  load:    {s['load']}",
        f"  measured window {s['window_s']} s (after warm-up and spawning); servers ready in {s['startup_s']} s",
        "",
        f"{'channel':28} {'type':11} {'requests':>8} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6}",
    ]
    for name, c in s["channels"].items():
        pct = [("-" if c[k] is None else f"{c[k]:.0f}") for k in ("ms_p50", "ms_p95", "ms_p99")]
        out.append(
            f"{name:28} {c['type']:11} {c['requests']:8d} {c['per_s']:7.2f} {pct[0]:>7} {pct[1]:>7} {pct[2]:>7} "
            f"{c['errors']:6d}"
        )
    for name, c in s["channels"].items():
        if c["errors_by_kind"]:
            out.append(f"  errors, {name}: " + ", ".join(f"{k} ×{v}" for k, v in c["errors_by_kind"].items()))
    out.append(
        "  admin publish = edit form + draft (editor) + draft page + publish (reviewer); PROPAGATION = from the "
        "publish reply until that worker's path serves the new answer (already there: the first request's latency)"
    )
    if s["open_loop"]:
        out.append("")
        out.append(f"open loop: {s['open_loop']['rate']} chat messages/s asked; per channel users × mean gap:")
        for name, o in s["open_loop"]["channels"].items():
            out.append(
                f"  {name:16} {o['users']:4d} users, gap {o['mean_gap_s']:.2f} s; started {o['started']}, "
                f"late {o['late']} (mean {o['late_ms_mean']:.0f} ms late: the user still waited for a reply)"
            )
    out.append("")
    out.append(
        f"{'process tree':14} {'procs':>5} {'CPU s':>7} {'CPU %':>6} {'CPU ms/chat msg':>15} {'peak RSS MB':>11} "
        f"{'peak PSS MB':>11}"
    )
    for p in s["processes"]:
        per = "-" if p["cpu_ms_per_chat_message"] is None else f"{p['cpu_ms_per_chat_message']:.1f}"
        out.append(
            f"{p['name']:14} {p['processes']:5d} {p['cpu_s']:7.1f} {p['cpu_percent']:6.1f} {per:>15} "
            f"{p['rss_peak_mb']:11d} {p['pss_peak_mb']:11d}"
        )
    out.append(
        f"  {s['chat_messages']} chat messages in the window. RSS counts pages shared between processes (forked "
        "workers, shared libraries) once per process; PSS splits each shared page between the processes that map "
        "it, so PSS adds up across processes. Peaks are of sampled sums over each process tree."
    )
    print("\n".join(out), flush=True)
