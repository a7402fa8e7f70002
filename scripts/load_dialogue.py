"""Load benchmark of the dialogue: N concurrent citizens on the web channel, mixed turns, on loopback.

    .venv/bin/python scripts/load_dialogue.py --url http://127.0.0.1:5005 --conversations 20 --seconds 60

Bounded in time and count; prints messages/s, latency percentiles and errors with the machine and command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import uuid

import requests

TURNS = [
    ["你好", "社保卡丢了怎么补办", "有用", "谢谢"],
    ["公积金提取", "都不是", "我辞职了想把公积金取出来", "那需要带什么材料？"],
    ["港澳通行证到期了怎么续签", "要多久", "没用"],
    ["我在深圳", "租房提取公积金怎么办理", "再见"],
    ["失业金每个月能领多少钱", "在哪里办？", "谢谢"],
    ["讲个笑话", "个税年度汇算怎么弄", "有用"],
]


def citizen(url: str, deadline: float, max_messages: int, out: list, lock: threading.Lock) -> None:
    session = requests.Session()
    n = 0
    while time.monotonic() < deadline and n < max_messages:
        sender = f"load-{uuid.uuid4().hex[:10]}"
        for text in TURNS[n % len(TURNS)]:
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            try:
                reply = session.post(url, json={"sender": sender, "message": text}, timeout=30)
                ok = reply.status_code == 200 and bool(reply.json().get("messages"))
            except requests.RequestException:
                ok = False
            with lock:
                out.append(((time.perf_counter() - started) * 1000, ok))
            n += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5005")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-messages", type=int, default=2000, help="per citizen")
    args = parser.parse_args()
    url = args.url.rstrip("/") + "/webhooks/web/webhook"
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [
        threading.Thread(target=citizen, args=(url, deadline, args.max_messages, results, lock))
        for _ in range(args.conversations)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies = sorted(ms for ms, _ in results)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] if latencies else 0.0

    report = {
        "messages": len(results),
        "messages_per_s": round(len(results) / elapsed, 2),
        "latency_ms_p50": round(pct(50), 1),
        "latency_ms_p95": round(pct(95), 1),
        "latency_ms_p99": round(pct(99), 1),
        "latency_ms_mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        "errors": sum(1 for _, ok in results if not ok),
        "conversations": args.conversations,
        "seconds": round(elapsed, 1),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
