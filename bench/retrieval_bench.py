"""Warm query latency of the full pipeline against a plain Chroma similarity search.

Both run in this process on the same store and the same loaded model, interleaved query
by query so that machine noise hits both alike. Target: median and p95 at most 1.3x.
Also: the persona name lookup alone (target: median under 1 ms).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import emit, queries, summary


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from langchain_chroma import Chroma

    from assistant.core.settings import Settings
    from assistant.service import Service
    from ingest.pipeline import run_ingest

    store = os.environ.get("BENCH_STORE") or tempfile.mkdtemp(prefix="bench-store-")
    settings = Settings(_env_file=None, store_dir=Path(store))
    run_ingest(settings)
    service = Service(settings)
    retriever = service.pipeline
    from assistant.core.vectorstore import chroma_client

    plain = Chroma(
        client=chroma_client(settings),
        collection_name=service.index.manifest.collection,
        embedding_function=service.embeddings,
    )
    source, qs = queries()
    for q in qs[:5]:  # warm both paths
        retriever.search(q)
        plain.similarity_search(q, k=5)
    ours, base = [], []
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    for _ in range(rounds):
        for q in qs:
            t = time.perf_counter()
            plain.similarity_search(q, k=5)
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            retriever.search(q)
            ours.append(time.perf_counter() - t)
    names = [p.name for p in service.catalog.personas] + ["linx termnal", "act as a magican", "astrolger"]
    lookups = []
    for _ in range(5):
        for n in names:
            t = time.perf_counter()
            retriever.find_persona(n)
            lookups.append(time.perf_counter() - t)
    o, b = summary(ours), summary(base)
    emit(
        {
            "benchmark": "retrieval",
            "queries": source,
            "ours": o,
            "plain_chroma_similarity_search": b,
            "median_ratio": round(o["median_ms"] / b["median_ms"], 3),
            "p95_ratio": round(o["p95_ms"] / b["p95_ms"], 3),
            "persona_name_lookup": summary(lookups),
            "targets": {"ratio_max": 1.3, "name_lookup_median_ms_max": 1.0},
            "met": o["median_ms"] <= 1.3 * b["median_ms"]
            and o["p95_ms"] <= 1.3 * b["p95_ms"]
            and summary(lookups)["median_ms"] < 1.0,
        }
    )


if __name__ == "__main__":
    main()
