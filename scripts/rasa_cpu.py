"""CPU and memory of the trained Rasa model in one process, TensorFlow loaded against left out.

Run with Rasa's Python from the repository root:

    .venv-rasa/bin/python scripts/rasa_cpu.py [--runs 5] [--messages 800]

Each run is a fresh process (the arms alternate, so a machine that slows down meets both): it loads
bot/models/hotline.tar.gz with TensorFlow's stand-ins or the real one (bot.sh's other tunings are not
applied, so the arms differ only in TensorFlow), warms
up, then classifies ``--messages`` messages and handles a quarter as many through the dialogue policies
(no action server: the policies, the tracker and the NLU are what is measured), and reports its CPU
seconds and peak resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "bot" / "models" / "hotline.tar.gz"
TEXTS = ["你好", "社保卡丢了怎么办", "我要投诉楼下噪音", "谢谢", "公积金怎么提取", "转人工", "没用", "深圳怎么办居住证"]


def one_run(left_out: bool, messages: int) -> dict[str, float]:
    """One arm in this process: load the model, warm up, count the CPU of the messages."""
    from channels import tuning

    if left_out:
        tuning.leave_out_tensorflow()
    else:
        tuning.leave_out_jax()
    logging.disable(logging.WARNING)
    from rasa.core.agent import load_agent

    agent = asyncio.run(load_agent(model_path=str(MODEL)))

    async def talk(count: int) -> None:
        for k in range(count):
            await agent.parse_message(TEXTS[k % len(TEXTS)])
        for k in range(count // 4):
            await agent.handle_text(TEXTS[k % len(TEXTS)], sender_id=f"bench-{k % 20}")

    asyncio.run(talk(messages // 10))
    started = time.process_time()
    asyncio.run(talk(messages))
    return {
        "cpu_s": time.process_time() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of each arm (default 5)")
    parser.add_argument("--messages", type=int, default=800, help="messages classified per run (default 800)")
    parser.add_argument("--arm", choices=["loaded", "left-out"], help=argparse.SUPPRESS)  # one run, internal
    args = parser.parse_args()
    if args.runs < 1 or args.messages < 10:
        parser.error("--runs must be at least 1 and --messages at least 10")
    if args.arm:
        print(json.dumps(one_run(args.arm == "left-out", args.messages)))
        return 0
    if not MODEL.is_file():
        parser.error(f"{MODEL} is missing: train it with `bash scripts/bot.sh train`")
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f}")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'bot'}{os.pathsep}{ROOT}"}
    results: dict[str, list[dict[str, float]]] = {"loaded": [], "left-out": []}
    for run in range(args.runs):
        for arm in results:
            done = subprocess.run(
                [sys.executable, __file__, "--arm", arm, "--messages", str(args.messages)],
                cwd=ROOT / "bot", env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results[arm].append(result)
            cpu_s, rss_mb = result["cpu_s"], result["peak_rss_mb"]
            print(f"run {run + 1} TensorFlow {arm:8}  CPU {cpu_s:.2f} s  peak RSS {rss_mb:.0f} MB", flush=True)
    for arm, runs in results.items():
        cpu = [r["cpu_s"] for r in runs]
        peak = max(r["peak_rss_mb"] for r in runs)
        print(
            f"TensorFlow {arm:8}  CPU median {statistics.median(cpu):.2f} s, mean {statistics.mean(cpu):.2f} s "
            f"(min {min(cpu):.2f}, max {max(cpu):.2f}) for {args.messages} messages + {args.messages // 4} turns; "
            f"peak RSS {peak:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
