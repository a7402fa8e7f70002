"""Search latency with the result cache: a miss (real search, then stored) vs a hit, in process and in Redis.

    .venv/bin/python scripts/bench_cache.py [--redis-url redis://127.0.0.1:6379/14]

Real model, the sample knowledge base and its test questions; one thread. Each question is searched
once (miss) and again (hit). Redis keys go under a fresh prefix and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"p50 {statistics.median(ms):7.3f} ms   p95 {p95:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(ROOT / "var" / "models" / "multilingual-e5-small"))
    parser.add_argument(
        "--redis-url", default="", help="Also measure the Redis cache (e.g. redis://127.0.0.1:6379/14)."
    )
    args = parser.parse_args()

    import redis

    from knowledge_base.search.cache import LRUResultCache, RedisResultCache
    from knowledge_base.search.embedder import SentenceTransformerEmbedder
    from knowledge_base.search.kb import KnowledgeBase
    from knowledge_base.search.textnorm import TextNormaliser
    from knowledge_base.settings import Settings
    from knowledge_base.storage.store import SQLStore
    from knowledge_base.transfer import read_entries

    sample = ROOT / "knowledge_base" / "sample"
    questions = [json.loads(line)["query"] for line in (sample / "test_questions.jsonl").read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp)
        store = SQLStore(Path(tmp) / "kb.sqlite3")
        store.import_entries(read_entries(sample / "guangdong_kb.yaml"), author="bench")
        embedder = SentenceTransformerEmbedder(args.model_dir, threads=1)
        normaliser = TextNormaliser.from_dir()
        caches: dict[str, object] = {"in-process LRU": LRUResultCache()}
        client = None
        prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        if args.redis_url:
            client = redis.Redis.from_url(args.redis_url)
            caches["Redis"] = RedisResultCache(client, prefix=prefix)
        uncached = KnowledgeBase(store, embedder, normaliser, settings=settings)
        uncached.warm_up()
        for q in questions[:10]:  # warm the model's first calls
            uncached.search(q)
        machine = platform.processor() or platform.machine()
        print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        print(f"{len(questions)} questions, sample KB, KB version {uncached.kb_version}")
        # Interleaved per question, so that load from other processes hits every variant alike.
        kbs = {
            name: KnowledgeBase(store, embedder, normaliser, settings=settings, cache=cache)
            for name, cache in caches.items()
        }  # type: ignore[arg-type]
        for kb in kbs.values():
            kb.warm_up()
        times: dict[str, list[float]] = {"no cache": []}
        for name in kbs:
            times[f"{name} miss"], times[f"{name} hit"] = [], []
        try:
            for q in questions:
                started = time.perf_counter()
                uncached.search(q)
                times["no cache"].append(time.perf_counter() - started)
                for name, kb in kbs.items():
                    started = time.perf_counter()
                    first = kb.search(q)
                    times[f"{name} miss"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    again = kb.search(q)
                    times[f"{name} hit"].append(time.perf_counter() - started)
                    assert again == first
            for name, samples in times.items():
                print(f"{name:20} {percentiles(samples)}")
        finally:
            if client is not None:
                keys = list(client.scan_iter(f"{prefix}*"))
                if keys:
                    client.delete(*keys)
        store.close()


if __name__ == "__main__":
    main()
