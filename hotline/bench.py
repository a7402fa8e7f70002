"""Benchmarks: retrieval accuracy and latency on a labelled KB file, and index scale on synthetic data.

Both report what they measured together with the machine and the command, so a
number in the README can be traced and re-run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hotline.evaluation import (
    LabelledQuery,
    Ranked,
    decision_metrics,
    percentile,
    read_queries,
    retrieval_metrics,
)
from knowledge_base.records import Entry, Status
from knowledge_base.search.embedder import ONNX_TOKENIZER, Embedder
from knowledge_base.search.kb import KnowledgeBase
from knowledge_base.search.lexical import BM25Index
from knowledge_base.search.ranking import Thresholds
from knowledge_base.search.textnorm import TextNormaliser
from knowledge_base.settings import Settings
from knowledge_base.storage.store import SQLStore


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _single_thread() -> None:
    """Latency is measured on one core, as one worker process serves one request."""
    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def _all_threads() -> None:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)


def configurations(settings: Settings) -> dict[str, Settings]:
    """The shipped default, the same with the other encoder (torch or onnx), and the baseline it must beat."""
    other = "torch" if settings.embedder == "onnx" else "onnx"
    return {
        "default": settings,
        other: dataclasses.replace(settings, embedder=other),
        "e5_plain": dataclasses.replace(settings, embed_text="raw", lexical_weight=0.0),
    }


_ENCODER_RSS_SCRIPT = """
import sys
from pathlib import Path

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

from knowledge_base.search.embedder import OnnxEmbedder, SentenceTransformerEmbedder
before = rss_mb()
kind = OnnxEmbedder if sys.argv[1] == "onnx" else SentenceTransformerEmbedder
kind(sys.argv[2], prefix=sys.argv[3], threads=1).encode(["社保卡丢了怎么补办"])
print(before, rss_mb())
"""


def encoder_rss_mb(settings: Settings) -> dict[str, float]:
    """Resident memory of a fresh process once it has loaded the encoder ``settings.embedder`` and embedded a text.

    A benchmark process holds every configuration at once, so its own RSS cannot tell the encoders apart.

    Returns:
        ``{"before_mb": ..., "loaded_mb": ...}``: after importing numpy and the embedder module, and after one
        encode (the whole process: interpreter, libraries, weights, buffers).
    """
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", _ENCODER_RSS_SCRIPT, settings.embedder, str(settings.model_path), settings.model_prefix],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    before, loaded = (float(x) for x in done.stdout.split()[-2:])
    return {"before_mb": round(before, 1), "loaded_mb": round(loaded, 1)}


def run_retrieval(
    kb_file: Path,
    queries_file: Path,
    *,
    settings: Settings,
    embedder_for: Callable[[Settings], Embedder],
    limit: int | None = None,
    progress: bool = False,
    encoder_memory: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Index ``kb_file`` once per configuration and run every query through each of them.

    The configurations take turns query by query (in a rotating order), so that a machine whose load
    changes during the run slows them alike and their latencies stay comparable.

    With ``encoder_memory``, a fresh process loads each real encoder in turn to report its resident memory
    (``encoder_rss``).

    Returns:
        ``{"hit_at_1", "mrr_at_10", "recall_at_5", "n_queries", "latency_ms_p50", "latency_ms_p95", ...}`` for
        the default configuration, plus ``configs`` with the same for every configuration and BM25 alone.
    """
    from knowledge_base.transfer import read_entries

    _single_thread()
    entries = read_entries(kb_file)
    queries = read_queries(queries_file, limit=limit)
    normaliser = TextNormaliser.from_dir()
    store = SQLStore(":memory:")
    store.import_entries(entries, author="bench")
    thresholds = Thresholds.from_mapping(settings.thresholds())
    report: dict[str, Any] = {"configs": {}}
    variants = configurations(settings)
    kbs: dict[str, KnowledgeBase] = {}
    build_s: dict[str, float] = {}
    for name, variant in variants.items():
        log(f"[{name}] indexing {len(entries)} entries from {kb_file.name} ({variant.embedder})")
        kbs[name] = KnowledgeBase(store, embedder_for(variant), normaliser, settings=variant)
        started = time.perf_counter()
        kbs[name].warm_up(progress=progress)
        build_s[name] = time.perf_counter() - started
    ranked = rank_queries_in_turn(kbs, queries, progress=progress)
    for name, variant in variants.items():
        kb = kbs[name]
        results, latencies = ranked[name]
        report["configs"][name] = {
            **retrieval_metrics(results),
            **decision_metrics(results, thresholds),
            "latency_ms_p50": percentile(latencies, 50),
            "latency_ms_p95": percentile(latencies, 95),
            "index_build_s": build_s[name],
            "peak_rss_mb": peak_rss_mb(),
            "update_to_searchable_ms": _time_one_update(kb),
            "embedder": variant.embedder,
            "embed_text": variant.embed_text,
            "lexical_weight": variant.lexical_weight,
            "lexical_tokens": variant.lexical_tokens,
        }
        log(_line(name, report["configs"][name]))
    report["encoder_rss"] = {}
    for backend in ("torch", "onnx") if encoder_memory else ():
        rss = report["encoder_rss"][backend] = encoder_rss_mb(dataclasses.replace(settings, embedder=backend))
        log(f"[{backend}] a fresh process holding only the encoder: {rss['loaded_mb']:.0f} MB")
    log("[bm25] ranking by BM25 alone (jieba cut_for_search words of the normalised text)")
    results, latencies, lexical_build = bm25_alone(entries, queries, normaliser, progress=progress)
    report["configs"]["bm25"] = {
        **retrieval_metrics(results),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
        "index_build_s": lexical_build,
        "peak_rss_mb": peak_rss_mb(),
    }
    log(_line("bm25", report["configs"]["bm25"]))
    report["vocabulary"] = coverage = vocabulary_coverage(queries, settings.model_path)
    if coverage:
        log(
            f"[vocabulary] {coverage['outside']} of {coverage['chars']} query characters are outside the ONNX "
            f"export's trimmed vocabulary {coverage['examples'] or ''}"
        )
    report.update({k: v for k, v in report["configs"]["default"].items()})
    report.update(
        kb_file=str(kb_file),
        queries_file=str(queries_file),
        n_entries=len(entries),
        n_phrasings=sum(len(e.phrasings()) for e in entries),
        thresholds=settings.thresholds(),
        machine=machine(),
        command=" ".join(["hotline", *sys.argv[1:]]),
    )
    return report


def vocabulary_coverage(queries: list[LabelledQuery], model_dir: Path) -> dict[str, Any]:
    """How many query characters the ONNX export's trimmed vocabulary lacks (each becomes ``<unk>`` there).

    Counted on the text as the tokenizer normalises it, prefix aside. Empty when the folder has no trimmed export.

    Returns:
        ``{"chars": ..., "outside": ..., "examples": {character: count}}`` (the ten most frequent outside).
    """
    from collections import Counter

    from tokenizers import Tokenizer

    from hotline.onnx_vocab import outside_chars

    path = Path(model_dir) / ONNX_TOKENIZER
    if not path.is_file():
        return {}
    normalizer = Tokenizer.from_file(str(path)).normalizer
    chars, outside = 0, Counter[str]()
    for q in queries:
        text = normalizer.normalize_str(q.query) if normalizer is not None else q.query
        chars += sum(1 for c in text if not c.isspace())
        outside.update(outside_chars(text))
    return {"chars": chars, "outside": sum(outside.values()), "examples": dict(outside.most_common(10))}


def bm25_alone(
    entries: list[Entry], queries: list[LabelledQuery], normaliser: TextNormaliser, *, progress: bool = False
) -> tuple[list[Ranked], list[float], float]:
    """The BM25-alone baseline over every phrasing: outcomes, per-query milliseconds, build seconds."""
    started = time.perf_counter()
    today = date.today()
    bm25 = BM25Index()
    owners: dict[int, str] = {}
    for entry in entries:
        if not entry.in_effect(today):
            continue
        for phrasing in entry.phrasings():
            owners[len(owners)] = entry.key
            bm25.add(len(owners) - 1, normaliser.tokens(phrasing))
    build_s = time.perf_counter() - started
    results, latencies = [], []
    for q in _progress(queries, progress, "bm25 queries"):
        started = time.perf_counter()
        best: dict[str, float] = {}
        for doc_id, score in bm25.search(normaliser.tokens(q.query), 100):
            best.setdefault(owners[doc_id], score)
        ranked = sorted(best.items(), key=lambda item: -item[1])[:10]
        latencies.append((time.perf_counter() - started) * 1000)
        results.append(Ranked(q.gold, tuple(k for k, _ in ranked), tuple(s for _, s in ranked)))
    return results, latencies, build_s


def run_lexical(
    kb_files: list[Path],
    queries_file: Path | None,
    *,
    settings: Settings,
    embedder: Embedder,
    limit: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Lexical evidence side by side, per knowledge-base file: plain e5, BM25 alone, the default, the fitted weight.

    Each query is searched once and ranked at every weight (the same fusion a search runs).
    The fitted weight is the knowledge base's own leave-one-wording-out fit when its entries
    have similar questions; otherwise it is cross-fitted on the queries (two folds split by
    right entry: the weight chosen on one fold is measured on the other), so no query is
    scored at a weight chosen on itself.
    """
    from knowledge_base.search.fitting import LEXICAL_WEIGHTS, best_weight, fit_held_out, rank, sweep_weights
    from knowledge_base.transfer import read_entries

    queries = read_queries(queries_file, limit=limit) if queries_file is not None else []
    wrap = _bar if progress else _no_bar
    rows = []
    for kb_file in kb_files:
        log(f"[{kb_file.name}] indexing")
        entries = read_entries(kb_file)
        kb = open_file_kb(kb_file, settings, embedder, progress=progress)
        row: dict[str, Any] = {
            "kb_file": str(kb_file),
            "n_entries": len(entries),
            "n_phrasings": sum(len(e.phrasings()) for e in entries),
        }
        wordings, skipped = kb.held_out_wordings()
        loo = fit_held_out(kb, progress=wrap) if wordings else None
        row["held_out"] = (
            {
                "n_wordings": loo.n_questions,
                "skipped_entries": loo.skipped_entries,
                "weights": [[w.weight, w.hit_at_1, w.mrr_at_10] for w in loo.weights],
                "chosen": loo.chosen.weight,
                "reliable": loo.reliable,
            }
            if loo is not None
            else {"n_wordings": 0, "skipped_entries": skipped}
        )
        if loo is None:
            log(f"[{kb_file.name}] no similar questions ({skipped} entries): no leave-one-out fit")
        if queries:
            searched = wrap((kb.evidence(q.query) for q in queries), len(queries), f"{kb_file.name} queries")
            questions = [(evidence, q.gold) for evidence, q in zip(searched, queries, strict=True)]
            bm25, _, _ = bm25_alone(entries, queries, kb.normaliser)
            configs: dict[str, Any] = {
                "e5 (weight 0)": _metrics([rank(e, 0.0, g) for e, g in questions], 0.0),
                "bm25 alone": _metrics(bm25, None),
                f"default ({settings.lexical_weight})": _metrics(
                    [rank(e, settings.lexical_weight, g) for e, g in questions], settings.lexical_weight
                ),
            }
            if loo is not None:
                configs[f"fitted, leave-one-out ({loo.chosen.weight})"] = _metrics(
                    [rank(e, loo.chosen.weight, g) for e, g in questions], loo.chosen.weight
                )
            else:
                folds: list[list[int]] = [[], []]
                golds = sorted({g or "" for _, g in questions})
                fold_of = {g: i % 2 for i, g in enumerate(golds)}
                for i, (_, g) in enumerate(questions):
                    folds[fold_of[g or ""]].append(i)
                outcomes: list[Ranked] = []
                chosen = []
                for fit_on, measure_on in ((0, 1), (1, 0)):
                    w = best_weight(sweep_weights([questions[i] for i in folds[fit_on]])).weight
                    chosen.append(w)
                    outcomes += [rank(questions[i][0], w, questions[i][1]) for i in folds[measure_on]]
                configs[f"fitted, 2-fold cross-fit ({chosen[0]} / {chosen[1]})"] = _metrics(outcomes, None)
            grid = sweep_weights(questions, LEXICAL_WEIGHTS)
            row["configs"] = configs
            row["grid_on_queries"] = [[w.weight, w.hit_at_1, w.mrr_at_10] for w in grid]
            row["n_queries"] = len(questions)
            for name, m in configs.items():
                log(f"[{kb_file.name}] {name}: hit@1 {m['hit_at_1']:.3f}  MRR@10 {m['mrr_at_10']:.3f}")
        rows.append(row)
    return {
        "rows": rows,
        "queries_file": str(queries_file) if queries_file else None,
        "machine": machine(),
        "command": " ".join(["hotline", *sys.argv[1:]]),
    }


def _metrics(results: list[Ranked], weight: float | None) -> dict[str, Any]:
    return {**retrieval_metrics(results), "lexical_weight": weight}


def _bar(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    from tqdm import tqdm

    bar: Iterable[Any] = tqdm(items, total=total, desc=label, unit="q", file=sys.stderr)
    return bar


def _no_bar(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    return items


def _time_one_update(kb: KnowledgeBase) -> float:
    """Milliseconds from saving a new similar question on one entry until a search finds the entry by it."""
    entry = next(iter(kb.store.entries(statuses=[Status.PUBLISHED])))
    assert entry.id is not None
    phrase = "基准测试新增的相似问法：" + entry.question
    started = time.perf_counter()
    kb.update(entry.replace(similar_questions=(*entry.similar_questions, phrase)), author="bench")
    found = kb.search(phrase, top_k=1)
    elapsed = (time.perf_counter() - started) * 1000
    if not found.hits or found.hits[0].entry.id != entry.id:
        raise RuntimeError("the updated entry was not found by its new similar question")
    kb.update(kb.store.get(entry.id).replace(similar_questions=entry.similar_questions), author="bench")
    return elapsed


def rank_queries(
    kb: KnowledgeBase, queries: list[LabelledQuery], *, progress: bool = False, label: str = ""
) -> tuple[list[Ranked], list[float]]:
    """Search every query (top 10) and time each search; the first, untimed search warms caches."""
    kb.search("预热")  # first call pays one-off costs (jieba dictionary, torch kernels)
    results, latencies = [], []
    for q in _progress(queries, progress, f"{label} queries"):
        started = time.perf_counter()
        found = kb.search(q.query, top_k=10)
        latencies.append((time.perf_counter() - started) * 1000)
        results.append(Ranked(q.gold, tuple(h.entry.key for h in found.hits), tuple(h.score for h in found.hits)))
    return results, latencies


def rank_queries_in_turn(
    kbs: dict[str, KnowledgeBase], queries: list[LabelledQuery], *, progress: bool = False
) -> dict[str, tuple[list[Ranked], list[float]]]:
    """:func:`rank_queries` for several knowledge bases, each query searched in all of them before the next.

    The order rotates from one query to the next, so no configuration always goes first (warm caches)
    or always runs while the machine is busiest.
    """
    names = list(kbs)
    for kb in kbs.values():
        kb.search("预热")  # first call pays one-off costs (jieba dictionary, model kernels)
    out: dict[str, tuple[list[Ranked], list[float]]] = {name: ([], []) for name in names}
    for i, q in enumerate(_progress(queries, progress, "queries (" + ", ".join(names) + " in turn)")):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            found = kbs[name].search(q.query, top_k=10)
            out[name][1].append((time.perf_counter() - started) * 1000)
            out[name][0].append(
                Ranked(q.gold, tuple(h.entry.key for h in found.hits), tuple(h.score for h in found.hits))
            )
    return out


def open_file_kb(kb_file: Path, settings: Settings, embedder: Embedder, *, progress: bool = False) -> KnowledgeBase:
    """A throw-away in-memory knowledge base holding the entries of ``kb_file``, index built."""
    from knowledge_base.transfer import read_entries

    store = SQLStore(":memory:")
    store.import_entries(read_entries(kb_file), author="bench")
    kb = KnowledgeBase(store, embedder, TextNormaliser.from_dir(), settings=settings)
    kb.warm_up(progress=progress)
    return kb


def _line(name: str, m: dict[str, Any]) -> str:
    return (
        f"[{name}, {m.get('embedder', '-')}] hit@1 {m['hit_at_1']:.3f}  MRR@10 {m['mrr_at_10']:.3f}  "
        f"recall@5 {m['recall_at_5']:.3f}  "
        f"p50 {m['latency_ms_p50']:.1f} ms  p95 {m['latency_ms_p95']:.1f} ms"
    )


T = TypeVar("T")


def _progress(items: list[T], enabled: bool, label: str) -> Iterable[T]:
    if not enabled:
        return items
    from tqdm import tqdm

    bar: Iterable[T] = tqdm(items, desc=label, unit="q", file=sys.stderr)
    return bar


def run_scale(
    sizes: list[int],
    *,
    dim: int = 384,
    queries: int = 200,
    hnsw_m: int = 32,
    ef_search: int = 128,
    index_types: tuple[str, ...] = ("flat", "hnsw"),
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Search latency and memory of flat vs HNSW on synthetic phrasing vectors.

    Synthetic phrasings are clustered like a real KB (five paraphrases around each
    entry's direction), queries are fresh paraphrases of random entries. Reported:
    how often the top hit belongs to the query's entry (what a citizen needs), and
    HNSW's recall@10 against the exact flat result (strict: beyond the entry's own
    five phrasings the exact neighbours are near-random).
    """
    from knowledge_base.search.index import PhrasingIndex

    rng = np.random.default_rng(7)
    rows = []
    for size in sizes:
        n_entries = max(1, size // 5)
        centres = rng.standard_normal((n_entries, dim), dtype=np.float32)
        owners = np.repeat(np.arange(n_entries), 5)[:size]
        vectors = centres[owners] + 0.6 * rng.standard_normal((size, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        picked = rng.integers(0, n_entries, queries)
        qv = centres[picked] + 0.6 * rng.standard_normal((queries, dim), dtype=np.float32)
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        exact: list[set[int]] = []
        for index_type in index_types:
            rss_before = _current_rss_mb()
            _all_threads()  # building may use every core; searching is measured on one
            started = time.perf_counter()
            index = PhrasingIndex(dim, index_type=index_type, hnsw_m=hnsw_m, ef_search=ef_search)
            texts = [""] * size  # the side table's texts are irrelevant to FAISS timing
            for start in range(0, size, 100_000):
                stop = min(size, start + 100_000)
                index.add_many((owners[start:stop] + 1).tolist(), texts[start:stop], vectors[start:stop], replace=False)
            build_s = time.perf_counter() - started
            _single_thread()
            # HNSW's search breadth trades latency for recall at query time: measure a few.
            breadths = sorted({ef_search, 64, 256, 512}) if index_type == "hnsw" else [0]
            for ef in breadths:
                if ef:
                    index.set_ef_search(ef)
                latencies, found, entry_hits = [], [], 0
                for q, source in zip(qv, picked, strict=True):
                    started = time.perf_counter()
                    hits = index.search(q[None, :], 10)[0]
                    latencies.append((time.perf_counter() - started) * 1000)
                    found.append({h.fid for h in hits})
                    entry_hits += bool(hits) and hits[0].entry_id == source + 1
                if index_type == "flat":
                    exact = found
                recall = (
                    float(np.mean([len(f & e) / max(1, len(e)) for f, e in zip(found, exact, strict=True)]))
                    if exact
                    else None
                )
                row = {
                    "phrasings": size,
                    "index_type": index_type,
                    "ef_search": ef or None,
                    "build_s": round(build_s, 2),
                    "search_ms_p50": round(percentile(latencies, 50), 3),
                    "search_ms_p95": round(percentile(latencies, 95), 3),
                    "entry_hit_at_1": round(entry_hits / len(qv), 4),
                    "recall_at_10_vs_flat": None if recall is None else round(recall, 4),
                    "index_mb": round(index.memory_bytes() / 2**20, 1),
                    "rss_growth_mb": round(_current_rss_mb() - rss_before, 1),
                }
                rows.append(row)
                log(
                    f"{size:>9,} phrasings  {index_type:5} ef {ef or '-':>4}  build {row['build_s']:7.1f}s  "
                    f"p50 {row['search_ms_p50']:6.2f} ms  p95 {row['search_ms_p95']:6.2f} ms  "
                    f"entry hit@1 {row['entry_hit_at_1']:.3f}  recall@10 vs flat {row['recall_at_10_vs_flat']}  "
                    f"index {row['index_mb']} MB"
                )
            del index
    return {
        "rows": rows,
        "dim": dim,
        "queries": queries,
        "hnsw_m": hnsw_m,
        "hnsw_ef_search": ef_search,
        "machine": machine(),
        "command": " ".join(["hotline", *sys.argv[1:]]),
    }


def _current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()
